import AgentGateAPI
import ControllerRuntime
import Foundation
import Gateway
import HTTPServing
import KubeClient
import KubeCore
import SessionStore
import TestSupport
import XCTest

/// RecordingPolicy alert rules with real kubectl through the gateway: a rule fires on the
/// request that reaches its threshold and not before — a Warning Event on the
/// AgentConnection, `agentgate_gateway_alerts_total`, and a webhook POST with the session id.
final class GatewayAlertTests: XCTestCase {
    var harness: GatewayHarness!
    var webhook: HTTPServer!
    var webhookPort = 0
    let received = Received()

    final class Received: @unchecked Sendable {
        private let lock = NSLock()
        private var bodies: [[UInt8]] = []
        func add(_ body: [UInt8]) { lock.withLock { bodies.append(body) } }
        var firings: [AlertEvaluator.Firing] {
            lock.withLock { bodies }.compactMap { try? JSONDecoder().decode(AlertEvaluator.Firing.self, from: Data($0)) }
        }
    }

    override func setUp() async throws {
        harness = try await GatewayHarness(announce: true)
        webhook = HTTPServer()
        let received = self.received
        webhookPort = try await webhook.start(host: "127.0.0.1", port: 0, tls: nil) { request in
            received.add(request.body)
            return HTTPResponse(status: 204)
        }
        harness.config.recording = RecordingPolicySpec(alerts: [
            AlertRule(name: "exec-burst", verbs: [.get, .create], resources: ["pods"], subresources: ["exec"], threshold: 3, window: "1m"),
            AlertRule(name: "secret-read", verbs: [.get, .list, .watch], resources: ["secrets"], threshold: 1),
        ], alertWebhook: AlertWebhook(url: "http://127.0.0.1:\(webhookPort)/alerts"))
        harness.registry.put(harness.config, token: harness.saToken)
        try await harness.cluster.applyObject([
            "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "shell", "namespace": "default"],
            "spec": ["containers": [["name": "main", "image": "busybox"]]],
        ])
    }

    override func tearDown() async throws {
        await webhook?.shutdown()
        await harness?.stop()
    }

    func alertCount(_ rule: String) -> Int {
        let line = harness.gateway.metrics.render().split(separator: "\n")
            .first { $0.hasPrefix("agentgate_gateway_alerts_total{") && $0.contains("rule=\"\(rule)\"") }
        return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
    }

    func alertEvents() async throws -> [JSONValue] {
        let (status, body, _) = try await GatewayHarness.send(.GET, harness.cluster.url + "/apis/events.k8s.io/v1/namespaces/default/events",
                                                              headers: [("Authorization", "Bearer \(harness.cluster.adminToken)")])
        XCTAssertEqual(status, 200, body)
        return (try JSONValue(parsing: Array(body.utf8))["items"]?.arrayValue ?? []).filter { $0["reason"]?.stringValue == "AlertFired" }
    }

    func testExecAlertFiresAtTheThresholdAndNotBelow() async throws {
        let token = try await harness.token()
        for run in 1...2 {
            let result = try harness.kubectl(["exec", "shell", "--", "echo", "run \(run)"], token: token)
            XCTAssertEqual(result.status, 0, result.stderr)
        }
        try await Task.sleep(for: .milliseconds(300))
        XCTAssertEqual(alertCount("exec-burst"), 0, "two execs are below the threshold of three")
        XCTAssertTrue(received.firings.isEmpty)
        let quiet = try await alertEvents()
        XCTAssertTrue(quiet.isEmpty, "\(quiet)")

        XCTAssertEqual(try harness.kubectl(["exec", "shell", "--", "echo", "run 3"], token: token).status, 0)
        XCTAssertEqual(alertCount("exec-burst"), 1, "the third exec within the window fires")
        try await eventually(10, "the webhook is called") { !self.received.firings.isEmpty }
        let firing = try XCTUnwrap(received.firings.first)
        XCTAssertEqual(firing.rule, "exec-burst")
        XCTAssertEqual(firing.connection, "default/conn")
        XCTAssertEqual(firing.subject, "agent-1")
        XCTAssertEqual(firing.count, 3)
        XCTAssertEqual(firing.resource, "pods/exec")
        let sessions = try await harness.store.listSessions(SessionFilter(limit: 10))
        let session = try XCTUnwrap(sessions.first)
        XCTAssertEqual(firing.sessionID, session.id, "the webhook names the session to replay")
        try await eventually(10, "a Warning Event is recorded on the AgentConnection") { try await !self.alertEvents().isEmpty }
        let events = try await alertEvents()
        let event = try XCTUnwrap(events.first)
        XCTAssertEqual(event["type"]?.stringValue, "Warning")
        XCTAssertEqual(event[path: ["regarding", "kind"]]?.stringValue, "AgentConnection")
        XCTAssertEqual(event[path: ["regarding", "name"]]?.stringValue, "conn")
        XCTAssertTrue(event["note"]?.stringValue?.contains(session.id) == true, "\(event)")

        XCTAssertEqual(try harness.kubectl(["exec", "shell", "--", "echo", "run 4"], token: token).status, 0)
        try await Task.sleep(for: .milliseconds(300))
        XCTAssertEqual(alertCount("exec-burst"), 1, "one burst raises one alert")
        XCTAssertEqual(received.firings.filter { $0.rule == "exec-burst" }.count, 1)
    }

    func testSecretReadAlertWithThresholdOneFiresOnTheFirstRead() async throws {
        try await harness.cluster.applyObject(["apiVersion": "v1", "kind": "Secret", "metadata": ["name": "db", "namespace": "default"],
                                               "stringData": ["password": "hunter2"]])
        let token = try await harness.token()
        XCTAssertEqual(try harness.kubectl(["get", "pods"], token: token).status, 0)
        XCTAssertEqual(alertCount("secret-read"), 0, "a pod list is no secret read")
        XCTAssertEqual(try harness.kubectl(["get", "secret", "db"], token: token).status, 0)
        XCTAssertEqual(alertCount("secret-read"), 1)
        try await eventually(10, "the webhook is called for secret-read") { self.received.firings.contains { $0.rule == "secret-read" } }
    }
}
