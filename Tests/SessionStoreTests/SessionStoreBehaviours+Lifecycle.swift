import Foundation
import SessionStore
import XCTest

/// Behaviours around crashes, replicas, retention, hostile input and concurrency.
extension Behaviours {
    static func recoverInterruptedMarksDeadInstancesInProgressIncomplete(_ backend: TestBackend) async throws {
        let url = try backend.freshURL()
        let crashed = try await backend.open(url, instanceID: "replica-crashed")
        try await crashed.heartbeat(at: t0)
        let session = try await crashed.resolveSession(SessionKey(connection: connA, subject: "agent"),
                                                       identity: AgentIdentityInfo(), at: t0)
        let done = try await crashed.begin(session, at: t0 + 1)
        try await crashed.completeExchange(done.id, result: ExchangeResult(statusCode: 200, completedAt: t0 + 1, latencyMs: 3))
        let cut = try await crashed.begin(session, at: t0 + 2, verb: "watch")
        // What it recorded is in the database, as a SIGKILLed process's journal is once the
        // next store opens the file (SQLiteCrashTests kills a real process).
        try await crashed.flush()
        // `crashed` is never closed: it stops heartbeating, as a SIGKILLed process would.
        let restarted = try await backend.open(url, instanceID: "replica-restarted")
        let own = try await restarted.begin(session, at: t0 + 3)
        let marked = try await restarted.recoverInterrupted(at: t0 + 120, staleAfter: 60)
        XCTAssertEqual(marked, 1)
        let states = try await restarted.exchanges(sessionID: session.id).map(\.state)
        XCTAssertEqual(states, [.complete, .incomplete, .inProgress], "earlier intact, cut one incomplete, own untouched")
        try await assertEqualAsync(try await restarted.exchange(id: cut.id)?.state, .incomplete)
        try await assertEqualAsync(try await restarted.exchange(id: own.id)?.state, .inProgress)
        try await assertEqualAsync(try await restarted.recoverInterrupted(at: t0 + 130, staleAfter: 60), 0, "idempotent")
        try await restarted.close()
        try await crashed.close()
    }

    static func replicaDoesNotMarkLiveReplicasExchangesIncomplete(_ backend: TestBackend) async throws {
        let url = try backend.freshURL()
        let first = try await backend.open(url, instanceID: "replica-1")
        let second = try await backend.open(url, instanceID: "replica-2")
        try await first.heartbeat(at: t0)
        let session = try await first.resolveSession(SessionKey(connection: connA, subject: "agent", tokenKey: "sid"),
                                                     identity: AgentIdentityInfo(), at: t0)
        let live = try await first.begin(session, at: t0, verb: "watch")
        try await first.flush()
        // The second replica starts 30 s later: the first heartbeated within staleAfter.
        try await assertEqualAsync(try await second.recoverInterrupted(at: t0 + 30, staleAfter: 60), 0)
        try await assertEqualAsync(try await second.exchange(id: live.id)?.state, .inProgress)
        // And closing the second replica leaves the first one's exchanges alone.
        try await second.close()
        try await assertEqualAsync(try await first.exchange(id: live.id)?.state, .inProgress)
        // Closing the first marks its own in-flight exchange incomplete (graceful shutdown).
        try await first.close()
        let auditor = try await backend.open(url)
        try await assertEqualAsync(try await auditor.exchange(id: live.id)?.state, .incomplete)
        try await auditor.close()
    }

    static func pruneDeletesOldSessionsAndKeepsRecent(_ backend: TestBackend) async throws {
        let store = try await backend.open(try backend.freshURL())
        let old = try await store.resolveSession(SessionKey(connection: connA, subject: "agent", tokenKey: "old"),
                                                 identity: AgentIdentityInfo(), at: t0)
        let oldEx = try await store.begin(old, at: t0, body: [1, 2, 3])
        try await store.appendStreamChunk(oldEx.id, at: t0 + 1, channel: "stdout", data: [4, 5])
        try await store.appendStreamChunk(oldEx.id, at: t0 + 2, channel: "stdout", data: [6])
        try await store.completeExchange(oldEx.id, result: ExchangeResult(statusCode: 200, completedAt: t0 + 3, latencyMs: 3000, responseBody: [7, 8, 9, 10]))
        _ = try await store.begin(old, at: t0 + 4)
        let recent = try await store.resolveSession(SessionKey(connection: connA, subject: "agent", tokenKey: "new"),
                                                    identity: AgentIdentityInfo(), at: t0 + 86400 * 10)
        let recentEx = try await store.begin(recent, at: t0 + 86400 * 10, body: [1])
        try await store.appendStreamChunk(recentEx.id, at: t0 + 86400 * 10, channel: "stdout", data: [2])

        let result = try await store.prune(olderThan: t0 + 86400 * 7)
        XCTAssertEqual(result.sessions, 1)
        XCTAssertEqual(result.exchanges, 2)
        XCTAssertEqual(result.streamChunks, 2)
        XCTAssertEqual(result.bytes, 3 + 2 + 1 + 4)
        try await assertNilAsync(try await store.session(id: old.id))
        try await assertNilAsync(try await store.exchange(id: oldEx.id))
        try await assertEqualAsync(try await store.streamChunks(exchangeID: oldEx.id), [])
        try await assertEqualAsync(try await store.listSessions(SessionFilter()).map(\.id), [recent.id])
        try await assertEqualAsync(try await store.streamChunks(exchangeID: recentEx.id).count, 1)
        try await assertEqualAsync(try await store.prune(olderThan: t0 + 86400 * 7), PruneResult(), "nothing left to prune")
        try await store.close()
    }

    static func pruneOfOneConnectionLeavesOtherConnectionsSessions(_ backend: TestBackend) async throws {
        let store = try await backend.open(try backend.freshURL())
        let oldA = try await store.resolveSession(SessionKey(connection: connA, subject: "agent", tokenKey: "a"),
                                                  identity: AgentIdentityInfo(), at: t0)
        let oldAEx = try await store.begin(oldA, at: t0)
        try await store.appendStreamChunk(oldAEx.id, at: t0 + 1, channel: "event", data: [1])
        let oldB = try await store.resolveSession(SessionKey(connection: connB, subject: "agent", tokenKey: "b"),
                                                  identity: AgentIdentityInfo(), at: t0)
        _ = try await store.begin(oldB, at: t0)

        let result = try await store.prune(olderThan: t0 + 3600, connection: connA)
        XCTAssertEqual(result.sessions, 1)
        XCTAssertEqual(result.exchanges, 1)
        XCTAssertEqual(result.streamChunks, 1)
        try await assertNilAsync(try await store.session(id: oldA.id))
        try await assertEqualAsync(try await store.streamChunks(exchangeID: oldAEx.id), [])
        try await assertEqualAsync(try await store.listSessions(SessionFilter()).map(\.id), [oldB.id],
                                   "the other connection's equally old session is kept")
        try await assertEqualAsync(try await store.prune(olderThan: t0 + 3600, connection: connA), PruneResult())
        try await store.close()
    }

    static func writesCancelledMidwayLeaveTheStoreWritable(_ backend: TestBackend) async throws {
        let store = try await backend.open(try backend.freshURL())
        let session = try await store.resolveSession(SessionKey(connection: connA, subject: "agent", tokenKey: "k"),
                                                     identity: AgentIdentityInfo(), at: t0)
        // Agents hanging up: their tasks are cancelled at every point of a write.
        for round in 0..<20 {
            let tasks = (0..<8).map { index in
                Task { try await store.begin(session, at: t0 + Double(round), name: "cancelled-\(round)-\(index)") }
            }
            if round % 2 == 0 { try await Task.sleep(for: .microseconds(200 * round)) }
            for task in tasks { task.cancel() }
            for task in tasks { _ = try? await task.value }
        }
        // A write is not cancelled with its caller (the gateway relies on it to complete the
        // exchange of an agent that hung up): all 160 are recorded.
        let recorded = try await store.exchanges(sessionID: session.id).map(\.name)
        XCTAssertEqual(Set(recorded.filter { $0.hasPrefix("cancelled-") }).count, 160)
        // The store still takes writes.
        let after = try await store.begin(session, at: t0 + 100, name: "after")
        try await store.completeExchange(after.id, result: ExchangeResult(statusCode: 200, completedAt: t0 + 101, latencyMs: 1))
        try await assertEqualAsync(try await store.exchange(id: after.id)?.state, .complete)
        try await store.close()
    }

    static func injectionShapedValuesRoundTripHarmlessly(_ backend: TestBackend) async throws {
        let store = try await backend.open(try backend.freshURL())
        let hostile = "x'; DROP TABLE sessions; --"
        let quoteHeavy = #"a"b\c?$1 '' ; SELECT pg_sleep(5); /*"#
        let session = try await store.resolveSession(
            SessionKey(connection: ConnectionRef(namespace: hostile, name: quoteHeavy), subject: hostile, tokenKey: quoteHeavy),
            identity: AgentIdentityInfo(groups: [hostile, "\"]"], model: quoteHeavy), at: t0)
        let ex = try await store.begin(session, at: t0, verb: hostile, resource: quoteHeavy, namespace: hostile, name: "?")
        let found = try await store.listSessions(SessionFilter(subject: hostile, model: quoteHeavy, verb: hostile, namespace: hostile, name: "?"))
        XCTAssertEqual(found.map(\.id), [session.id])
        XCTAssertEqual(found.first?.subject, hostile)
        XCTAssertEqual(found.first?.connection, ConnectionRef(namespace: hostile, name: quoteHeavy))
        XCTAssertEqual(found.first?.groups, [hostile, "\"]"])
        XCTAssertEqual(found.first?.tokenKey, quoteHeavy)
        try await assertEqualAsync(try await store.exchange(id: ex.id)?.verb, hostile)
        try await assertEqualAsync(try await store.exchange(id: ex.id)?.resource, quoteHeavy)
        try await assertEqualAsync(try await store.listSessions(SessionFilter(subject: "x")).count, 0)
        // The tables are all still there and usable.
        let again = try await store.resolveSession(SessionKey(connection: connA, subject: "after"), identity: AgentIdentityInfo(), at: t0 + 1)
        try await assertEqualAsync(try await store.listSessions(SessionFilter()).count, 2)
        try await assertEqualAsync(try await store.session(id: again.id)?.session.subject, "after")
        try await store.close()
    }

    static func concurrentExchangesAllStoredWithUniqueSequences(_ backend: TestBackend) async throws {
        let store = try await backend.open(try backend.freshURL())
        let session = try await store.resolveSession(SessionKey(connection: connA, subject: "agent", tokenKey: "busy"),
                                                     identity: AgentIdentityInfo(), at: t0)
        let records = try await withThrowingTaskGroup(of: [ExchangeRecord].self) { group in
            for task in 0..<8 {
                group.addTask {
                    var mine: [ExchangeRecord] = []
                    for i in 0..<25 {
                        mine.append(try await store.begin(session, at: t0 + Double(i), name: "pod-\(task)-\(i)"))
                    }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        XCTAssertEqual(records.count, 200)
        XCTAssertEqual(Set(records.map(\.sequence)), Set(1...200), "returned sequences are unique and gap-free")
        XCTAssertEqual(Set(records.map(\.id)).count, 200)
        let stored = try await store.exchanges(sessionID: session.id)
        XCTAssertEqual(stored.map(\.sequence), Array(1...200))
        XCTAssertEqual(Set(stored.map(\.name)).count, 200)
        try await assertEqualAsync(try await store.session(id: session.id)?.session.exchangeCount, 200)
        try await store.close()
    }

    /// Concurrent writes may share a commit (SQLite groups them): one that fails must fail
    /// alone, and every other one must be committed exactly once.
    static func aFailingWriteAmongConcurrentOnesFailsAlone(_ backend: TestBackend) async throws {
        let store = try await backend.open(try backend.freshURL())
        let session = try await store.resolveSession(SessionKey(connection: connA, subject: "agent", tokenKey: "mixed"),
                                                     identity: AgentIdentityInfo(), at: t0)
        var gone = session
        gone.id = "no-such-session"
        let outcomes = try await withThrowingTaskGroup(of: (Bool, ExchangeRecord?).self) { group in
            for i in 0..<60 {
                let target = i % 5 == 4 ? gone : session
                group.addTask {
                    do {
                        return (target.id == session.id, try await store.begin(target, at: t0 + Double(i), name: "pod-\(i)"))
                    } catch SessionStoreError.sessionNotFound {
                        return (target.id == session.id, nil)
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(outcomes.filter { !$0.0 && $0.1 == nil }.count, 12, "every write to a missing session failed")
        let stored = outcomes.filter { $0.0 }.compactMap(\.1)
        XCTAssertEqual(stored.count, 48, "every other write succeeded")
        XCTAssertEqual(Set(stored.map(\.sequence)), Set(1...48), "sequences unique and gap-free")
        let listed = try await store.exchanges(sessionID: session.id)
        XCTAssertEqual(listed.map(\.sequence), Array(1...48), "each committed once")
        try await assertEqualAsync(try await store.session(id: session.id)?.session.exchangeCount, 48)
        try await store.close()
    }

    static func statsCountActiveAndTotalSessionsPerConnection(_ backend: TestBackend) async throws {
        let store = try await backend.open(try backend.freshURL())
        let old = try await store.resolveSession(SessionKey(connection: connA, subject: "a", tokenKey: "1"), identity: AgentIdentityInfo(), at: t0)
        _ = try await store.begin(old, at: t0, body: [1, 2])
        let active = try await store.resolveSession(SessionKey(connection: connA, subject: "b", tokenKey: "2"), identity: AgentIdentityInfo(), at: t0 + 3600)
        _ = try await store.resolveSession(SessionKey(connection: connB, subject: "c", tokenKey: "3"), identity: AgentIdentityInfo(), at: t0 + 10)
        let stats = try await store.stats(at: t0 + 3600 + 60)
        XCTAssertEqual(stats[connA]?.total, 2)
        XCTAssertEqual(stats[connA]?.active, 1)
        XCTAssertEqual(stats[connA]?.lastSessionID, active.id)
        XCTAssertEqual(us(stats[connA]?.lastActivity), us(t0 + 3600))
        XCTAssertEqual(stats[connA]?.bytes, 2)
        XCTAssertEqual(stats[connB]?.total, 1)
        XCTAssertEqual(stats[connB]?.active, 0)
        let none = try await store.stats(connection: ConnectionRef(namespace: "x", name: "y"), at: t0)
        XCTAssertEqual(none, SessionStats())
        try await store.close()
    }

    static func migrateIsIdempotentAndDataSurvivesReopen(_ backend: TestBackend) async throws {
        let url = try backend.freshURL()
        let first = try await backend.open(url)
        let session = try await first.resolveSession(SessionKey(connection: connA, subject: "agent"), identity: AgentIdentityInfo(), at: t0)
        let ex = try await first.begin(session, at: t0)
        try await first.migrate()
        try await first.close()
        let reopened = try await backend.open(url)
        try await reopened.migrate()
        try await assertEqualAsync(try await reopened.session(id: session.id)?.exchanges.map(\.id), [ex.id])
        try await reopened.close()
    }
}
