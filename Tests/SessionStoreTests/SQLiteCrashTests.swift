import Foundation
@testable import SessionStore
import XCTest

/// SQLite durability across a real crash: a child process (this test binary, running only
/// `testCrashChildWriter`) begins an exchange, reports it, and is SIGKILLed with its records
/// still in its recording journal only. The parent reopens the file, which ingests the
/// journal: the earlier exchange is intact and the cut one, whose owner process is
/// provably gone from this host, is marked incomplete at once — with a staleAfter of an hour,
/// so heartbeat age plays no part.
final class SQLiteCrashTests: XCTestCase {
    static let childDatabaseVariable = "AGENTGATE_SESSIONSTORE_CRASH_CHILD_DB"

    func testExchangeBegunBeforeSIGKILLSurvivesAndIsMarkedIncomplete() async throws {
        #if !os(Linux)
        throw XCTSkip("needs /proc to run the test binary as a child and to see dead processes")
        #else
        let url = try TestBackend.sqlite.freshURL()
        let path = String(url.dropFirst("sqlite:".count))
        let marker = path + ".begun"
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        child.arguments = ["SessionStoreTests.SQLiteCrashTests/testCrashChildWriter"]
        child.environment = ProcessInfo.processInfo.environment.merging([Self.childDatabaseVariable: path]) { $1 }
        child.standardOutput = FileHandle.nullDevice
        try child.run()
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: marker) {
            guard child.isRunning, Date() < deadline else {
                child.terminate()
                return XCTFail("child did not report its exchange (exit status \(child.isRunning ? -1 : child.terminationStatus))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        XCTAssertEqual(child.terminationReason, .uncaughtSignal)
        let ids = try String(contentsOfFile: marker, encoding: .utf8).split(separator: " ").map(String.init)
        XCTAssertEqual(ids.count, 3)
        // The child ingests its journal only after an hour: its records are in the journal alone.
        XCTAssertEqual(JournalDirectory(databasePath: path).contents().logs["child"]?.count, 1)
        let raw = try SQLiteHandle(path: path)
        XCTAssertEqual(try raw.execute("SELECT COUNT(*) AS n FROM exchanges", []).first?.int("n"), 0)
        raw.close()

        let store = try await TestBackend.sqlite.open(url, instanceID: "parent")
        let before = try await store.exchanges(sessionID: ids[0])
        XCTAssertEqual(before.map(\.id), [ids[1], ids[2]])
        XCTAssertEqual(before.map(\.state), [.complete, .inProgress])
        try await assertEqualAsync(try await store.recoverInterrupted(at: Date(), staleAfter: 3600), 1)
        let after = try await store.exchanges(sessionID: ids[0])
        XCTAssertEqual(after.map(\.state), [.complete, .incomplete])
        XCTAssertEqual(after.first?.statusCode, 200)
        XCTAssertEqual(after.last?.requestBody, Array("watch me".utf8))
        try await store.close()
        #endif
    }

    /// Not a test of its own: the child half of the test above; skipped unless launched by it.
    func testCrashChildWriter() async throws {
        guard let path = ProcessInfo.processInfo.environment[Self.childDatabaseVariable] else {
            throw XCTSkip("runs only as the child process of testExchangeBegunBeforeSIGKILLSurvivesAndIsMarkedIncomplete")
        }
        let store = try await TestBackend.sqlite.open("sqlite:" + path, instanceID: "child", journalIngestDelay: .seconds(3600))
        try await store.heartbeat(at: Date())
        let session = try await store.resolveSession(SessionKey(connection: connA, subject: "agent"), identity: AgentIdentityInfo(), at: Date())
        let done = try await store.begin(session, at: Date())
        try await store.completeExchange(done.id, result: ExchangeResult(statusCode: 200, completedAt: Date(), latencyMs: 1))
        let cut = try await store.begin(session, at: Date(), verb: "watch", body: Array("watch me".utf8))
        // Report only after beginExchange returned: from here on the row must survive a SIGKILL.
        try "\(session.id) \(done.id) \(cut.id)".write(toFile: path + ".begun", atomically: true, encoding: .utf8)
        try await Task.sleep(for: .seconds(120))
    }
}
