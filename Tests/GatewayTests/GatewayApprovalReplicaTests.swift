import AgentGateAPI
import Foundation
import KubeCore
import NIOHTTP1
import SessionStore
import TestSupport
import XCTest

/// Two real `agentgate gateway` processes on one PostgreSQL database: an approval given on
/// one releases the request held by the other (LISTEN/NOTIFY), and a gateway that stops
/// answers its held requests 503 and records them abandoned.
final class GatewayApprovalReplicaTests: XCTestCase {
    var harness: GatewayHarness!

    override func setUp() async throws {
        harness = try await GatewayHarness(backend: .postgres, approval: GatewayApprovalTests.policy)
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    private func start(_ name: String) async throws -> GatewayProcess {
        try await harness.startGatewayBinary(name: name)
    }

    private func pending(on gateway: GatewayProcess) async throws -> String {
        let found = LockedBox<String?>(nil)
        try await eventually(20, "a pending approval listed by \(gateway.adminURL)") {
            let list = try await GatewayHarness.send(.GET, "\(gateway.adminURL)/api/v1/approvals?state=pending",
                                                     headers: [("Authorization", "Bearer \(gateway.adminToken)")])
            found.value = try JSONValue(parsing: list.body)["items"]?.arrayValue?.first?["id"]?.stringValue
            return found.value != nil
        }
        return try XCTUnwrap(found.value)
    }

    private func createDeployment(_ name: String) async throws {
        try await harness.cluster.applyObject([
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": .string(name), "namespace": "default"],
            "spec": ["replicas": 1, "selector": ["matchLabels": ["app": .string(name)]],
                     "template": ["metadata": ["labels": ["app": .string(name)]], "spec": ["containers": [["name": "c", "image": "busybox"]]]]],
        ])
    }

    /// Two gateway processes, a and b; an agent's `DELETE deployment web` sent to a and held
    /// there; its approval id as b lists it.
    private func deleteHeldOnAListedOnB() async throws
        -> (a: GatewayProcess, b: GatewayProcess, held: Task<(status: Int, body: String, headers: HTTPHeaders), any Error>, id: String) {
        let a = try await start("gw-a")
        let b = try await start("gw-b")
        try await createDeployment("web")
        let agent = try await harness.token()
        let held = Task {
            try await GatewayHarness.send(.DELETE, "\(a.connectionURL)/apis/apps/v1/namespaces/default/deployments/web",
                                          headers: [("Authorization", "Bearer \(agent)")])
        }
        return (a, b, held, try await pending(on: b))
    }

    func testApprovalOnOneGatewayProcessReleasesTheRequestHeldByAnother() async throws {
        let (_, b, held, id) = try await deleteHeldOnAListedOnB()
        let alice = try await harness.token(subject: "alice", groups: ["sre"], model: nil)
        let decided = try await GatewayHarness.send(.POST, "\(b.adminURL)/api/v1/approvals/\(id)/approve",
                                                    headers: [("Authorization", "Bearer \(alice)")], body: #"{"reason":"from replica b"}"#)
        XCTAssertEqual(decided.status, 200, decided.body)
        let decidedAt = Date()
        let reply = try await withTimeout(30, "the request held on a is released") { try await held.value }
        XCTAssertEqual(reply.status, 200, reply.body)
        XCTAssertLessThan(Date().timeIntervalSince(decidedAt), 5, "released by the notification, not by the 10 s re-read")
        let gone = await harness.cluster.request(method: "GET", path: "/apis/apps/v1/namespaces/default/deployments/web", body: nil)
        XCTAssertEqual(gone.status, 404)
    }

    func testGatewayProcessStoppedWhileHoldingAnswers503AndItsApprovalIsAbandoned() async throws {
        let (a, b, held, id) = try await deleteHeldOnAListedOnB()
        kill(a.process.processIdentifier, SIGTERM)
        let reply = try await withTimeout(30, "the held request is answered") { try await held.value }
        XCTAssertEqual(reply.status, 503, reply.body)
        XCTAssertTrue(reply.body.contains("retry"), reply.body)
        let approval = try await GatewayHarness.send(.GET, "\(b.adminURL)/api/v1/approvals/\(id)",
                                                     headers: [("Authorization", "Bearer \(b.adminToken)")])
        XCTAssertEqual(try JSONValue(parsing: approval.body)["state"]?.stringValue, "abandoned", approval.body)
        let still = await harness.cluster.request(method: "GET", path: "/apis/apps/v1/namespaces/default/deployments/web", body: nil)
        XCTAssertEqual(still.status, 200)
    }
}
