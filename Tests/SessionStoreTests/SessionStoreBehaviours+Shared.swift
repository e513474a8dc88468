import Foundation
import SessionStore
import XCTest

/// What gateway replicas share through one database: alert windows and refused stream
/// upgrades, and a schema several replicas migrate at once.
extension Behaviours {
    static func alertWindowsCountHitsFromEveryInstanceAndFireOnce(_ backend: TestBackend) async throws {
        let url = try backend.freshURL()
        let replicas = [try await backend.open(url, instanceID: "gw-a"), try await backend.open(url, instanceID: "gw-b"),
                        try await backend.open(url, instanceID: "gw-c")]
        let key = "team-a/claude|session-1|exec-burst"
        // Five hits spread over three replicas with a threshold of five: one firing, on the fifth.
        var counts: [AlertWindowCount] = []
        for hit in 0..<5 {
            counts.append(try await replicas[hit % 3].countAlertHit(key, at: t0 + Double(hit), window: 60, threshold: 5))
        }
        XCTAssertEqual(counts.map(\.count), [1, 2, 3, 4, 5])
        XCTAssertEqual(counts.map(\.fires), [false, false, false, false, true])
        let sixth = try await replicas[2].countAlertHit(key, at: t0 + 6, window: 60, threshold: 5)
        XCTAssertEqual(sixth, AlertWindowCount(count: 6, fires: false), "one burst fires once")
        // Another session's window is its own.
        let other = try await replicas[0].countAlertHit("team-a/claude|session-2|exec-burst", at: t0 + 6, window: 60, threshold: 5)
        XCTAssertEqual(other, AlertWindowCount(count: 1, fires: false))
        // After the window has passed, the count starts again and a new burst fires again.
        var later: [AlertWindowCount] = []
        for hit in 0..<5 {
            later.append(try await replicas[hit % 3].countAlertHit(key, at: t0 + 120 + Double(hit), window: 60, threshold: 5))
        }
        XCTAssertEqual(later.map(\.count), [1, 2, 3, 4, 5])
        XCTAssertEqual(later.map(\.fires), [false, false, false, false, true])
        for replica in replicas { try await replica.close() }
    }

    static func alertHitsRacingOnInstancesFireExactlyOnce(_ backend: TestBackend) async throws {
        let url = try backend.freshURL()
        let a = try await backend.open(url, instanceID: "gw-a")
        let b = try await backend.open(url, instanceID: "gw-b")
        let fired = try await withThrowingTaskGroup(of: Bool.self) { group in
            for hit in 0..<20 {
                let store = hit.isMultiple(of: 2) ? a : b
                group.addTask { try await store.countAlertHit("k", at: t0 + Double(hit) / 100, window: 60, threshold: 10).fires }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        XCTAssertEqual(fired, 1, "twenty concurrent hits on two instances cross a threshold of ten once")
        try await a.close()
        try await b.close()
    }

    static func aRefusedStreamIsTakenOnceByAnyInstanceUntilItExpires(_ backend: TestBackend) async throws {
        let url = try backend.freshURL()
        let a = try await backend.open(url, instanceID: "gw-a")
        let b = try await backend.open(url, instanceID: "gw-b")
        let refusal = StreamRefusal(statusCode: 403, body: Array(#"{"kind":"Status","code":403}"#.utf8))
        try await a.rememberStreamRefusal("digest /c/x/exec", answer: refusal, until: Date().addingTimeInterval(30))
        let taken = try await b.takeStreamRefusal("digest /c/x/exec", at: Date())
        XCTAssertEqual(taken, refusal, "the other replica gets the same answer")
        let again = try await a.takeStreamRefusal("digest /c/x/exec", at: Date())
        XCTAssertNil(again, "one use")
        try await a.rememberStreamRefusal("expired", answer: refusal, until: Date().addingTimeInterval(-1))
        let expired = try await b.takeStreamRefusal("expired", at: Date())
        XCTAssertNil(expired)
        try await a.close()
        try await b.close()
    }

    static func replicasStartingTogetherMigrateOnceAndAllServe(_ backend: TestBackend) async throws {
        let url = try backend.freshURL()
        let stores = try await withThrowingTaskGroup(of: (any SessionStore).self) { group in
            for replica in 0..<4 { group.addTask { try await backend.open(url, instanceID: "gw-\(replica)") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(stores.count, 4)
        for (index, store) in stores.enumerated() {
            let session = try await store.resolveSession(SessionKey(connection: connA, subject: "agent-\(index)"),
                                                         identity: AgentIdentityInfo(), at: t0)
            _ = try await store.begin(session, at: t0)
        }
        try await stores[0].flush()
        let listed = try await stores[0].listSessions(SessionFilter(connection: connA))
        XCTAssertEqual(listed.count, 4, "every replica writes the one schema")
        for store in stores { try await store.close() }
    }
}
