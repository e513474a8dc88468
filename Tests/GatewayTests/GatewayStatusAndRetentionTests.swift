import AgentGateAPI
import Foundation
import Gateway
import KubeClient
import KubeCore
import SessionStore
import TestSupport
import XCTest

/// `status.sessions` applied to AgentConnections (server-side apply on /status as
/// `agentgate-gateway`, against the embedded API server) and retention pruning, on the
/// session-store backend of the class.
class GatewayStatusAndRetentionTests: XCTestCase {
    /// The session-store backend; the `...OnPostgres` subclass runs every test here on PostgreSQL.
    class var backend: GatewayStoreBackend { .sqlite }

    var harness: GatewayHarness!
    var client: KubernetesClient!

    override func setUp() async throws {
        harness = try await GatewayHarness(backend: Self.backend)
        client = try KubernetesClient(config: KubeConfig(server: harness.cluster.url, credentials: .token(harness.cluster.adminToken)))
    }

    override func tearDown() async throws {
        try? await client?.shutdown()
        await harness?.stop()
    }

    private var connectionPath: String { "/apis/agentgate.io/v1alpha1/namespaces/default/agentconnections/conn" }

    /// The AgentConnection `default/conn` as a platform team would apply it, with the status
    /// fields the operator owns.
    private func createConnectionWithOperatorStatus() async throws {
        let connection: JSONValue = [
            "apiVersion": "agentgate.io/v1alpha1", "kind": "AgentConnection",
            "metadata": ["name": "conn", "namespace": "default"],
            "spec": ["serviceAccountName": "agent",
                     "identity": ["issuer": .string(harness.config.identity.issuer), "audiences": [.string(GatewayHarness.audience)],
                                  "allowedSubjects": ["agent-1"]]],
        ]
        try await harness.cluster.applyObject(connection)
        _ = try await client.apply(AgentConnection.resourceType, [
            "apiVersion": "agentgate.io/v1alpha1", "kind": "AgentConnection",
            "metadata": ["name": "conn", "namespace": "default"],
            "status": ["observedGeneration": 1, "endpoint": "https://gw.example/c/default/conn"],
        ], namespace: "default", fieldManager: "agentgate-operator", force: true, subresource: "status")
    }

    private func get(token: String) async throws -> Int {
        try await GatewayHarness.send(.GET, "\(harness.connectionURL)/api/v1/namespaces/default/configmaps",
                                      headers: [("Authorization", "Bearer \(token)")]).status
    }

    func testSessionStatusIsAppliedAsItsOwnFieldManagerAndLeavesTheOperatorsFields() async throws {
        try await createConnectionWithOperatorStatus()
        let status = try await get(token: try await harness.token { $0.sessionID = "s-1" })
        XCTAssertEqual(status, 200)
        let reporter = SessionStatusReporter(client: client, registry: harness.registry, store: harness.store)
        await reporter.reportOnce()

        let object = await harness.cluster.request(method: "GET", path: connectionPath, body: nil).body
        let sessions = try XCTUnwrap(object[path: ["status", "sessions"]], "\(object)")
        let recorded = try await harness.store.listSessions(SessionFilter())
        XCTAssertEqual(sessions["total"]?.intValue, 1)
        XCTAssertEqual(sessions["active"]?.intValue, 1)
        XCTAssertEqual(sessions["lastSessionID"]?.stringValue, recorded.first?.id)
        let lastActivity = try XCTUnwrap(sessions["lastActivity"]?.stringValue)
        XCTAssertNotNil(KubeTime.parse(lastActivity), lastActivity)
        XCTAssertEqual(object[path: ["status", "endpoint"]]?.stringValue, "https://gw.example/c/default/conn",
                       "the operator's status field is untouched")
        XCTAssertEqual(object[path: ["status", "observedGeneration"]]?.intValue, 1)
        XCTAssertEqual(object[path: ["metadata", "generation"]]?.intValue, 1, "spec was not written")
        let statusManagers = (object[path: ["metadata", "managedFields"]]?.arrayValue ?? []).filter { $0["subresource"]?.stringValue == "status" }
        XCTAssertEqual(Set(statusManagers.compactMap { $0["manager"]?.stringValue }), ["agentgate-operator", "agentgate-gateway"])
        let gatewayEntry = try XCTUnwrap(statusManagers.first { $0["manager"]?.stringValue == "agentgate-gateway" })
        XCTAssertEqual(gatewayEntry["operation"]?.stringValue, "Apply")
        let owned = gatewayEntry[path: ["fieldsV1", "f:status"]]?.objectValue?.keys.sorted() ?? []
        XCTAssertEqual(owned, ["f:pendingApprovals", "f:sessions"], "the gateway owns status.sessions and pendingApprovals only")

        // The operator re-applies its own fields: the gateway's stay.
        _ = try await client.apply(AgentConnection.resourceType, [
            "apiVersion": "agentgate.io/v1alpha1", "kind": "AgentConnection",
            "metadata": ["name": "conn", "namespace": "default"],
            "status": ["observedGeneration": 1, "endpoint": "https://gw2.example/c/default/conn"],
        ], namespace: "default", fieldManager: "agentgate-operator", force: false, subresource: "status")
        let after = await harness.cluster.request(method: "GET", path: connectionPath, body: nil).body
        XCTAssertEqual(after[path: ["status", "sessions", "total"]]?.intValue, 1)

        // Unchanged figures are not written again.
        let version = after[path: ["metadata", "resourceVersion"]]?.stringValue
        let applies = reporter.applyCount
        await reporter.reportOnce()
        XCTAssertEqual(reporter.applyCount, applies, "no apply when nothing changed")
        let same = await harness.cluster.request(method: "GET", path: connectionPath, body: nil).body
        XCTAssertEqual(same[path: ["metadata", "resourceVersion"]]?.stringValue, version)
    }

    func testSessionStatusIsAppliedAtMostOncePerIntervalWhileTrafficFlows() async throws {
        try await createConnectionWithOperatorStatus()
        let reporter = SessionStatusReporter(client: client, registry: harness.registry, store: harness.store, interval: .seconds(1))
        reporter.start()
        defer { reporter.stop() }
        // A new session every 100 ms for 2.5 s: the figures change constantly.
        let started = Date()
        var sessions = 0
        while Date().timeIntervalSince(started) < 2.5 {
            let status = try await get(token: try await harness.token { $0.sessionID = "s-\(sessions)" })
            XCTAssertEqual(status, 200)
            sessions += 1
            try await Task.sleep(for: .milliseconds(100))
        }
        XCTAssertLessThanOrEqual(reporter.applyCount, 4, "one apply per second at most (2.5 s of traffic)")
        XCTAssertGreaterThanOrEqual(reporter.applyCount, 2)
        let expected = sessions
        try await eventually(5, "status.sessions.total reaches \(expected)") { [harness, connectionPath] in
            await harness!.cluster.request(method: "GET", path: connectionPath, body: nil)
                .body[path: ["status", "sessions", "total"]]?.intValue == Int64(expected)
        }
    }

    func testConnectionWithoutAnAgentConnectionObjectIsSkippedQuietly() async throws {
        _ = try await get(token: try await harness.token())
        let reporter = SessionStatusReporter(client: client, registry: harness.registry, store: harness.store)
        await reporter.reportOnce()
        XCTAssertEqual(reporter.applyCount, 0, "nothing to apply to: the object does not exist")
    }

    func testRetentionDeletesSessionsOlderThanTheConnectionsPolicyAndKeepsTheRest() async throws {
        harness.config.recording.retention = "1h"
        harness.registry.put(harness.config, token: harness.saToken)
        let now = Date()
        let served = ConnectionRef(namespace: "default", name: "conn")
        let gone = ConnectionRef(namespace: "default", name: "deleted-connection")
        func session(_ connection: ConnectionRef, _ key: String, ageHours: Double) async throws -> SessionRecord {
            let at = now.addingTimeInterval(-ageHours * 3600)
            let record = try await harness.store.resolveSession(SessionKey(connection: connection, subject: "agent-1", tokenKey: key),
                                                                identity: AgentIdentityInfo(), at: at)
            let exchange = try await harness.store.beginExchange(ExchangeStart(
                sessionID: record.id, time: at, verb: "get", resource: "configmaps", namespace: "default", name: "x",
                httpMethod: "GET", path: "/api/v1/namespaces/default/configmaps/x"))
            try await harness.store.completeExchange(exchange.id, result: ExchangeResult(statusCode: 200, completedAt: at, latencyMs: 1))
            return record
        }
        let expired = try await session(served, "expired", ageHours: 2)
        let fresh = try await session(served, "fresh", ageHours: 0.5)
        let goneButKept = try await session(gone, "kept", ageHours: 2)
        let goneAndExpired = try await session(gone, "expired", ageHours: 721)
        let live = try await get(token: try await harness.token())
        XCTAssertEqual(live, 200, "a live session through the gateway")

        let pruner = RetentionPruner(registry: harness.registry, store: harness.store)
        let result = await pruner.pruneOnce(at: now.addingTimeInterval(1))
        XCTAssertEqual(result.sessions, 2)
        XCTAssertEqual(result.exchanges, 2)
        let left = Set(try await harness.store.listSessions(SessionFilter()).map(\.id))
        XCTAssertFalse(left.contains(expired.id), "older than the connection's 1h retention")
        XCTAssertFalse(left.contains(goneAndExpired.id), "older than the longest retention in force (720h default)")
        XCTAssertTrue(left.contains(fresh.id))
        XCTAssertTrue(left.contains(goneButKept.id), "an unserved connection's history keeps the longest retention")
        XCTAssertEqual(left.count, 3, "the live session is kept")
        let expiredExchanges = try await harness.store.exchanges(sessionID: expired.id)
        XCTAssertEqual(expiredExchanges.count, 0, "the expired session's exchanges went with it")
    }

    func testAgentKeepsWorkingWhenItsSessionIsPrunedUnderIt() async throws {
        let token = try await harness.token { $0.sessionID = "long-lived" }
        let first = try await get(token: token)
        XCTAssertEqual(first, 200)
        let before = try await harness.store.listSessions(SessionFilter())
        XCTAssertEqual(before.count, 1)
        // Retention (here, or on another replica) deletes the session the gateway resolved.
        _ = try await harness.store.prune(olderThan: Date().addingTimeInterval(3600),
                                          connection: ConnectionRef(namespace: "default", name: "conn"))
        let second = try await get(token: token)
        XCTAssertEqual(second, 200, "resolved again, not refused")
        let after = try await harness.store.listSessions(SessionFilter())
        XCTAssertEqual(after.count, 1)
        XCTAssertNotEqual(after.first?.id, before.first?.id, "a new session for the same token")
        XCTAssertEqual(after.first?.tokenKey, "long-lived")
        let exchanges = try await harness.store.exchanges(sessionID: after.first!.id)
        XCTAssertEqual(exchanges.map(\.verb), ["list"])
        let third = try await get(token: token)
        XCTAssertEqual(third, 200)
        let again = try await harness.store.exchanges(sessionID: after.first!.id)
        XCTAssertEqual(again.count, 2, "later requests join the new session")
    }

    func testRetentionRunsPeriodicallyOnItsOwn() async throws {
        harness.config.recording.retention = "1h"
        harness.registry.put(harness.config, token: harness.saToken)
        let old = try await harness.store.resolveSession(
            SessionKey(connection: ConnectionRef(namespace: "default", name: "conn"), subject: "agent-1", tokenKey: "old"),
            identity: AgentIdentityInfo(), at: Date().addingTimeInterval(-7200))
        let pruner = RetentionPruner(registry: harness.registry, store: harness.store, interval: .milliseconds(200))
        pruner.start()
        defer { pruner.stop() }
        try await eventually(5, "the expired session is pruned") { [harness] in
            try await harness!.store.session(id: old.id) == nil
        }
    }
}

/// GatewayStatusAndRetentionTests with the session store on PostgreSQL.
final class GatewayStatusAndRetentionOnPostgresTests: GatewayStatusAndRetentionTests {
    override class var backend: GatewayStoreBackend { .postgres }

    override func testSessionStatusIsAppliedAsItsOwnFieldManagerAndLeavesTheOperatorsFields() async throws { try await super.testSessionStatusIsAppliedAsItsOwnFieldManagerAndLeavesTheOperatorsFields() }
    override func testSessionStatusIsAppliedAtMostOncePerIntervalWhileTrafficFlows() async throws { try await super.testSessionStatusIsAppliedAtMostOncePerIntervalWhileTrafficFlows() }
    override func testConnectionWithoutAnAgentConnectionObjectIsSkippedQuietly() async throws { try await super.testConnectionWithoutAnAgentConnectionObjectIsSkippedQuietly() }
    override func testRetentionDeletesSessionsOlderThanTheConnectionsPolicyAndKeepsTheRest() async throws { try await super.testRetentionDeletesSessionsOlderThanTheConnectionsPolicyAndKeepsTheRest() }
    override func testRetentionRunsPeriodicallyOnItsOwn() async throws { try await super.testRetentionRunsPeriodicallyOnItsOwn() }
    override func testAgentKeepsWorkingWhenItsSessionIsPrunedUnderIt() async throws { try await super.testAgentKeepsWorkingWhenItsSessionIsPrunedUnderIt() }
}
