import AgentGateAPI
import Foundation
import Gateway
import KubeCore
import NIOHTTP1
import SessionStore
import TestSupport
import XCTest

/// Attacks from an adversarial review that need the real API server behind the gateway: a
/// server-side apply used as a guessing oracle for a masked value, and a protobuf body that
/// would be recorded in clear.
extension GatewayKubectlTests {
    func sendAsAgent(_ method: String, _ path: String, contentType: String, body: [UInt8], token: String) async throws
        -> (status: Int, body: String) {
        let reply = try await GatewayHarness.send(.init(rawValue: method), "\(harness.connectionURL)\(path)",
                                                  headers: [("Authorization", "Bearer \(token)"), ("Content-Type", contentType)],
                                                  body: String(decoding: body, as: UTF8.self))
        return (reply.status, reply.body)
    }

    func testAServerSideApplyCannotTellARightGuessOfAMaskedValueFromAWrongOne() async throws {
        // The Secret's data is owned by another field manager, as when a platform team applied it.
        let secret: JSONValue = ["apiVersion": "v1", "kind": "Secret", "metadata": ["name": "db", "namespace": "default"],
                                 "data": ["pw": .string(Data("s3cret-right".utf8).base64EncodedString())]]
        let owned = await harness.cluster.request(method: "PATCH", path: "/api/v1/namespaces/default/secrets/db?fieldManager=platform",
                                                  body: secret, contentType: "application/apply-patch+yaml")
        XCTAssertEqual(owned.status, 201, "\(owned.body)")
        let agent = try await harness.token()
        func guess(_ value: String, force: Bool) async throws -> (status: Int, body: String) {
            var applied = secret
            applied["data"] = ["pw": .string(Data(value.utf8).base64EncodedString())]
            let query = "dryRun=All&fieldManager=agent" + (force ? "&force=true" : "")
            return try await sendAsAgent("PATCH", "/api/v1/namespaces/default/secrets/db?\(query)", contentType: "application/apply-patch+yaml",
                                         body: applied.serialized(), token: agent)
        }
        let right = try await guess("s3cret-right", force: false)
        let wrong = try await guess("s3cret-wrong", force: false)
        XCTAssertEqual(right.status, 403, right.body)
        XCTAssertEqual(wrong.status, right.status, "a right and a wrong guess are answered alike")
        XCTAssertEqual(wrong.body, right.body)
        XCTAssertTrue(right.body.contains("--force-conflicts"), "the refusal says how to apply: \(right.body)")
        // Forced, both are answered alike too (no conflict either way), and masked.
        let forcedRight = try await guess("s3cret-right", force: true)
        let forcedWrong = try await guess("s3cret-wrong", force: true)
        XCTAssertEqual(forcedRight.status, 200, forcedRight.body)
        XCTAssertEqual(forcedWrong.status, 200, forcedWrong.body)
        for answer in [forcedRight, forcedWrong] {
            XCTAssertFalse(answer.body.contains(Data("s3cret-right".utf8).base64EncodedString()), answer.body)
            XCTAssertFalse(answer.body.contains(Data("s3cret-wrong".utf8).base64EncodedString()), answer.body)
        }
        // An apply that sets no masked field needs no force.
        let configMap: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "plain", "namespace": "default"],
                                    "data": ["greeting": "hello"]]
        let plain = try await sendAsAgent("PATCH", "/api/v1/namespaces/default/configmaps/plain?fieldManager=agent",
                                          contentType: "application/apply-patch+yaml", body: configMap.serialized(), token: agent)
        XCTAssertEqual(plain.status, 201, plain.body)
    }

    func testAProtobufRequestBodyIsWithheldFromTheRecording() async throws {
        let agent = try await harness.token()
        let value = Array("proto-secret-value-7f3a".utf8)
        func field(_ number: UInt8, _ bytes: [UInt8]) -> [UInt8] { [number << 3 | 2, UInt8(bytes.count)] + bytes }
        // v1 Secret {metadata: {name: "proto"}, data: {"pw": value}} in Kubernetes' protobuf envelope.
        let typeMeta = field(1, Array("v1".utf8)) + field(2, Array("Secret".utf8))
        let secret = field(1, field(1, Array("proto".utf8))) + field(2, field(1, Array("pw".utf8)) + field(2, value))
        let body = [0x6b, 0x38, 0x73, 0x00] + field(1, typeMeta) + field(2, secret)
        let created = try await sendAsAgent("POST", "/api/v1/namespaces/default/secrets", contentType: "application/vnd.kubernetes.protobuf",
                                            body: body, token: agent)
        XCTAssertEqual(created.status, 201, created.body)
        try await harness.store.flush()
        let exchanges = try await harness.exchanges()
        let exchange = try XCTUnwrap(exchanges.last { $0.resource == "secrets" && $0.verb == "create" })
        let recorded = String(decoding: try XCTUnwrap(exchange.requestBody), as: UTF8.self)
        XCTAssertFalse(recorded.contains("proto-secret-value-7f3a"), "the Secret's value is not recorded: \(recorded)")
        XCTAssertTrue(recorded.contains("withheld"), recorded)
        XCTAssertEqual(exchange.requestBytes, Int64(body.count), "the recording still says how large the body was")
    }
}

/// Attacks from an adversarial review that must be refused before anything reaches upstream
/// (``UpstreamSpy`` sees every request that does).
extension GatewaySecurityTests {
    func rawRequest(_ head: String) throws -> String {
        let client = try LoopbackTCP(port: harness.port)
        try client.write(head)
        var answer = ""
        while !answer.contains("}") {
            let bytes = try client.readSome()
            if bytes.isEmpty { break }
            answer += String(decoding: bytes, as: UTF8.self)
        }
        return answer
    }

    func testExecAttachAndPortForwardOnMethodsTheAPIServerDoesNotRouteAreRefusedUnforwarded() async throws {
        let token = try await harness.token()
        for (method, subresource) in [("PUT", "exec"), ("PATCH", "attach"), ("OPTIONS", "exec"), ("DELETE", "portforward")] {
            let answer = try rawRequest("\(method) /c/default/conn/api/v1/namespaces/default/pods/shell/\(subresource)?command=sh&stdin=true HTTP/1.1\r\n"
                + "Host: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n"
                + "Content-Length: 0\r\n\r\n")
            XCTAssertTrue(answer.hasPrefix("HTTP/1.1 405"), "\(method) \(subresource): \(answer)")
            XCTAssertTrue(answer.contains("MethodNotAllowed"), answer)
        }
        let proxied = try await GatewayHarness.send(.PUT, "\(harness.connectionURL)/api/v1/namespaces/default/pods/shell/proxy/x",
                                                    headers: [("Authorization", "Bearer \(token)")], body: "{}")
        XCTAssertEqual(proxied.status, 200, "a proxy takes PUT, as the API server routes it: \(proxied.body)")
        XCTAssertEqual(spy.requests.map(\.method), ["PUT"], "only the proxy request was forwarded")
    }

    func testCBORIsNeverAskedForAndCBORBodiesAreRefused() async throws {
        let token = try await harness.token()
        let list = "\(harness.connectionURL)/api/v1/namespaces/default/configmaps"
        let asked = try await GatewayHarness.send(.GET, list, headers: [("Authorization", "Bearer \(token)"),
                                                                         ("Accept", "application/cbor, application/json;q=0.9")])
        XCTAssertEqual(asked.status, 200, asked.body)
        XCTAssertEqual(spy.requests.last?.headers["accept"], ["application/json;q=0.9"], "upstream is asked for JSON only")
        for type in ["application/cbor", "application/apply-patch+cbor", "Application/CBOR; charset=binary"] {
            let method: HTTPMethod = type.contains("apply") ? .PATCH : .POST
            let sent = try await GatewayHarness.send(method, method == .PATCH ? "\(list)/c?fieldManager=x" : list,
                                                     headers: [("Authorization", "Bearer \(token)"), ("Content-Type", type)],
                                                     body: "\u{a1}dkind")
            XCTAssertEqual(sent.status, 415, "\(type): \(sent.body)")
        }
        XCTAssertEqual(spy.requests.count, 1, "no CBOR body was forwarded")
    }

    func testAnAgentCannotChangeTheAgentGateResourcesThatGovernIt() async throws {
        let token = try await harness.token()
        let connection = "\(harness.connectionURL)/apis/agentgate.io/v1alpha1/namespaces/default/agentconnections/conn"
        let loosen = try await GatewayHarness.send(.PATCH, connection,
                                                   headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/merge-patch+json")],
                                                   body: #"{"spec":{"approval":null}}"#)
        XCTAssertEqual(loosen.status, 403, loosen.body)
        XCTAssertTrue(loosen.body.contains("agentgate.io"), loosen.body)
        let rule = try await GatewayHarness.send(.DELETE, "\(harness.connectionURL)/apis/agentgate.io/v1alpha1/namespaces/default/maskingrules/secrets",
                                                 headers: [("Authorization", "Bearer \(token)")])
        XCTAssertEqual(rule.status, 403, rule.body)
        XCTAssertTrue(spy.requests.isEmpty, "no write to agentgate.io was forwarded")
        let read = try await GatewayHarness.send(.GET, connection, headers: [("Authorization", "Bearer \(token)")])
        XCTAssertEqual(read.status, 200, "reading them is not refused: \(read.body)")
        // A platform team may allow it explicitly, naming the group (a `*` does not count).
        harness.config.access = AccessPolicy(rules: [AccessRule(name: "everything", action: .allow)])
        harness.registry.put(harness.config, token: harness.saToken)
        let stillRefused = try await GatewayHarness.send(.PATCH, connection,
                                                         headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/merge-patch+json")],
                                                         body: "{}")
        XCTAssertEqual(stillRefused.status, 403, stillRefused.body)
        harness.config.access = AccessPolicy(rules: [AccessRule(name: "manage-agentgate", action: .allow, apiGroups: ["agentgate.io"])])
        harness.registry.put(harness.config, token: harness.saToken)
        let allowed = try await GatewayHarness.send(.PATCH, connection,
                                                    headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/merge-patch+json")],
                                                    body: "{}")
        XCTAssertEqual(allowed.status, 200, allowed.body)
        XCTAssertEqual(spy.requests.map(\.method), ["GET", "PATCH"])
    }

    func testAFirstBurstOfRequestsOnAFreshGatewayAllWaitForItsFirstKeyFetch() async throws {
        let token = try await harness.token()
        let url = "\(harness.connectionURL)/api/v1/namespaces/default/configmaps"
        let codes = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<12 {
                group.addTask { try await GatewayHarness.send(.GET, url, headers: [("Authorization", "Bearer \(token)")]).status }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(codes, Array(repeating: 200, count: 12), "no request is refused while the issuer's keys are first fetched")
    }
}
