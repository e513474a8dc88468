import Foundation
import Logging
import SessionStore
import XCTest

/// Where a test's store lives. Each call of `freshURL()` names an empty database of its
/// own: a new SQLite file, or a new PostgreSQL schema (`?schema=`), so tests never see each
/// other's rows. Opening the same URL twice gives two store instances on one database
/// (a restart, or a second gateway replica).
struct TestBackend: Sendable {
    let name: String
    let freshURL: @Sendable () throws -> String

    static let sqlite = TestBackend(name: "sqlite") {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("agentgate-sessionstore-tests")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return "sqlite:" + dir.appendingPathComponent("\(UUID().uuidString).db").path
    }

    static let postgresURLVariable = "AGENTGATE_TEST_POSTGRES_URL"

    static let postgres = TestBackend(name: "postgres") {
        guard let base = ProcessInfo.processInfo.environment[postgresURLVariable], !base.isEmpty else {
            throw MissingPostgres()
        }
        let schema = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        return base + (base.contains("?") ? "&" : "?") + "schema=" + schema
    }

    struct MissingPostgres: Error, CustomStringConvertible {
        var description: String {
            "\(TestBackend.postgresURLVariable) is not set, so the PostgreSQL backend was not tested. "
                + "Run `bash scripts/test.sh` (it starts PostgreSQL with scripts/postgres-test-server.sh "
                + "and sets the variable), or export \(TestBackend.postgresURLVariable)=\"$(bash scripts/postgres-test-server.sh start)\"."
        }
    }

    func open(
        _ url: String, instanceID: String? = nil, idleGap: TimeInterval = SessionStoreOptions.defaultIdleGap,
        journalIngestDelay: Duration = SessionStoreOptions.defaultJournalIngestDelay,
        journalBacklogBytes: Int = SessionStoreOptions.defaultJournalBacklogBytes, requestLoad: RequestLoad? = nil
    ) async throws -> any SessionStore {
        var logger = Logger(label: "test.sessionstore.\(name)")
        logger.logLevel = .warning
        var options = SessionStoreOptions(idleGap: idleGap, instanceID: instanceID, journalIngestDelay: journalIngestDelay,
                                          journalBacklogBytes: journalBacklogBytes)
        options.requestLoad = requestLoad
        return try await SessionStores.open(url: url, options: options, logger: logger)
    }
}

/// Microseconds since the epoch: both backends store times at this precision.
func us(_ date: Date?) -> Int64? {
    date.map { Int64(($0.timeIntervalSince1970 * 1_000_000).rounded()) }
}

/// A fixed, whole-second instant so tests do not depend on the clock.
let t0 = Date(timeIntervalSince1970: 1_750_000_000)

let connA = ConnectionRef(namespace: "team-a", name: "claude")
let connB = ConnectionRef(namespace: "team-b", name: "codex")

extension SessionStore {
    /// A GET of a pod, with defaults a test can override.
    func begin(
        _ session: SessionRecord, at: Date, verb: String = "get", resource: String = "pods",
        subresource: String = "", namespace: String = "default", name: String = "web-0",
        body: [UInt8]? = nil
    ) async throws -> ExchangeRecord {
        try await beginExchange(ExchangeStart(
            sessionID: session.id, time: at, verb: verb, resource: resource, subresource: subresource,
            namespace: namespace, name: name, httpMethod: verb == "delete" ? "DELETE" : "GET",
            path: "/api/v1/namespaces/\(namespace)/\(resource)/\(name)", requestBody: body,
            requestBytes: Int64(body?.count ?? 0)))
    }
}

/// XCTAssertEqual for an async expression (XCTest's autoclosures cannot await).
func assertEqualAsync<T: Equatable>(
    _ expression: @autoclosure () async throws -> T, _ expected: T, _ message: String = "",
    file: StaticString = #filePath, line: UInt = #line
) async throws {
    let value = try await expression()
    XCTAssertEqual(value, expected, message, file: file, line: line)
}

/// XCTAssertNil for an async expression.
func assertNilAsync<T>(
    _ expression: @autoclosure () async throws -> T?, _ message: String = "",
    file: StaticString = #filePath, line: UInt = #line
) async throws {
    let value = try await expression()
    XCTAssertNil(value, message, file: file, line: line)
}
