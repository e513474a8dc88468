import AgentGateAPI
import Foundation
import Gateway
import KubeClient
import KubeCore
import SessionStore
import TestSupport
import XCTest

/// `status.sessions` from two gateway replicas on one PostgreSQL store: each replica has its
/// own registry and its own SessionStatusReporter, sessions go through both, and whichever
/// reporter writes, the AgentConnection shows the same figures (the shared store's), and a
/// stale apply by a replica that then stopped is corrected by the other.
final class GatewayStatusReplicaTests: XCTestCase {
    var harness: GatewayHarness!
    var client: KubernetesClient!
    /// The second replica: its own store handle, registry and gateway.
    var storeB: (any SessionStore)!
    var gatewayB: Gateway!
    let registryB = ConnectionRegistry()
    var connectionB = ""

    override func setUp() async throws {
        harness = try await GatewayHarness(backend: .postgres)
        client = try KubernetesClient(config: KubeConfig(server: harness.cluster.url, credentials: .token(harness.cluster.adminToken)))
        storeB = try await SessionStores.open(url: harness.storeURL)
        registryB.put(harness.config, token: harness.saToken)
        gatewayB = try Gateway(upstream: KubeConfig(server: harness.cluster.url), registry: registryB, store: storeB)
        let port = try await gatewayB.start(host: "127.0.0.1", port: 0, tls: nil)
        connectionB = "http://127.0.0.1:\(port)/c/default/conn"
    }

    override func tearDown() async throws {
        await gatewayB?.shutdown()
        try? await storeB?.close()
        try? await client?.shutdown()
        await harness?.stop()
    }

    private var connectionPath: String { "/apis/agentgate.io/v1alpha1/namespaces/default/agentconnections/conn" }

    private func sessions() async -> JSONValue? {
        await harness.cluster.request(method: "GET", path: connectionPath, body: nil).body[path: ["status", "sessions"]]
    }

    private func list(through connection: String, session: String) async throws {
        let token = try await harness.token { $0.sessionID = session }
        let answer = try await GatewayHarness.send(.GET, "\(connection)/api/v1/namespaces/default/configmaps",
                                                   headers: [("Authorization", "Bearer \(token)")])
        XCTAssertEqual(answer.status, 200, answer.body)
    }

    func testTwoReplicasReportersAgreeOnStatusSessionsFromTheSharedStore() async throws {
        try await harness.cluster.applyObject([
            "apiVersion": "agentgate.io/v1alpha1", "kind": "AgentConnection",
            "metadata": ["name": "conn", "namespace": "default"],
            "spec": ["serviceAccountName": "agent",
                     "identity": ["issuer": .string(harness.config.identity.issuer), "audiences": [.string(GatewayHarness.audience)],
                                  "allowedSubjects": ["agent-1"]]],
        ])
        let reporterA = SessionStatusReporter(client: client, registry: harness.registry, store: harness.store)
        let reporterB = SessionStatusReporter(client: client, registry: registryB, store: storeB)

        // One session through each replica, and the first one continued on the other replica.
        try await list(through: harness.connectionURL, session: "run-a")
        try await list(through: connectionB, session: "run-b")
        try await list(through: connectionB, session: "run-a")

        await reporterA.reportOnce()
        let readByA = await sessions()
        let byA = try XCTUnwrap(readByA)
        await reporterB.reportOnce()
        let readByB = await sessions()
        let byB = try XCTUnwrap(readByB)
        XCTAssertEqual(byA, byB, "both replicas report the shared store's figures")
        XCTAssertEqual(byA["total"]?.intValue, 2, "run-a continued on the other replica is one session: \(byA)")
        XCTAssertEqual(byA["active"]?.intValue, 2)
        let recorded = try await storeB.listSessions(SessionFilter())
        XCTAssertEqual(recorded.count, 2)
        let newest = try XCTUnwrap(recorded.max { ($0.lastActivity, $0.id) < ($1.lastActivity, $1.id) })
        XCTAssertEqual(byA["lastSessionID"]?.stringValue, newest.id, "the session last active (run-a, on replica b)")
        XCTAssertEqual(byA["lastActivity"]?.stringValue, KubeTime.format(newest.lastActivity))

        // A session only replica b served is reported by replica a, and b then has nothing to change.
        try await list(through: connectionB, session: "run-c")
        await reporterA.reportOnce()
        let readAfterC = await sessions()
        let afterC = try XCTUnwrap(readAfterC)
        XCTAssertEqual(afterC["total"]?.intValue, 3, "\(afterC)")
        let version = await harness.cluster.request(method: "GET", path: connectionPath, body: nil).body[path: ["metadata", "resourceVersion"]]
        await reporterB.reportOnce()
        let again = await harness.cluster.request(method: "GET", path: connectionPath, body: nil).body
        XCTAssertEqual(again[path: ["status", "sessions"]], afterC)
        XCTAssertEqual(again[path: ["metadata", "resourceVersion"]], version, "the same figures under the same manager change nothing")

        // A replica that read before run-c and applied after b did, then stopped: the object
        // holds figures the store no longer has. b's own figures did not change, yet b puts the
        // store's back once its last apply is a resync interval old.
        var stale = afterC
        stale.set(.int(2), at: ["total"])
        _ = try await client.apply(AgentConnection.resourceType, [
            "apiVersion": "agentgate.io/v1alpha1", "kind": "AgentConnection",
            "metadata": ["name": "conn", "namespace": "default"],
            "status": ["sessions": stale, "pendingApprovals": 0],
        ], namespace: "default", fieldManager: SessionStatusReporter.fieldManager, force: true, subresource: "status")
        await reporterB.reportOnce()
        let staleRead = await sessions()
        XCTAssertEqual(staleRead?["total"]?.intValue, 2, "within the resync interval b trusts its last apply")
        await reporterB.reportOnce(at: Date().addingTimeInterval(61))
        let corrected = await sessions()
        XCTAssertEqual(corrected?["total"]?.intValue, 3, "\(corrected ?? nil)")
    }
}
