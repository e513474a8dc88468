import AgentGateAPI
import ControllerRuntime
import Foundation
import Gateway
import HTTPServing
import KubeClient
import KubeCore
import LocalCluster
import SessionStore
import TestSupport
import XCTest

/// How a held request reaches people: an Event on the AgentConnection, its
/// `status.pendingApprovals`, the connection's webhook, and `agentgate approvals` (the real
/// binary against the admin API).
final class GatewayApprovalAnnouncementTests: XCTestCase {
    var harness: GatewayHarness!
    let webhook = HTTPServer()
    let received = LockedText()

    override func setUp() async throws {
        harness = try await GatewayHarness(approval: GatewayApprovalTests.policy, announce: true)
        let received = self.received
        let webhookPort = try await webhook.start(host: "127.0.0.1", port: 0, tls: nil) { request in
            received.append(String(decoding: request.body, as: UTF8.self) + "\n")
            return HTTPResponse(status: 204, headers: [], body: .bytes([]))
        }
        var config = harness.config
        config.approval?.webhookURL = "http://127.0.0.1:\(webhookPort)/hook"
        harness.registry.put(config, token: harness.saToken)
        try await harness.cluster.applyObject([
            "apiVersion": "agentgate.io/v1alpha1", "kind": "AgentConnection", "metadata": ["name": "conn", "namespace": "default"],
            "spec": ["serviceAccountName": "agent",
                     "identity": ["issuer": .string(harness.config.identity.issuer), "audiences": [.string(GatewayHarness.audience)],
                                  "allowedSubjects": ["agent-1"]]],
        ])
    }

    override func tearDown() async throws {
        await webhook.shutdown()
        await harness?.stop()
    }

    private static func pendingApprovals(_ cluster: LocalCluster) async -> Int64? {
        let object = await cluster.request(method: "GET", path: "/apis/agentgate.io/v1alpha1/namespaces/default/agentconnections/conn", body: nil)
        return object.body[path: ["status", "pendingApprovals"]]?.intValue
    }

    private static func events(_ cluster: LocalCluster) async -> [JSONValue] {
        await cluster.request(method: "GET", path: "/apis/events.k8s.io/v1/namespaces/default/events", body: nil)
            .body["items"]?.arrayValue ?? []
    }

    /// `agentgate approvals ARGUMENTS --admin-url URL` (the real binary).
    private static func cli(_ arguments: [String], adminURL: String) throws -> ProcessResult {
        guard FileManager.default.isExecutableFile(atPath: GatewayHarness.binary.path) else {
            throw XCTSkip("\(GatewayHarness.binary.path) is missing: run `swift build` first")
        }
        return try ProcessRunner.run(GatewayHarness.binary.path, ["approvals"] + arguments + ["--admin-url", adminURL])
    }

    func testHeldRequestIsAnnouncedAsEventPendingApprovalsAndWebhookAndDecidedWithTheCLI() async throws {
        try await harness.cluster.applyObject([
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "web", "namespace": "default"],
            "spec": ["replicas": 1, "selector": ["matchLabels": ["app": "web"]],
                     "template": ["metadata": ["labels": ["app": "web"]], "spec": ["containers": [["name": "c", "image": "busybox"]]]]],
        ])
        let agent = try await harness.token()
        let harness = self.harness!
        let kubectl = Task {
            try await withCheckedThrowingContinuation { continuation in
                DispatchQueue.global().async {
                    continuation.resume(with: Result { try harness.kubectl(["delete", "deployment", "web"], token: agent) })
                }
            }
        }
        let cluster = harness.cluster
        let adminURL = harness.adminURL
        func cli(_ arguments: [String]) throws -> ProcessResult { try Self.cli(arguments, adminURL: adminURL) }
        // The CLI lists it (admin token).
        let listedID = LockedBox<String?>(nil)
        try await eventually(20, "agentgate approvals list shows the held delete") {
            let listed = try Self.cli(["list", "-o", "json", "--token", harness.adminToken], adminURL: adminURL)
            guard listed.status == 0, let item = try JSONValue(parsing: listed.stdout)["items"]?.arrayValue?.first else { return false }
            listedID.value = item["id"]?.stringValue
            return true
        }
        let id = try XCTUnwrap(listedID.value)
        let table = try cli(["list", "--token", harness.adminToken])
        XCTAssertTrue(table.stdout.contains(id) && table.stdout.contains("delete deployments default/web"), table.output)

        try await eventually(10, "an ApprovalRequested Event on the AgentConnection") {
            await Self.events(cluster).contains {
                $0["reason"]?.stringValue == "ApprovalRequested" && $0[path: ["regarding", "kind"]]?.stringValue == "AgentConnection"
                    && $0[path: ["regarding", "name"]]?.stringValue == "conn" && ($0["note"]?.stringValue?.contains(id) ?? false)
            }
        }
        try await eventually(10, "status.pendingApprovals is 1") { await Self.pendingApprovals(cluster) == 1 }
        let received = self.received
        try await eventually(10, "the webhook received the approval") { received.text.contains(id) }
        let line = received.text.split(separator: "\n").first { $0.contains(id) } ?? ""
        let posted = try JSONValue(parsing: Array(line.utf8))
        XCTAssertEqual(posted["verb"]?.stringValue, "delete")
        XCTAssertEqual(posted["state"]?.stringValue, "pending")

        // The agent's own token cannot decide; an approver outside the groups neither.
        let bob = try await harness.token(subject: "bob", groups: ["developers"], model: nil)
        let refused = try cli(["approve", id, "--reason", "lgtm", "--token", bob])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.output.contains("bob is not in the approver groups"), refused.output)
        let withoutToken = try ProcessRunner.run(GatewayHarness.binary.path, ["approvals", "approve", id, "--reason", "x", "--data-dir", harness.directory.path])
        XCTAssertNotEqual(withoutToken.status, 0)

        let alice = try await harness.token(subject: "alice", groups: ["sre"], model: nil)
        let approved = try cli(["approve", id, "--reason", "planned", "--token", alice])
        XCTAssertEqual(approved.status, 0, approved.output)
        XCTAssertTrue(approved.stdout.contains("approved by alice"), approved.output)
        let result = try await kubectl.value
        XCTAssertEqual(result.status, 0, result.output)

        try await eventually(10, "status.pendingApprovals is back to 0") { await Self.pendingApprovals(cluster) == 0 }
        try await eventually(10, "an ApprovalApproved Event naming the approver") {
            await Self.events(cluster).contains { $0["reason"]?.stringValue == "ApprovalApproved" && ($0["note"]?.stringValue?.contains("alice") ?? false) }
        }
        let shown = try cli(["show", id, "--token", harness.adminToken])
        XCTAssertTrue(shown.stdout.contains("Decided by alice: planned"), shown.output)
    }
}
