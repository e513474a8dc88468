import AgentGateAPI
import Foundation
import Gateway
import KubeCore
import SessionStore
import TestSupport
import XCTest

/// Attacks on approvals from an adversarial review, each through the gateway to the embedded
/// API server (which reads DeleteOptions from a DELETE's body, as kube-apiserver does): the
/// dry run of a held delete, scale-to-zero in every form a patch can take, subresources that
/// delete or exec, and a held exec whose client went away.
extension GatewayApprovalTests {
    var deploymentsPath: String { "/apis/apps/v1/namespaces/default/deployments" }

    /// A raw request as the agent, answered or held; returns the pending approval if it was held.
    func sendHeldOrAnswered(_ method: String, _ path: String, contentType: String? = nil, body: [UInt8] = [],
                            token: String) async throws -> (approval: JSONValue?, answer: Task<(status: Int, body: String), any Error>) {
        let url = "\(harness.connectionURL)\(path)"
        let done = LockedBox(false)
        let answer = Task { () throws -> (status: Int, body: String) in
            defer { done.value = true }
            var headers = [("Authorization", "Bearer \(token)")]
            if let contentType { headers.append(("Content-Type", contentType)) }
            let reply = try await GatewayHarness.send(.init(rawValue: method), url, headers: headers,
                                                      body: body.isEmpty ? nil : String(decoding: body, as: UTF8.self))
            return (reply.status, reply.body)
        }
        let harness = self.harness!
        let found = LockedBox<JSONValue?>(nil)
        try await eventually(20, "\(method) \(path) held or answered") {
            let list = try await GatewayHarness.send(.GET, "\(harness.adminURL)/api/v1/approvals?state=pending",
                                                     headers: [("Authorization", "Bearer \(harness.adminToken)")])
            found.value = try JSONValue(parsing: list.body)["items"]?.arrayValue?.first
            return found.value != nil || done.value
        }
        return (found.value, answer)
    }

    func replicas(_ name: String) async -> Int64? {
        await harness.cluster.request(method: "GET", path: "\(deploymentsPath)/\(name)", body: nil).body[path: ["spec", "replicas"]]?.intValue
    }

    // MARK: F1 — the dry run of a held delete

    func testTheDryRunOfAHeldKubectlDeleteDeletesNothing() async throws {
        try await createDeployment("web")
        let agent = try await harness.token()
        // kubectl sends DeleteOptions in the body ({"propagationPolicy":"Background"}); a server
        // that reads the body ignores a dryRun in the query.
        let kubectl = kubectlInBackground(["delete", "deployment", "web"], token: agent)
        let approval = try await pendingApproval(verb: "delete")
        XCTAssertEqual(approval["dryRunStatusCode"]?.intValue, 200, "the dry run was answered: \(approval)")
        let whileHeld = await exists("\(deploymentsPath)/web")
        XCTAssertTrue(whileHeld, "nothing is deleted before a human decides")
        let denied = try await decide(try XCTUnwrap(approval["id"]?.stringValue), "deny", token: try await approver(), reason: "keep it")
        XCTAssertEqual(denied.status, 200, "\(denied.body)")
        let result = try await kubectl.value
        XCTAssertNotEqual(result.status, 0, result.output)
        let afterDenial = await exists("\(deploymentsPath)/web")
        XCTAssertTrue(afterDenial)
    }

    func testTheDryRunOfAHeldDeletecollectionWithABodyDeletesNothing() async throws {
        try await harness.cluster.applyObject(["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "bulk"]])
        try await harness.cluster.applyObject(["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "kept", "namespace": "bulk"]])
        let held = try await sendHeldOrAnswered("DELETE", "/api/v1/namespaces/bulk/configmaps", contentType: "application/json",
                                                body: Array(#"{"propagationPolicy":"Background"}"#.utf8), token: try await harness.token())
        let approval = try XCTUnwrap(held.approval, "a deletecollection is held")
        XCTAssertEqual(approval["dryRunStatusCode"]?.intValue, 200, "\(approval)")
        let whileHeld = await exists("/api/v1/namespaces/bulk/configmaps/kept")
        XCTAssertTrue(whileHeld, "the dry run deleted nothing")
        _ = try await decide(try XCTUnwrap(approval["id"]?.stringValue), "deny", token: try await approver(), reason: "no")
        let answer = try await held.answer.value
        XCTAssertEqual(answer.status, 403, answer.body)
        let afterDenial = await exists("/api/v1/namespaces/bulk/configmaps/kept")
        XCTAssertTrue(afterDenial)
    }

    // MARK: F2 — scale to zero, whatever the patch looks like

    func testScaleToZeroIsHeldWhateverFormTheWriteTakes() async throws {
        try await createDeployment("api", replicas: 3)
        let agent = try await harness.token()
        let current = await harness.cluster.request(method: "GET", path: "\(deploymentsPath)/api", body: nil).body
        var zeroSpec = try XCTUnwrap(current["spec"])
        zeroSpec["replicas"] = .int(0)
        let protobufScale = Self.protobufScale(name: "api", replicas: 0)
        let writes: [(what: String, method: String, path: String, type: String, body: [UInt8])] = [
            ("a merge patch whose type has a json-patch parameter", "PATCH", "\(deploymentsPath)/api",
             "application/merge-patch+json; x=json-patch", Array(#"{"spec":{"replicas":0}}"#.utf8)),
            ("a JSON patch replacing /spec", "PATCH", "\(deploymentsPath)/api", "application/json-patch+json",
             JSONValue.array([["op": "replace", "path": "/spec", "value": zeroSpec]]).serialized()),
            ("a JSON patch of /scale", "PATCH", "\(deploymentsPath)/api/scale", "application/json-patch+json",
             Array(#"[{"op":"replace","path":"/spec/replicas","value":0}]"#.utf8)),
            ("a protobuf Scale", "PUT", "\(deploymentsPath)/api/scale", "application/vnd.kubernetes.protobuf", protobufScale),
        ]
        for write in writes {
            let held = try await sendHeldOrAnswered(write.method, write.path, contentType: write.type, body: write.body, token: agent)
            guard let approval = held.approval else {
                let answer = try await held.answer.value
                XCTFail("\(write.what) is held, not answered \(answer.status): \(answer.body)")
                continue
            }
            XCTAssertEqual(approval["rule"]?.stringValue, "scale-to-zero", write.what)
            let whileHeld = await replicas("api")
            XCTAssertEqual(whileHeld, 3, "\(write.what): the dry run changed nothing")
            _ = try await decide(try XCTUnwrap(approval["id"]?.stringValue), "deny", token: try await approver(), reason: "no")
            let answer = try await held.answer.value
            XCTAssertEqual(answer.status, 403, "\(write.what): \(answer.body)")
            let afterDenial = await replicas("api")
            XCTAssertEqual(afterDenial, 3, write.what)
        }
        // Duplicate keys in a server-side apply: whatever the server makes of them, it never
        // scales to zero without a human.
        let apply = #"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"api"},"spec":{"replicas":1,"replicas":0}}"#
        let held = try await sendHeldOrAnswered("PATCH", "\(deploymentsPath)/api?fieldManager=agent&force=true",
                                                contentType: "application/apply-patch+yaml", body: Array(apply.utf8), token: agent)
        if let approval = held.approval {
            _ = try await decide(try XCTUnwrap(approval["id"]?.stringValue), "deny", token: try await approver(), reason: "no")
        }
        _ = try await held.answer.value
        let afterApply = await replicas("api")
        XCTAssertNotEqual(afterApply, 0, "an apply with duplicate replicas keys did not scale to zero unheld")
        // And a write that does not scale to zero is not held.
        let one = try await sendHeldOrAnswered("PATCH", "\(deploymentsPath)/api", contentType: "application/merge-patch+json",
                                               body: Array(#"{"spec":{"replicas":2}}"#.utf8), token: agent)
        XCTAssertNil(one.approval)
        let scaled = try await one.answer.value
        XCTAssertEqual(scaled.status, 200, scaled.body)
        let afterOne = await replicas("api")
        XCTAssertEqual(afterOne, 2)
    }

    /// `autoscaling/v1` Scale in Kubernetes' protobuf envelope (`k8s\0` + runtime.Unknown).
    static func protobufScale(name: String, replicas: UInt8) -> [UInt8] {
        func field(_ number: UInt8, _ bytes: [UInt8]) -> [UInt8] { [number << 3 | 2, UInt8(bytes.count)] + bytes }
        let typeMeta = field(1, Array("autoscaling/v1".utf8)) + field(2, Array("Scale".utf8))
        let scale = field(1, field(1, Array(name.utf8))) + field(2, [0x08, replicas])
        return [0x6b, 0x38, 0x73, 0x00] + field(1, typeMeta) + field(2, scale)
    }

    // MARK: F13 — subresources that delete or exec

    func testAnEvictionIsHeldByADeleteRuleAndAnEphemeralContainerByAnExecRule() async throws {
        harness.config.approval = ApprovalPolicy(rules: [
            ApprovalRule(name: "delete-pods", verbs: [.delete], resources: ["pods"]),
            ApprovalRule(name: "exec", verbs: [.get, .create], resources: ["pods"], subresources: ["exec"]),
        ], approverGroups: ["sre"], timeout: "1m")
        harness.registry.put(harness.config, token: harness.saToken)
        try await createShellPod()
        let agent = try await harness.token()
        let eviction = #"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"shell","namespace":"default"}}"#
        let debug = #"{"spec":{"ephemeralContainers":[{"name":"debugger","image":"busybox","command":["sh","-c","cat /etc/secret"]}]}}"#
        for (what, method, path, type, body, rule) in [
            ("kubectl drain's eviction", "POST", "/api/v1/namespaces/default/pods/shell/eviction", "application/json", eviction, "delete-pods"),
            ("kubectl debug's ephemeral container", "PATCH", "/api/v1/namespaces/default/pods/shell/ephemeralcontainers",
             "application/strategic-merge-patch+json", debug, "exec"),
        ] {
            let held = try await sendHeldOrAnswered(method, path, contentType: type, body: Array(body.utf8), token: agent)
            let approval = try XCTUnwrap(held.approval, "\(what) is held")
            XCTAssertEqual(approval["rule"]?.stringValue, rule, what)
            _ = try await decide(try XCTUnwrap(approval["id"]?.stringValue), "deny", token: try await approver(), reason: "no")
            let answer = try await held.answer.value
            XCTAssertEqual(answer.status, 403, "\(what): \(answer.body)")
        }
        let podStays = await exists("/api/v1/namespaces/default/pods/shell")
        XCTAssertTrue(podStays)
    }

    // MARK: F11 — a held WebSocket exec whose client hung up

    func testAHeldWebSocketExecWhoseClientHangsUpIsAbandonedAndNeverOpened() async throws {
        try await createShellPod()
        let agent = try await harness.token()
        var client: LoopbackTCP? = try LoopbackTCP(port: harness.port)
        try client?.write("GET /c/default/conn/api/v1/namespaces/default/pods/shell/exec?command=echo&command=ran&stdout=true HTTP/1.1\r\n"
            + "Host: 127.0.0.1\r\nAuthorization: Bearer \(agent)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n")
        let approval = try await pendingApproval()
        XCTAssertEqual(approval["subresource"]?.stringValue, "exec")
        let id = try XCTUnwrap(approval["id"]?.stringValue)
        client = nil   // the agent hangs up
        XCTAssertNil(client)
        let store = harness.store
        try await eventually(10, "the approval of a gone client is abandoned") {
            try await store.approval(id: id)?.state == .abandoned
        }
        let late = try await decide(id, "approve", token: try await approver(), reason: "too late")
        XCTAssertNotEqual(late.status, 200, "an abandoned approval cannot be approved: \(late.body)")
        let execs = try await harness.exchanges().filter { $0.subresource == "exec" }
        XCTAssertEqual(execs.count, 1)
        XCTAssertNotEqual(execs.first?.statusCode, 101, "no stream was opened")
    }

    // MARK: A held write whose dry run fails

    func testADeleteWhoseDryRunFailsIsAnsweredAtOnceAndNotHeld() async throws {
        let agent = try await harness.token()
        let started = Date()
        let result = try harness.kubectl(["delete", "deployment", "not-there"], token: agent)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("not found"), "the API server's own answer: \(result.output)")
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, "no human was waited for")
        let approvals = try await harness.store.listApprovals(ApprovalFilter())
        XCTAssertTrue(approvals.isEmpty, "nobody is asked to approve a delete that deletes nothing: \(approvals)")
        let recorded = try await harness.exchanges().filter { $0.verb == "delete" }
        XCTAssertEqual(recorded.map(\.statusCode), [404], "the answer is recorded")
    }

    // MARK: Metrics of held requests

    func testHeldRequestsAreAGaugeWhileHeldAndTheirWaitIsNotAddedLatency() async throws {
        try await createDeployment("gauged")
        let agent = try await harness.token()
        let kubectl = kubectlInBackground(["delete", "deployment", "gauged"], token: agent)
        let approval = try await pendingApproval(verb: "delete")
        let whileHeld = try PrometheusText.parse(harness.gateway.metrics.render())
        XCTAssertEqual(whileHeld.value("agentgate_gateway_approvals_pending"), 1)
        try await Task.sleep(for: .seconds(3))
        _ = try await decide(try XCTUnwrap(approval["id"]?.stringValue), "approve", token: try await approver(), reason: "ok")
        let result = try await kubectl.value
        XCTAssertEqual(result.status, 0, result.output)
        let after = try PrometheusText.parse(harness.gateway.metrics.render())
        XCTAssertEqual(after.value("agentgate_gateway_approvals_pending"), 0)
        XCTAssertEqual(after.value("agentgate_gateway_approval_wait_seconds_count"), 1)
        XCTAssertGreaterThanOrEqual(after.value("agentgate_gateway_approval_wait_seconds_sum") ?? 0, 3)
        let added = after.value("agentgate_gateway_added_latency_seconds_count") ?? 0
        let underTheWait = after.samples.filter { $0.name == "agentgate_gateway_added_latency_seconds_bucket" && Double($0.labels["le"] ?? "") == 2.5 }
            .first?.value
        XCTAssertEqual(underTheWait, added, "the seconds a human took are approval wait, not latency the gateway added")
        XCTAssertEqual(after.value("agentgate_build_info", ["version": AgentGateVersion.current]), 1)
        XCTAssertGreaterThan(after.value("process_cpu_seconds_total") ?? 0, 0)
    }
}
