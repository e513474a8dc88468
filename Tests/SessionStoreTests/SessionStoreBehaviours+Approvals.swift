import Foundation
import SessionStore
import XCTest

/// Approvals in the store, on every backend.
extension Behaviours {
    static func approval(_ id: String, connection: ConnectionRef = connA, at: Date = t0) -> ApprovalRecord {
        ApprovalRecord(id: id, connection: connection, rule: "delete-deployments", subject: "agent", groups: ["agents"],
                       model: "claude", sessionID: "s", exchangeID: "e", verb: "delete", apiGroup: "apps", resource: "deployments",
                       subresource: "", namespace: "default", name: "web", httpMethod: "DELETE",
                       path: "/apis/apps/v1/namespaces/default/deployments/web", query: "", requestBody: Array(#"{"a":1}"#.utf8),
                       dryRunStatusCode: 200, dryRunBody: Array("{}".utf8), approverGroups: ["sre"], createdAt: at,
                       expiresAt: at + 600)
    }

    static func approvalIsDecidedExactlyOnce(_ backend: TestBackend) async throws {
        let store = try await backend.open(try backend.freshURL())
        try await store.createApproval(approval("A1"))
        let stored = try await store.approval(id: "A1")
        XCTAssertEqual(stored?.state, .pending)
        XCTAssertEqual(stored?.owner, store.instanceID)
        XCTAssertEqual(stored?.requestBody, Array(#"{"a":1}"#.utf8))
        XCTAssertEqual(stored?.approverGroups, ["sre"])
        XCTAssertEqual(us(stored?.expiresAt), us(t0 + 600))
        // Two approvers (or an approver and the timeout) at once: one wins, the other is told.
        let outcomes = await withTaskGroup(of: Result<ApprovalRecord, any Error>.self) { group in
            group.addTask { await Result(awaiting: { try await store.decideApproval("A1", ApprovalDecision(state: .approved, decidedBy: "alice", reason: "ok")) }) }
            group.addTask { await Result(awaiting: { try await store.decideApproval("A1", ApprovalDecision(state: .expired)) }) }
            var all: [Result<ApprovalRecord, any Error>] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        let winners = outcomes.compactMap { try? $0.get() }
        XCTAssertEqual(winners.count, 1)
        let losers = outcomes.compactMap { outcome -> ApprovalRecord? in
            if case .failure(SessionStoreError.approvalAlreadyDecided(let current)) = outcome { return current }
            return nil
        }
        XCTAssertEqual(losers.map(\.state), winners.map(\.state), "the loser sees the winner's decision")
        do {
            _ = try await store.decideApproval("nope", ApprovalDecision(state: .denied, decidedBy: "alice", reason: "x"))
            XCTFail("unknown id")
        } catch SessionStoreError.approvalNotFound(let id) {
            XCTAssertEqual(id, "nope")
        }
        try await store.close()
    }

    static func approvalsListByStateAndConnectionNewestFirst(_ backend: TestBackend) async throws {
        let store = try await backend.open(try backend.freshURL())
        try await store.createApproval(approval("A1", at: t0))
        try await store.createApproval(approval("A2", at: t0 + 1))
        try await store.createApproval(approval("B1", connection: connB, at: t0 + 2))
        _ = try await store.decideApproval("A1", ApprovalDecision(state: .denied, decidedBy: "alice", reason: "no"))
        let all = try await store.listApprovals(ApprovalFilter()).map(\.id)
        XCTAssertEqual(all, ["B1", "A2", "A1"])
        let pending = try await store.listApprovals(ApprovalFilter(state: .pending)).map(\.id)
        XCTAssertEqual(pending, ["B1", "A2"])
        let ofConnectionA = try await store.listApprovals(ApprovalFilter(connections: [connA])).map(\.id)
        XCTAssertEqual(ofConnectionA, ["A2", "A1"])
        let ofNoConnection = try await store.listApprovals(ApprovalFilter(connections: [])).map(\.id)
        XCTAssertEqual(ofNoConnection, [])
        let denied = try await store.approval(id: "A1")
        XCTAssertEqual(denied?.decidedBy, "alice")
        XCTAssertEqual(denied?.reason, "no")
        XCTAssertNotNil(denied?.decidedAt)
        try await store.close()
    }

    static func closingAndRecoveryAbandonPendingApprovals(_ backend: TestBackend) async throws {
        let url = try backend.freshURL()
        let stopping = try await backend.open(url, instanceID: "stopping")
        try await stopping.createApproval(approval("S1"))
        try await stopping.close()
        let dead = try await backend.open(url, instanceID: "dead")
        try await dead.createApproval(approval("D1"))
        let live = try await backend.open(url, instanceID: "live")
        try await live.createApproval(approval("L1"))
        try await live.heartbeat(at: Date())
        // "dead" never heartbeat: unknown to the instances table, so its holds are gone.
        let restarted = try await backend.open(url)
        try await restarted.recoverInterrupted()
        let heldByTheStopped = try await restarted.approval(id: "S1")?.state
        XCTAssertEqual(heldByTheStopped, .abandoned, "closed: abandoned")
        let heldByTheDead = try await restarted.approval(id: "D1")?.state
        XCTAssertEqual(heldByTheDead, .abandoned, "dead owner: abandoned on recovery")
        let heldByTheLive = try await restarted.approval(id: "L1")?.state
        XCTAssertEqual(heldByTheLive, .pending, "a live replica's hold is left alone")
        try await live.close()
        try await dead.close()
        try await restarted.close()
    }

    static func decisionOnOneInstanceIsNotifiedToAnother(_ backend: TestBackend) async throws {
        let url = try backend.freshURL()
        let a = try await backend.open(url)
        let b = try await backend.open(url)
        let decisions = b.approvalDecisions()
        try await a.createApproval(approval("N1"))
        // LISTEN takes a moment to be established; decide until it is heard.
        let heard = Task { () -> String? in
            for await id in decisions { return id }
            return nil
        }
        try await Task.sleep(for: .milliseconds(500))
        _ = try await a.decideApproval("N1", ApprovalDecision(state: .approved, decidedBy: "alice"))
        let id = try await withTimeoutValue(10) { await heard.value }
        XCTAssertEqual(id, "N1")
        try await a.close()
        try await b.close()
    }

    private static func withTimeoutValue<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { await body() }
            group.addTask { try await Task.sleep(for: .seconds(seconds)); return nil }
            guard let value = try await group.next() ?? nil else { throw CancellationError() }
            group.cancelAll()
            return value
        }
    }
}

extension Result where Failure == any Error {
    init(awaiting body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
