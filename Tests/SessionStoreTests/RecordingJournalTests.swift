import Foundation
@testable import SessionStore
import XCTest

/// SQLite's recording journal (`RecordingJournal`): records survive in the journal until they
/// are in the database, a journal is applied exactly once, a torn last record costs only
/// itself, and while the database refuses the journal the store refuses new records instead
/// of losing them. (The behaviour suite runs on the journal too: SQLite stores use it by
/// default. `SQLiteCrashTests` kills a real process with its records only in the journal.)
final class RecordingJournalTests: XCTestCase {
    func testEveryFieldOfEveryRecordRoundTripsThroughTheFileFormat() {
        let begin = JournalEvent.begin(id: "ex-1", sequence: 7, owner: "gw-1", start: ExchangeStart(
            sessionID: "s-1", time: Date(timeIntervalSince1970: 1_750_000_000.123456), verb: "delete", apiGroup: "apps",
            resource: "deployments", subresource: "scale", namespace: "prod", name: "api", httpMethod: "DELETE",
            path: "/apis/apps/v1/namespaces/prod/deployments/api", query: "dryRun=All", requestBody: [],
            requestBytes: 24, truncated: true, approvalID: "ap-1", kubectlCommand: nil, kubectlSession: "",
            userAgent: "kubectl/v1.32 ✓"))
        let chunk = JournalEvent.chunk(exchangeID: "ex-1", sequence: 3, atMicros: -5, channel: "stdout", data: [0, 255, 10])
        let complete = JournalEvent.complete(exchangeID: "ex-1", result: ExchangeResult(
            statusCode: 409, completedAt: Date(timeIntervalSince1970: 1_750_000_001.5), latencyMs: 12.25,
            responseBody: nil, responseBytes: 4096, truncated: false, approvalID: nil, state: .incomplete))
        let file = [begin, chunk, complete].flatMap(JournalCodec.frame)
        let decoded = JournalCodec.decode(file)
        XCTAssertTrue(decoded.intact)
        XCTAssertEqual(decoded.events, [begin, chunk, complete], "nil and empty stay apart; times keep their microseconds")

        // A crash mid-write leaves a torn last frame: the frames before it are kept.
        let torn = JournalCodec.decode(Array(file.dropLast(3)))
        XCTAssertFalse(torn.intact)
        XCTAssertEqual(torn.events, [begin, chunk])
        // A flipped bit fails the checksum: nothing from that frame on is trusted.
        var corrupt = file
        corrupt[JournalCodec.frame(begin).count + JournalCodec.headerSize + 2] ^= 0x01
        XCTAssertEqual(JournalCodec.decode(corrupt).events, [begin])
    }

    /// The ingest merges what one batch recorded of an exchange into one insert and updates
    /// each session once; the result must be what committing each record stores.
    func testABatchIngestedAtOnceStoresWhatCommittingEachRecordStores() async throws {
        func record(_ store: any SessionStore, flushMidway: Bool) async throws -> [SessionID] {
            let a = try await store.resolveSession(SessionKey(connection: connA, subject: "agent", tokenKey: "a"),
                                                   identity: AgentIdentityInfo(), at: t0)
            let b = try await store.resolveSession(SessionKey(connection: connB, subject: "other", tokenKey: "b"),
                                                   identity: AgentIdentityInfo(), at: t0)
            let watch = try await store.begin(a, at: t0 + 1, verb: "watch", body: [1])
            try await store.appendStreamChunk(watch.id, at: t0 + 1.2, channel: "events", data: [2, 3])
            let held = try await store.beginExchange(ExchangeStart(
                sessionID: b.id, time: t0 + 1.5, verb: "delete", resource: "deployments", namespace: "prod", name: "api",
                httpMethod: "DELETE", path: "/apis/apps/v1/namespaces/prod/deployments/api", requestBody: [9, 9],
                requestBytes: 2, truncated: true, kubectlCommand: "kubectl delete"))
            if flushMidway { try await store.flush() }
            try await store.appendStreamChunk(watch.id, at: t0 + 3, channel: "events", data: [4])
            let quick = try await store.begin(a, at: t0 + 3.5, body: [5, 5, 5])
            try await store.completeExchange(quick.id, result: ExchangeResult(
                statusCode: 200, completedAt: t0 + 3.6, latencyMs: 100, responseBody: [6], responseBytes: 1))
            try await store.completeExchange(quick.id, result: ExchangeResult(
                statusCode: 500, completedAt: t0 + 3.7, latencyMs: 200, responseBody: [7, 7], responseBytes: 2,
                truncated: true, approvalID: "ap-2"))
            try await store.completeExchange(held.id, result: ExchangeResult(
                statusCode: 403, completedAt: t0 + 6, latencyMs: 4500, responseBody: [8], responseBytes: 1,
                approvalID: "ap-1", state: .complete))
            try await store.appendStreamChunk(quick.id, at: t0 + 4, channel: "late", data: [])
            let open = try await store.begin(b, at: t0 + 5, verb: "list", resource: "secrets", name: "")
            try await store.appendStreamChunk(open.id, at: t0 + 5, channel: "events", data: [10])
            try await store.completeExchange(watch.id, result: ExchangeResult(
                statusCode: 200, completedAt: t0 + 9, latencyMs: 8000, state: .incomplete))
            return [a.id, b.id]
        }
        func contents(_ url: String, flushMidway: Bool, journal: Bool) async throws -> [String] {
            let store = try await TestBackend.sqlite.open(url + (journal ? "" : "?journal=off"), instanceID: "writer",
                                                          journalIngestDelay: .seconds(3600))
            let sessions = try await record(store, flushMidway: flushMidway)
            var lines: [String] = []
            for id in sessions {
                let found = try await store.session(id: id)
                let detail = try XCTUnwrap(found)
                let s = detail.session
                lines.append("session \(s.subject) count \(s.exchangeCount) bytes \(s.bytes) activity \(us(s.lastActivity)! / 1_000_000)")
                for e in detail.exchanges {
                    lines.append("""
                        exchange \(e.sequence) \(e.verb) \(e.resource) \(e.namespace)/\(e.name) \(e.state) \(String(describing: e.statusCode)) \
                        \(String(describing: e.latencyMs)) \(String(describing: us(e.completedAt))) \(String(describing: e.requestBody)) \
                        \(String(describing: e.responseBody)) \(e.requestBytes)/\(e.responseBytes) \(e.truncated) \
                        \(String(describing: e.approvalID)) \(String(describing: e.kubectlCommand)) chunks \(e.streamChunkCount)
                        """)
                    for chunk in try await store.streamChunks(exchangeID: e.id) {
                        lines.append("  chunk \(chunk.sequence) \(us(chunk.time)!) \(chunk.channel) \(chunk.data)")
                    }
                }
                for verb in ["get", "watch", "delete", "list"] {
                    let found = try await store.listSessions(SessionFilter(verb: verb)).map(\.subject)
                    lines.append("filter \(verb): \(found)")
                }
            }
            try await store.close()
            return lines
        }
        let direct = try await contents(try TestBackend.sqlite.freshURL(), flushMidway: false, journal: false)
        XCTAssertEqual(direct.filter { $0.hasPrefix("exchange") }.count, 4)
        for flushMidway in [false, true] {
            let batched = try await contents(try TestBackend.sqlite.freshURL(), flushMidway: flushMidway, journal: true)
            XCTAssertEqual(batched, direct, "flushed midway: \(flushMidway)")
        }
    }

    /// A store named "first" on a new file whose journal is ingested only by a read or
    /// flush, with a session.
    private func storeThatIngestsOnlyWhenAsked() async throws -> (String, JournalDirectory, any SessionStore, SessionRecord) {
        let url = try TestBackend.sqlite.freshURL()
        let directory = JournalDirectory(databasePath: String(url.dropFirst("sqlite:".count)))
        let store = try await TestBackend.sqlite.open(url, instanceID: "first", journalIngestDelay: .seconds(3600))
        let session = try await store.resolveSession(SessionKey(connection: connA, subject: "agent"), identity: AgentIdentityInfo(), at: t0)
        return (url, directory, store, session)
    }

    func testAJournalIngestedBeforeACrashIsNotAppliedAgainByTheNextStore() async throws {
        let (url, directory, first, session) = try await storeThatIngestsOnlyWhenAsked()
        let exchange = try await first.begin(session, at: t0 + 1, body: [1, 2, 3])
        try await first.appendStreamChunk(exchange.id, at: t0 + 2, channel: "stdout", data: [4, 5])
        try await first.completeExchange(exchange.id, result: ExchangeResult(
            statusCode: 200, completedAt: t0 + 3, latencyMs: 2000, responseBody: [6, 7, 8, 9], responseBytes: 4))
        let logs = directory.contents().logs["first"] ?? []
        XCTAssertEqual(logs.count, 1, "the records wait in one journal file")
        let saved = try XCTUnwrap(FileManager.default.contents(atPath: directory.filePath(logs[0].name)))
        try await first.flush()
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.filePath(logs[0].name)), "an ingested file is removed")
        // The process dies after the commit and before the file was removed.
        try saved.write(to: URL(fileURLWithPath: directory.filePath(logs[0].name)))
        try XCTUnwrap((first as? SQLSessionStore)?.journal).abandon()

        let second = try await TestBackend.sqlite.open(url, instanceID: "second")
        let stored = try await second.session(id: session.id)
        XCTAssertEqual(stored?.session.exchangeCount, 1)
        XCTAssertEqual(stored?.session.bytes, 3 + 2 + 4, "each record counted once")
        XCTAssertEqual(stored?.exchanges.map(\.state), [.complete])
        try await assertEqualAsync(try await second.streamChunks(exchangeID: exchange.id).map(\.data), [[4, 5]])
        XCTAssertEqual(directory.contents().logs.count, 0, "the file is removed")
        try await second.close()
        XCTAssertEqual(directory.contents().locks, [], "a closed store leaves no lock behind")
    }

    /// However slow the timer (here: never), a journal file that reaches `maxFileBytes` is
    /// closed and ingested at once, in a transaction of its own, so neither memory nor the WAL
    /// holds more than about one file of records waiting.
    func testAFullJournalFileIsIngestedAtOnceWithoutWaitingForTheTimer() async throws {
        let (url, directory, first, session) = try await storeThatIngestsOnlyWhenAsked()
        let exchange = try await first.begin(session, at: t0)
        let chunk = [UInt8](repeating: 0x62, count: 64 * 1024)
        let perFile = RecordingJournal.maxFileBytes / chunk.count
        for index in 0..<(3 * perFile) {
            try await first.appendStreamChunk(exchange.id, at: t0 + Double(index), channel: "stdout", data: chunk)
        }
        // Another store reads the file without flushing the first one's journal.
        let second = try await TestBackend.sqlite.open(url, instanceID: "second")
        var ingested = 0
        for _ in 0..<500 where ingested < 2 * perFile {
            try await Task.sleep(for: .milliseconds(10))
            ingested = try await second.streamChunks(exchangeID: exchange.id).count
        }
        XCTAssertGreaterThanOrEqual(ingested, 2 * perFile, "full journal files wait for the timer")
        XCTAssertLessThanOrEqual(directory.contents().logs["first"]?.count ?? 0, 2,
                                 "ingested files are removed; only the last, not yet full, waits")
        try await first.flush()
        try await assertEqualAsync(try await second.streamChunks(exchangeID: exchange.id).count, 3 * perFile)
        try await second.close()
        try await first.close()
    }

    /// A store whose timer never ingests and whose journal holds new exchanges once 256 KiB
    /// wait, with one exchange begun and five 64 KiB chunks of it waiting (320 KiB, less than
    /// a full file, so nothing has started an ingest).
    private func storeWithAFullBacklog() async throws -> (String, any SessionStore, SessionRecord, ExchangeRecord) {
        let url = try TestBackend.sqlite.freshURL()
        let store = try await TestBackend.sqlite.open(url, instanceID: "first", journalIngestDelay: .seconds(3600),
                                                      journalBacklogBytes: 256 * 1024)
        let session = try await store.resolveSession(SessionKey(connection: connA, subject: "agent"), identity: AgentIdentityInfo(), at: t0)
        let exchange = try await store.begin(session, at: t0)
        for index in 0..<5 {
            try await store.appendStreamChunk(exchange.id, at: t0 + Double(index), channel: "stdout",
                                              data: [UInt8](repeating: 0x63, count: 64 * 1024))
        }
        return (url, store, session, exchange)
    }

    /// Under a sustained overload (records arriving faster than SQLite ingests them) a new
    /// exchange waits for the ingest instead of growing the backlog until appends fail.
    func testANewExchangeWaitsForTheIngestWhileTheBacklogIsFull() async throws {
        let (url, first, session, exchange) = try await storeWithAFullBacklog()
        let second = try await TestBackend.sqlite.open(url, instanceID: "second")
        try await assertEqualAsync(try await second.streamChunks(exchangeID: exchange.id).count, 0,
                                   "nothing is ingested before the backlog holds a new exchange")

        let next = try await first.begin(session, at: t0 + 10)
        // `second` reads the database without flushing `first`: the begin returned after the ingest.
        try await assertEqualAsync(try await second.streamChunks(exchangeID: exchange.id).count, 5,
                                   "the new exchange did not wait for the backlog to be ingested")
        try await first.flush()
        try await assertEqualAsync(try await second.exchanges(sessionID: session.id).map(\.id), [exchange.id, next.id])
        try await second.close()
        try await first.close()
    }

    /// An exchange held for the backlog is refused (the gateway answers 503) when the ingest
    /// fails, rather than left waiting; what the journal holds is kept for a later ingest.
    func testAnExchangeHeldForTheBacklogIsRefusedWhenTheIngestFailsAndNothingIsLost() async throws {
        let (url, first, session, exchange) = try await storeWithAFullBacklog()
        let saboteur = try SQLiteHandle(path: String(url.dropFirst("sqlite:".count)))
        _ = try saboteur.execute("ALTER TABLE stream_chunks RENAME TO stream_chunks_away", [])
        do {
            _ = try await first.begin(session, at: t0 + 10)
            XCTFail("an exchange was journaled while the backlog cannot be ingested")
        } catch let error as SessionStoreError {
            XCTAssertTrue(error.description.contains("journal"), error.description)
        }
        _ = try saboteur.execute("ALTER TABLE stream_chunks_away RENAME TO stream_chunks", [])
        saboteur.close()
        try await first.flush()
        try await assertEqualAsync(try await first.streamChunks(exchangeID: exchange.id).count, 5)
        try await first.close()
    }

    func testAStoppedStoresJournalWithATornLastRecordIsIngestedUpToIt() async throws {
        let (url, directory, first, session) = try await storeThatIngestsOnlyWhenAsked()
        let kept = try await first.begin(session, at: t0 + 1)
        let torn = try await first.begin(session, at: t0 + 2)
        try XCTUnwrap((first as? SQLSessionStore)?.journal).abandon()
        let log = directory.filePath(try XCTUnwrap(directory.contents().logs["first"]?.first?.name))
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: log))
        try bytes.dropLast(5).write(to: URL(fileURLWithPath: log))

        let second = try await TestBackend.sqlite.open(url, instanceID: "second")
        try await assertEqualAsync(try await second.exchanges(sessionID: session.id).map(\.id), [kept.id])
        try await assertEqualAsync(try await second.exchange(id: torn.id), nil)
        try await second.close()
    }

    func testNewRecordsAreRefusedWhileTheDatabaseRefusesTheJournalAndNothingIsLost() async throws {
        let url = try TestBackend.sqlite.freshURL()
        let path = String(url.dropFirst("sqlite:".count))
        let store = try await TestBackend.sqlite.open(url, instanceID: "gateway")
        let session = try await store.resolveSession(SessionKey(connection: connA, subject: "agent"), identity: AgentIdentityInfo(), at: t0)
        let saboteur = try SQLiteHandle(path: path)
        _ = try saboteur.execute("ALTER TABLE exchanges RENAME TO exchanges_away", [])
        let journaled = try await store.begin(session, at: t0 + 1)

        do {
            try await store.flush()
            XCTFail("the journal was ingested into a database without an exchanges table")
        } catch {}
        do {
            _ = try await store.begin(session, at: t0 + 2)
            XCTFail("a record was accepted while the journal cannot be ingested")
        } catch let error as SessionStoreError {
            XCTAssertTrue(error.description.contains("journal"), error.description)
        }

        _ = try saboteur.execute("ALTER TABLE exchanges_away RENAME TO exchanges", [])
        saboteur.close()
        try await store.flush()
        let after = try await store.begin(session, at: t0 + 3)
        let stored = try await store.exchanges(sessionID: session.id)
        XCTAssertEqual(stored.map(\.id), [journaled.id, after.id], "the record journaled before the failure is kept")
        XCTAssertEqual(stored.map(\.sequence), [1, 2])
        try await store.close()
    }

    func testExchangesOfASessionPrunedMeanwhileAreRefusedNotLost() async throws {
        let store = try await TestBackend.sqlite.open(try TestBackend.sqlite.freshURL(), journalIngestDelay: .seconds(3600))
        let session = try await store.resolveSession(SessionKey(connection: connA, subject: "agent", tokenKey: "jti-1"),
                                                     identity: AgentIdentityInfo(), at: t0)
        _ = try await store.begin(session, at: t0)
        let pruned = try await store.prune(olderThan: t0 + 86400)
        XCTAssertEqual(pruned.exchanges, 1, "prune ingests the journal first")
        // The gateway resolves again on sessionNotFound; a record into the deleted session
        // would be dropped at ingest.
        do {
            _ = try await store.begin(session, at: t0 + 86400 * 2)
            XCTFail("an exchange was journaled into a pruned session")
        } catch SessionStoreError.sessionNotFound(let id) {
            XCTAssertEqual(id, session.id)
        }
        try await store.close()
    }
}
