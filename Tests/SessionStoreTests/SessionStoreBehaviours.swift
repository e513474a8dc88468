import Foundation
import SessionStore
import XCTest

/// The behaviours every SessionStore backend must show. Each is a function run by a
/// per-backend XCTestCase (SQLiteSessionStoreTests, PostgresSessionStoreTests), so one
/// suite covers both and a failure names the backend in its test class.
enum Behaviours {
    static func sessionsAreGroupedBySidOrJti(_ backend: TestBackend) async throws {
        let store = try await backend.open(try backend.freshURL())
        let a1 = try await store.resolveSession(SessionKey(connection: connA, subject: "agent", tokenKey: "sid-1"),
                                                identity: AgentIdentityInfo(groups: ["agents"], model: "claude-opus"), at: t0)
        // Same sid an hour later (beyond the idle gap): still the same session.
        let a2 = try await store.resolveSession(SessionKey(connection: connA, subject: "agent", tokenKey: "sid-1"),
                                                identity: AgentIdentityInfo(), at: t0 + 3600)
        let b = try await store.resolveSession(SessionKey(connection: connA, subject: "agent", tokenKey: "sid-2"),
                                               identity: AgentIdentityInfo(), at: t0 + 10)
        let otherSubject = try await store.resolveSession(SessionKey(connection: connA, subject: "other", tokenKey: "sid-1"),
                                                          identity: AgentIdentityInfo(), at: t0 + 10)
        let otherConnection = try await store.resolveSession(SessionKey(connection: connB, subject: "agent", tokenKey: "sid-1"),
                                                             identity: AgentIdentityInfo(), at: t0 + 10)
        XCTAssertEqual(a1.id, a2.id)
        XCTAssertEqual(Set([a1.id, b.id, otherSubject.id, otherConnection.id]).count, 4)
        XCTAssertEqual(a2.groups, ["agents"])
        XCTAssertEqual(a2.model, "claude-opus")
        XCTAssertEqual(a2.tokenKey, "sid-1")
        XCTAssertEqual(us(a2.startedAt), us(t0))
        XCTAssertEqual(us(a2.lastActivity), us(t0 + 3600))
        try await store.close()
    }

    static func newSessionStartsAfterFifteenMinutesIdle(_ backend: TestBackend) async throws {
        let store = try await backend.open(try backend.freshURL())
        let key = SessionKey(connection: connA, subject: "agent")
        let first = try await store.resolveSession(key, identity: AgentIdentityInfo(), at: t0)
        _ = try await store.begin(first, at: t0 + 60)
        // 14 minutes after the last activity: same session.
        let stillFirst = try await store.resolveSession(key, identity: AgentIdentityInfo(), at: t0 + 60 + 14 * 60)
        // 15 min 1 s after that: a new one.
        let second = try await store.resolveSession(key, identity: AgentIdentityInfo(), at: t0 + 60 + 29 * 60 + 1)
        XCTAssertEqual(stillFirst.id, first.id)
        XCTAssertNotEqual(second.id, first.id)
        XCTAssertLessThan(first.id, second.id, "ids sort by start time")
        let listed = try await store.listSessions(SessionFilter(connection: connA))
        XCTAssertEqual(listed.map(\.id), [second.id, first.id], "most recent activity first")
        try await store.close()
    }

    static func filtersEachNarrowTheList(_ backend: TestBackend) async throws {
        let store = try await backend.open(try backend.freshURL())
        let s1 = try await store.resolveSession(SessionKey(connection: connA, subject: "alice", tokenKey: "1"),
                                                identity: AgentIdentityInfo(model: "opus"), at: t0)
        _ = try await store.begin(s1, at: t0 + 1, verb: "delete", resource: "deployments", namespace: "prod", name: "api")
        let s2 = try await store.resolveSession(SessionKey(connection: connA, subject: "bob", tokenKey: "2"),
                                                identity: AgentIdentityInfo(model: "sonnet"), at: t0 + 7200)
        _ = try await store.begin(s2, at: t0 + 7201, verb: "get", resource: "pods", subresource: "exec", namespace: "dev", name: "web")
        let s3 = try await store.resolveSession(SessionKey(connection: connB, subject: "alice", tokenKey: "3"),
                                                identity: AgentIdentityInfo(model: "opus"), at: t0 + 14400)
        _ = try await store.begin(s3, at: t0 + 14401, verb: "list", resource: "pods", namespace: "prod", name: "")

        func ids(_ f: SessionFilter) async throws -> Set<String> { Set(try await store.listSessions(f).map(\.id)) }
        let all = try await ids(SessionFilter())
        XCTAssertEqual(all, [s1.id, s2.id, s3.id])
        let byConnection = try await ids(SessionFilter(connection: connA))
        XCTAssertEqual(byConnection, [s1.id, s2.id])
        let bySubject = try await ids(SessionFilter(subject: "alice"))
        XCTAssertEqual(bySubject, [s1.id, s3.id])
        let byModel = try await ids(SessionFilter(model: "sonnet"))
        XCTAssertEqual(byModel, [s2.id])
        let bySince = try await ids(SessionFilter(since: t0 + 3600))
        XCTAssertEqual(bySince, [s2.id, s3.id])
        let byUntil = try await ids(SessionFilter(until: t0 + 3600))
        XCTAssertEqual(byUntil, [s1.id])
        let byWindow = try await ids(SessionFilter(since: t0 + 3600, until: t0 + 10000))
        XCTAssertEqual(byWindow, [s2.id])
        let byVerb = try await ids(SessionFilter(verb: "delete"))
        XCTAssertEqual(byVerb, [s1.id])
        let byResource = try await ids(SessionFilter(resource: "pods"))
        XCTAssertEqual(byResource, [s2.id, s3.id])
        let bySubresource = try await ids(SessionFilter(resource: "pods/exec"))
        XCTAssertEqual(bySubresource, [s2.id])
        let byNamespace = try await ids(SessionFilter(namespace: "prod"))
        XCTAssertEqual(byNamespace, [s1.id, s3.id])
        let byName = try await ids(SessionFilter(name: "api"))
        XCTAssertEqual(byName, [s1.id])
        // Exchange criteria hold for one exchange: no exchange is a delete in dev.
        let noMatch = try await ids(SessionFilter(verb: "delete", namespace: "dev"))
        XCTAssertEqual(noMatch, [])
        let limited = try await store.listSessions(SessionFilter(limit: 2))
        XCTAssertEqual(limited.map(\.id), [s3.id, s2.id])
        try await store.close()
    }

    static func exchangeBegunIsVisibleAsInProgressBeforeCompletion(_ backend: TestBackend) async throws {
        let url = try backend.freshURL()
        let gateway = try await backend.open(url)
        let session = try await gateway.resolveSession(SessionKey(connection: connA, subject: "agent"),
                                                       identity: AgentIdentityInfo(), at: t0)
        let begun = try await gateway.beginExchange(ExchangeStart(
            sessionID: session.id, time: t0 + 1, verb: "delete", apiGroup: "apps", resource: "deployments",
            namespace: "prod", name: "api", httpMethod: "DELETE", path: "/apis/apps/v1/namespaces/prod/deployments/api",
            query: "dryRun=All", requestBody: Array(#"{"kind":"DeleteOptions"}"#.utf8), requestBytes: 24,
            approvalID: "ap-1", kubectlCommand: "kubectl delete", kubectlSession: "ks-9", userAgent: "kubectl/v1.31.0"))
        // A second instance on the same database (another process or replica) sees the row
        // once it is in the database (SQLite ingests its journal within milliseconds; flush
        // waits for that).
        try await gateway.flush()
        let auditor = try await backend.open(url)
        let seen = try await auditor.exchange(id: begun.id)
        XCTAssertEqual(seen?.state, .inProgress)
        XCTAssertEqual(seen?.sequence, 1)
        XCTAssertEqual(seen?.verb, "delete")
        XCTAssertEqual(seen?.apiGroup, "apps")
        XCTAssertEqual(seen?.query, "dryRun=All")
        XCTAssertEqual(seen?.requestBody, Array(#"{"kind":"DeleteOptions"}"#.utf8))
        XCTAssertEqual(seen?.approvalID, "ap-1")
        XCTAssertEqual(seen?.kubectlCommand, "kubectl delete")
        XCTAssertEqual(seen?.kubectlSession, "ks-9")
        XCTAssertEqual(seen?.userAgent, "kubectl/v1.31.0")
        XCTAssertEqual(seen?.owner, gateway.instanceID)
        XCTAssertNil(seen?.statusCode)
        XCTAssertEqual(seen, begun, "the record returned by beginExchange is what is stored")
        try await auditor.close()
        try await gateway.close()
    }

    static func completionMovesLastActivityOnlyForLongExchanges(_ backend: TestBackend) async throws {
        let store = try await backend.open(try backend.freshURL())
        let session = try await store.resolveSession(SessionKey(connection: connA, subject: "agent"),
                                                     identity: AgentIdentityInfo(), at: t0)
        let get = try await store.begin(session, at: t0 + 10)
        try await store.completeExchange(get.id, result: ExchangeResult(
            statusCode: 200, completedAt: t0 + 10.2, latencyMs: 200, responseBody: [1, 2, 3], responseBytes: 3))
        var stored = try await store.session(id: session.id)?.session
        XCTAssertEqual(us(stored?.lastActivity), us(t0 + 10), "a short exchange counts from its start")
        XCTAssertEqual(stored?.bytes, 3)
        let watch = try await store.begin(session, at: t0 + 20, verb: "watch", name: "")
        try await store.completeExchange(watch.id, result: ExchangeResult(
            statusCode: 200, completedAt: t0 + 620, latencyMs: 600_000, responseBody: [4], responseBytes: 1))
        stored = try await store.session(id: session.id)?.session
        XCTAssertEqual(us(stored?.lastActivity), us(t0 + 620), "a ten-minute watch was activity until it ended")
        XCTAssertEqual(stored?.bytes, 4)
        try await store.close()
    }

    /// `lastActivity` moves when an exchange begins more than a second after it (the column is
    /// in four indexes, and a busy agent would rewrite them on every request); the count, the
    /// bytes and the filters are exact whatever the pace.
    static func lastActivityMovesInWholeSecondStepsWhileCountsStayExact(_ backend: TestBackend) async throws {
        let store = try await backend.open(try backend.freshURL())
        let session = try await store.resolveSession(SessionKey(connection: connA, subject: "agent", tokenKey: "t"),
                                                     identity: AgentIdentityInfo(), at: t0)
        _ = try await store.begin(session, at: t0 + 10, body: [1, 2])
        var stored = try await store.session(id: session.id)?.session
        XCTAssertEqual(us(stored?.lastActivity), us(t0 + 10), "an exchange after an idle second moves it exactly")
        for step in 1...9 {
            _ = try await store.begin(session, at: t0 + 10 + Double(step) / 10, body: [3])
        }
        stored = try await store.session(id: session.id)?.session
        XCTAssertEqual(us(stored?.lastActivity), us(t0 + 10), "exchanges within the second leave it")
        XCTAssertEqual(stored?.exchangeCount, 10)
        XCTAssertEqual(stored?.bytes, 2 + 9)
        _ = try await store.begin(session, at: t0 + 11.5, verb: "delete", name: "web-1")
        stored = try await store.session(id: session.id)?.session
        XCTAssertEqual(us(stored?.lastActivity), us(t0 + 11.5))
        XCTAssertEqual(stored?.exchangeCount, 11)
        let sequences = try await store.exchanges(sessionID: session.id).map(\.sequence)
        XCTAssertEqual(sequences, Array(1...11))
        // Ten identical requests and one delete: each filter still finds the session, and
        // criteria still hold for one and the same exchange.
        let found = try await store.listSessions(SessionFilter(verb: "get", resource: "pods", namespace: "default", name: "web-0"))
        XCTAssertEqual(found.map(\.id), [session.id])
        let deleted = try await store.listSessions(SessionFilter(verb: "delete", name: "web-1"))
        XCTAssertEqual(deleted.map(\.id), [session.id])
        let mixed = try await store.listSessions(SessionFilter(verb: "delete", name: "web-0"))
        XCTAssertEqual(mixed, [], "no exchange deleted web-0")
        try await store.close()
    }

    static func completeSetsStatusLatencyAndBodies(_ backend: TestBackend) async throws {
        let store = try await backend.open(try backend.freshURL())
        let session = try await store.resolveSession(SessionKey(connection: connA, subject: "agent"),
                                                     identity: AgentIdentityInfo(), at: t0)
        let request = Array("{}".utf8)
        let response = Array(#"{"kind":"Secret","data":{"token":"***"}}"#.utf8)
        let ex = try await store.begin(session, at: t0 + 1, resource: "secrets", body: request)
        try await store.completeExchange(ex.id, result: ExchangeResult(
            statusCode: 200, completedAt: t0 + 1.0125, latencyMs: 12.5, responseBody: response,
            responseBytes: 4096, truncated: true))
        let detail = try await store.session(id: session.id)
        let done = try XCTUnwrap(detail?.exchanges.first)
        XCTAssertEqual(done.state, .complete)
        XCTAssertEqual(done.statusCode, 200)
        XCTAssertEqual(done.latencyMs, 12.5)
        XCTAssertEqual(us(done.completedAt), us(t0 + 1.0125))
        XCTAssertEqual(done.requestBody, request)
        XCTAssertEqual(done.responseBody, response)
        XCTAssertEqual(done.responseBytes, 4096)
        XCTAssertTrue(done.truncated)
        XCTAssertEqual(detail?.session.exchangeCount, 1)
        XCTAssertEqual(detail?.session.bytes, Int64(request.count + response.count))
        do {
            try await store.completeExchange("no-such-exchange", result: ExchangeResult(statusCode: 200, completedAt: t0, latencyMs: 1))
            XCTFail("completing an unknown exchange must throw")
        } catch let error as SessionStoreError {
            XCTAssertEqual(error, .exchangeNotFound("no-such-exchange"))
        }
        try await store.close()
    }

    static func streamChunksReplayInOrderWithTimestamps(_ backend: TestBackend) async throws {
        let store = try await backend.open(try backend.freshURL())
        let session = try await store.resolveSession(SessionKey(connection: connA, subject: "agent"),
                                                     identity: AgentIdentityInfo(), at: t0)
        let watch = try await store.begin(session, at: t0, verb: "watch", name: "")
        var sent: [(Date, String, [UInt8])] = []
        for i in 0..<50 {
            let at = t0 + Double(i) * 0.25 + 0.000_001 * Double(i)
            let channel = i % 3 == 0 ? "stderr" : "stdout"
            let data = Array(#"{"type":"MODIFIED","i":\#(i)}"#.utf8) + [0, 255]
            try await store.appendStreamChunk(watch.id, at: at, channel: channel, data: data)
            sent.append((at, channel, data))
        }
        let replay = try await store.streamChunks(exchangeID: watch.id)
        XCTAssertEqual(replay.map(\.sequence), Array(1...50))
        XCTAssertEqual(replay.map { us($0.time) }, sent.map { us($0.0) })
        XCTAssertEqual(replay.map(\.channel), sent.map(\.1))
        XCTAssertEqual(replay.map(\.data), sent.map(\.2))
        let page = try await store.streamChunks(exchangeID: watch.id, afterSequence: 10, limit: 5)
        XCTAssertEqual(page.map(\.sequence), [11, 12, 13, 14, 15])
        try await assertEqualAsync(try await store.exchange(id: watch.id)?.streamChunkCount, 50)
        let bytes = sent.reduce(0) { $0 + $1.2.count }
        try await assertEqualAsync(try await store.session(id: session.id)?.session.bytes, Int64(bytes))
        // Kept to the second: within one of the last chunk (chunks came every 0.25 s).
        let stored = try await store.session(id: session.id)?.session
        let lastActivity = try XCTUnwrap(us(stored?.lastActivity))
        let lastChunk = try XCTUnwrap(us(sent.last?.0))
        XCTAssertTrue((0...1_000_000).contains(lastChunk - lastActivity),
                      "lastActivity is \(lastChunk - lastActivity) µs behind the last chunk")
        do {
            try await store.appendStreamChunk("missing", at: t0, channel: "stdout", data: [1])
            XCTFail("appending to an unknown exchange must throw")
        } catch let error as SessionStoreError {
            XCTAssertEqual(error, .exchangeNotFound("missing"))
        }
        try await store.close()
    }
}
