import Foundation
import SessionStore
import XCTest

/// What the SQLite driver does with the file itself: the WAL stays bounded although SQLite's
/// own checkpoint inside COMMIT is off (background checkpoints, and the writer's own when
/// those cannot catch up), and a second store on the same
/// file — another process's view — reads what the first committed, despite prepared
/// statements being reused on both sides.
final class SQLiteFileTests: XCTestCase {
    func testWALStaysBoundedUnderSustainedWrites() async throws {
        let url = try TestBackend.sqlite.freshURL()
        let walPath = String(url.dropFirst("sqlite:".count)) + "-wal"
        // The journal's timer never fires here: only full journal files start an ingest, the
        // slowest a machine can be. A full file must be ingested in a transaction of its own.
        let store = try await TestBackend.sqlite.open(url, instanceID: "writer", journalIngestDelay: .seconds(3600))
        let session = try await store.resolveSession(SessionKey(connection: connA, subject: "agent"), identity: AgentIdentityInfo(), at: t0)
        let exchange = try await store.begin(session, at: t0)
        let chunk = [UInt8](repeating: 0x61, count: 64 * 1024)
        var largestWAL = 0
        func measureWAL() {
            let size = (try? FileManager.default.attributesOfItem(atPath: walPath)[.size] as? Int) ?? 0
            largestWAL = max(largestWAL, size)
        }
        // 128 MiB in 2048 records; without checkpoints the WAL would hold all of it, and so it
        // would if they were ingested in one transaction. The WAL starts over once it holds
        // 8,000 frames (32 MiB, `SQLiteDriver.restartFrames`); it peaks below 8,000 + 4,000
        // frames (`writerCheckpointPages`, past which the writer copies what the background has
        // not) plus one transaction (`RecordingJournal.maxFileBytes`): about 50 MB. Measured with
        // two cores busy elsewhere: 37-49 MB; with 4 MiB transactions it reached 72 MB.
        for index in 0..<2048 {
            try await store.appendStreamChunk(exchange.id, at: t0.addingTimeInterval(Double(index)), channel: "stdout", data: chunk)
            if index % 16 == 0 {
                try await Task.sleep(for: .milliseconds(5))   // lets a running checkpoint finish, as idle moments do
                measureWAL()
            }
        }
        try await store.flush()
        measureWAL()
        XCTAssertGreaterThan(largestWAL, 0, "the database is not in WAL mode")
        XCTAssertLessThan(largestWAL, 64 * 1024 * 1024, "the WAL grew to \(largestWAL) bytes: it is not being checkpointed")
        let chunks = try await store.streamChunks(exchangeID: exchange.id)
        XCTAssertEqual(chunks.count, 2048)
        XCTAssertEqual(chunks.last?.data, chunk)
        try await store.close()
    }

    func testASecondStoreOnTheSameFileReadsEachNewCommit() async throws {
        let url = try TestBackend.sqlite.freshURL()
        let writer = try await TestBackend.sqlite.open(url, instanceID: "writer")
        let reader = try await TestBackend.sqlite.open(url, instanceID: "reader")
        let session = try await writer.resolveSession(SessionKey(connection: connA, subject: "agent"), identity: AgentIdentityInfo(), at: t0)
        for index in 1...5 {
            let exchange = try await writer.begin(session, at: t0.addingTimeInterval(Double(index)), name: "pod-\(index)")
            try await writer.completeExchange(exchange.id, result: ExchangeResult(
                statusCode: 200 + index, completedAt: t0.addingTimeInterval(Double(index)), latencyMs: 1,
                responseBody: Array("answer \(index)".utf8), responseBytes: 8))
            try await writer.flush()
            // The same SELECT statements each time: a reused statement must see the new commit.
            let seen = try await reader.exchanges(sessionID: session.id)
            XCTAssertEqual(seen.map(\.name), (1...index).map { "pod-\($0)" })
            XCTAssertEqual(seen.last?.statusCode, 200 + index)
            XCTAssertEqual(seen.last?.responseBody, Array("answer \(index)".utf8))
        }
        // Empty values stay empty (not NULL) through binding and reading.
        let empty = try await writer.begin(session, at: t0.addingTimeInterval(10), namespace: "", body: [])
        try await writer.flush()
        let read = try await reader.exchange(id: empty.id)
        XCTAssertEqual(read?.namespace, "")
        XCTAssertEqual(read?.requestBody, [])
        try await reader.close()
        try await writer.close()
    }

    /// With one request in flight (``RequestLoad``), a transaction that finds the writer idle
    /// runs on its caller's thread while the others queue theirs: every write is recorded,
    /// sequences stay unique and gap-free, and a failed inline transaction leaves the writer
    /// free for the next.
    func testInlineWritesOfALoneRequestMixWithQueuedOnesWithoutLoss() async throws {
        let load = RequestLoad()
        load.enter()
        let store = try await TestBackend.sqlite.open(try TestBackend.sqlite.freshURL(), instanceID: "mixed", requestLoad: load)
        let session = try await store.resolveSession(SessionKey(connection: connA, subject: "agent"), identity: AgentIdentityInfo(), at: t0)
        let names = try await withThrowingTaskGroup(of: [String].self) { group in
            group.addTask {
                var mine: [String] = []
                for index in 0..<100 {
                    let exchange = try await store.begin(session, at: t0 + Double(index), name: "alone-\(index)")
                    try await store.completeExchange(exchange.id, result: ExchangeResult(
                        statusCode: 200, completedAt: t0 + Double(index), latencyMs: 1, responseBody: [1], responseBytes: 1))
                    mine.append(exchange.name)
                }
                return mine
            }
            for task in 0..<4 {
                group.addTask {
                    var theirs: [String] = []
                    for index in 0..<25 {
                        theirs.append(try await store.begin(session, at: t0 + Double(index), name: "queued-\(task)-\(index)").name)
                    }
                    return theirs
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let stored = try await store.exchanges(sessionID: session.id)
        XCTAssertEqual(stored.map(\.sequence), Array(1...200))
        XCTAssertEqual(Set(stored.map(\.name)), Set(names))
        XCTAssertEqual(stored.filter { $0.name.hasPrefix("alone-") }.map(\.state), Array(repeating: .complete, count: 100))
        var gone = session
        gone.id = "no-such-session"
        do {
            _ = try await store.begin(gone, at: t0)
            XCTFail("an exchange of a missing session was recorded")
        } catch SessionStoreError.sessionNotFound {}
        let after = try await store.begin(session, at: t0 + 200, name: "after")
        XCTAssertEqual(after.sequence, 201)
        try await store.close()
    }
}
