import AgentGateAPI
import Foundation
import HTTPServing
import KubeCore
import SessionStore
import TestSupport
import XCTest

/// What gateway replicas on one PostgreSQL database decide together, with real `agentgate
/// gateway` processes: an alert window counts the requests every replica forwarded, and the
/// refusal of a WebSocket exec is what kubectl's SPDY retry gets on another replica.
final class GatewayReplicaStateTests: XCTestCase {
    var harness: GatewayHarness!
    var webhook: HTTPServer!
    let firings = LockedBox<[JSONValue]>([])

    override func setUp() async throws {
        harness = try await GatewayHarness(backend: .postgres, approval: GatewayApprovalTests.policy)
        webhook = HTTPServer()
        let firings = self.firings
        let port = try await webhook.start(host: "127.0.0.1", port: 0, tls: nil) { request in
            if let firing = try? JSONValue(parsing: request.body) { firings.value.append(firing) }
            return HTTPResponse(status: 204)
        }
        // Execs are not held here, but counted: five of one session within a minute fire.
        harness.config.approval = nil
        harness.config.recording = RecordingPolicySpec(alerts: [
            AlertRule(name: "exec-burst", verbs: [.get, .create], resources: ["pods"], subresources: ["exec"], threshold: 5, window: "1m"),
        ], alertWebhook: AlertWebhook(url: "http://127.0.0.1:\(port)/alerts"))
        try await harness.cluster.applyObject([
            "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "shell", "namespace": "default"],
            "spec": ["containers": [["name": "main", "image": "busybox"]]],
        ])
    }

    override func tearDown() async throws {
        await webhook?.shutdown()
        await harness?.stop()
    }

    func replicas(_ count: Int) async throws -> [GatewayProcess] {
        var started: [GatewayProcess] = []
        for index in 0..<count {
            let replica = try await harness.startGatewayBinary(name: "gw-\(index)")
            started.append(replica)
        }
        return started
    }

    /// A WebSocket exec handshake (kubectl's, as raw bytes) to `replica`; returns the answer's head.
    func exec(on replica: GatewayProcess, token: String, protocolHeaders: String? = nil, method: String = "GET") throws -> String {
        let client = try LoopbackTCP(port: replica.port)
        try client.write("\(method) /c/default/conn/api/v1/namespaces/default/pods/shell/exec?command=echo&command=hi&stdout=true HTTP/1.1\r\n"
            + "Host: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
            + (protocolHeaders ?? "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n")
            + "\r\n")
        return try client.readHead()
    }

    func testFiveExecsSpreadOverThreeReplicasFireTheAlertOnce() async throws {
        let gateways = try await replicas(3)
        let agent = try await harness.token()
        for index in 0..<5 {
            let head = try exec(on: gateways[index % 3], token: agent)
            XCTAssertTrue(head.hasPrefix("HTTP/1.1 101"), "exec \(index + 1) on replica \(index % 3): \(head)")
        }
        let firings = self.firings
        try await eventually(10, "the alert webhook is called") { !firings.value.isEmpty }
        try await Task.sleep(for: .milliseconds(500))
        XCTAssertEqual(firings.value.count, 1, "one burst over three replicas fires once: \(firings.value)")
        XCTAssertEqual(firings.value.first?["count"]?.intValue, 5)
        XCTAssertEqual(firings.value.first?["rule"]?.stringValue, "exec-burst")
    }

    func testKubectlsSPDYRetryOnAnotherReplicaGetsTheRefusalNotASecondApproval() async throws {
        harness.config.approval = GatewayApprovalTests.policy
        harness.config.recording = RecordingPolicySpec()
        let gateways = try await replicas(2)
        let agent = try await harness.token()
        let held = Task { try self.exec(on: gateways[0], token: agent) }
        let store = harness.store
        let pending = LockedBox<ApprovalRecord?>(nil)
        try await eventually(20, "the exec is held on replica 0") {
            pending.value = try await store.listApprovals(ApprovalFilter(state: .pending)).first
            return pending.value != nil
        }
        let alice = try await harness.token(subject: "alice", groups: ["sre"], model: nil)
        let denied = try await GatewayHarness.send(.POST, "\(gateways[0].adminURL)/api/v1/approvals/\(try XCTUnwrap(pending.value?.id))/deny",
                                                   headers: [("Authorization", "Bearer \(alice)")], body: #"{"reason":"no shell"}"#)
        XCTAssertEqual(denied.status, 200, denied.body)
        let refused = try await held.value
        XCTAssertTrue(refused.hasPrefix("HTTP/1.1 403"), refused)
        // kubectl retries a refused WebSocket exec over SPDY at once; here it reaches replica 1.
        let retried = try exec(on: gateways[1], token: agent, protocolHeaders: "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                                + "X-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n", method: "POST")
        XCTAssertTrue(retried.hasPrefix("HTTP/1.1 403"), "the retry gets the denial at once: \(retried)")
        let approvals = try await store.listApprovals(ApprovalFilter())
        XCTAssertEqual(approvals.count, 1, "no second approval was asked for")
    }
}
