import AgentGateAPI
import Foundation
@testable import Gateway
import HTTPServing
import KubeCore
import NIOHTTP1
import SessionStore
import TestSupport
import XCTest

/// The gateway's stages on their own, through real parts (the embedded API server, the dev
/// issuer's JWTs, a SQLite store): what each stage's contract promises, and what the
/// gateway's lifecycle does with streams in flight.
final class GatewayStageTests: XCTestCase {
    var harness: GatewayHarness!

    override func setUp() async throws {
        harness = try await GatewayHarness()
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    private func request(_ method: String, _ path: String, token: String?, contentType: String? = nil,
                         body: String = "") -> HTTPRequest {
        var headers = HTTPHeaders()
        if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let contentType { headers.add(name: "Content-Type", value: contentType) }
        return HTTPRequest(method: method, uri: path, headers: headers, body: Array(body.utf8))
    }

    // MARK: - Admission

    func testAdmissionRefusesAConnectionItDoesNotServeBeforeReadingTheTokenAndRecordsNothing() async throws {
        let outcome = await harness.gateway.admission.admit(request("GET", "/c/default/other/api/v1/pods", token: "not-a-jwt"))
        guard case .refused(let response) = outcome else { return XCTFail("a connection nobody serves was admitted") }
        XCTAssertEqual(response.status, 404)
        guard case .bytes(let body) = response.body else { return XCTFail("no Status body") }
        XCTAssertTrue(String(decoding: body, as: UTF8.self).contains("default/other"), String(decoding: body, as: UTF8.self))
        let sessions = try await harness.store.listSessions(SessionFilter())
        XCTAssertEqual(sessions.count, 0, "an unauthenticated refusal is not a session")
    }

    func testAdmissionMakesTheSummaryOnceWithTheSecretValueMaskedAndTheBodyCutToThePolicyLimit() async throws {
        var config = harness.config
        config.recording = RecordingPolicySpec(capture: CaptureSettings(maxBodyBytes: 120))
        harness.registry.put(config, token: harness.saToken)
        let secretValue = "c3VwZXItc2VjcmV0LWRhdGFiYXNlLXBhc3N3b3Jk"
        let body = #"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"default"},"data":{"password":"\#(secretValue)"},"type":"Opaque"}"#
        let token = try await harness.token()
        let outcome = await harness.gateway.admission.admit(
            request("PUT", "/c/default/conn/api/v1/namespaces/default/secrets/db", token: token, contentType: "application/json", body: body))
        guard case .admitted(let context) = outcome else { return XCTFail("a valid PUT was refused") }
        let summary = context.summary
        XCTAssertEqual(summary.verb, "update")
        XCTAssertEqual(summary.resource, "secrets")
        XCTAssertEqual(summary.name, "db")
        XCTAssertEqual(summary.path, "/api/v1/namespaces/default/secrets/db")
        let recorded = String(decoding: summary.body ?? [], as: UTF8.self)
        XCTAssertFalse(recorded.contains(secretValue), "the summary's body is masked: \(recorded)")
        XCTAssertLessThanOrEqual(summary.body?.count ?? 0, 120, "and cut to maxBodyBytes")
        XCTAssertTrue(context.bodyTruncated, "the masked body (\(body.count) bytes or so) is longer than 120")
    }

    func testAdmissionRecordsARefusalOnceTheAgentIsAuthenticated() async throws {
        var config = harness.config
        config.access = AccessPolicy(rules: [AccessRule(name: "no-secrets", action: .deny, verbs: [.get], resources: ["secrets"])])
        harness.registry.put(config, token: harness.saToken)
        let token = try await harness.token()
        let outcome = await harness.gateway.admission.admit(request("GET", "/c/default/conn/api/v1/namespaces/default/secrets/db", token: token))
        guard case .refused(let response) = outcome else { return XCTFail("a denied request was admitted") }
        XCTAssertEqual(response.status, 403)
        try await harness.store.flush()
        let exchanges = try await harness.exchanges()
        XCTAssertEqual(exchanges.map(\.statusCode), [403], "the refusal is recorded as the agent's exchange")
        XCTAssertEqual(exchanges.first?.request.resource, "secrets")
    }

    // MARK: - One connection key

    func testConnectionKeysCompareByteForByteSoALookAlikeNameIsAnotherConnection() async throws {
        let precomposed = ConnectionRef(namespace: "default", name: "caf\u{E9}")
        let decomposed = ConnectionRef(namespace: "default", name: "cafe\u{301}")
        XCTAssertEqual(precomposed.name, decomposed.name, "Swift's String == takes them for one name")
        XCTAssertNotEqual(precomposed, decomposed, "the connection key does not")
        XCTAssertEqual(Set([precomposed, decomposed]).count, 2)
        XCTAssertNotEqual(ConnectionRef(namespace: "a", name: "bc"), ConnectionRef(namespace: "ab", name: "c"))
        var config = harness.config
        config.name = precomposed.name
        harness.registry.put(config, token: harness.saToken)
        XCTAssertNotNil(harness.registry.connection(precomposed))
        XCTAssertNil(harness.registry.connection(decomposed), "a look-alike name does not find the connection")
    }

    // MARK: - Recording and approval carry one summary

    func testTheExchangeAndItsApprovalCarryTheSameSummary() async throws {
        var config = harness.config
        config.approval = ApprovalPolicy(rules: [ApprovalRule(name: "deletes", verbs: [.delete], resources: ["configmaps"])],
                                         timeout: "1s")
        harness.registry.put(config, token: harness.saToken)
        try await harness.cluster.applyObject(["apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": ["name": "held", "namespace": "default"]])
        let token = try await harness.token()
        let answer = await harness.gateway.handle(request("DELETE", "/c/default/conn/api/v1/namespaces/default/configmaps/held",
                                                          token: token))
        XCTAssertEqual(answer.status, 403, "no decision within the 1 s timeout: expired")
        try await harness.store.flush()
        let exchanges = try await harness.exchanges()
        let exchange = try XCTUnwrap(exchanges.first)
        let stored = try await harness.store.approval(id: XCTUnwrap(exchange.approvalID))
        let approval = try XCTUnwrap(stored)
        XCTAssertEqual(approval.state, .expired)
        XCTAssertEqual(approval.request, exchange.request, "one summary, made once, in both records")
    }

    // MARK: - Lifecycle

    func testRequestLoadIdleReturnsWhenTheLastRequestLeavesOrAtItsLimit() async throws {
        let load = RequestLoad()
        load.enter()
        load.enter()
        let started = ContinuousClock.now
        async let waited: Void = load.idle(within: .seconds(30))
        load.leave()
        try await eventually(5, "the waiter is still waiting with one request in flight") { load.current == 1 }
        load.leave()
        await waited
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(10), "woken by the last leave, not by its limit")
        load.enter()
        let bounded = ContinuousClock.now
        await load.idle(within: .milliseconds(200))
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - bounded, .milliseconds(200))
        XCTAssertEqual(load.current, 1)
    }

    func testShutdownWaitsForAnExecStreamInFlightAndRecordsItComplete() async throws {
        try await harness.cluster.applyObject([
            "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "shell", "namespace": "default"],
            "spec": ["containers": [["name": "main", "image": "busybox"]]],
        ])
        let token = try await harness.token()
        let harness = self.harness!
        let exec = Task.detached {
            try harness.kubectl(["exec", "shell", "--", "sh", "-c", "sleep 2; echo done"], token: token)
        }
        try await eventually(20, "the exec stream is open") {
            try? await harness.store.flush()
            let exchanges = (try? await harness.exchanges()) ?? []
            return exchanges.contains { $0.subresource == "exec" && $0.state == .inProgress }
        }
        let stopping = ContinuousClock.now
        await harness.gateway.shutdown(drain: .seconds(15))
        let result = try await exec.value
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("done"), "the stream ran to its end: \(result.stdout)")
        XCTAssertGreaterThan(ContinuousClock.now - stopping, .milliseconds(500), "shutdown waited for the stream")
        try await harness.store.flush()
        let exchanges = try await harness.exchanges().filter { $0.subresource == "exec" }
        XCTAssertEqual(exchanges.map(\.state), [.complete], "recorded complete before shutdown returned")
    }
}
