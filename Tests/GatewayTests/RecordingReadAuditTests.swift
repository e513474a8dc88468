import Foundation
import Gateway
import KubeCore
import SessionStore
import TestSupport
import XCTest

/// Every read of a recording through the admin API is itself recorded, before it is
/// answered: who (the OIDC subject, or `admin-token`), which session and exchange, when,
/// from which address. Real gateway, real store (a SQLite file, or PostgreSQL in the
/// subclass), real tokens.
class RecordingReadAuditTests: XCTestCase {
    class var backend: GatewayStoreBackend { .sqlite }

    var harness: GatewayHarness!
    var plane: AdminPlane!

    override func setUp() async throws {
        harness = try await GatewayHarness(backend: Self.backend)
        plane = try await AdminPlane(harness)
    }

    override func tearDown() async throws {
        await plane?.stop()
        await harness?.stop()
    }

    /// A session with one exchange; returns their ids.
    func recordSession() async throws -> (session: String, exchange: String) {
        let agent = try await harness.token()
        _ = try await GatewayHarness.send(.GET, "\(harness.connectionURL)/api/v1/namespaces/default/configmaps",
                                          headers: [("Authorization", "Bearer \(agent)")])
        try await harness.store.flush()
        let sessions = try await harness.store.listSessions(SessionFilter())
        let session = try XCTUnwrap(sessions.first?.id)
        let exchanges = try await harness.store.exchanges(sessionID: session)
        return (session, try XCTUnwrap(exchanges.first?.id))
    }

    func testEverySessionReadAppearsInTheAuditWithTheViewersSubject() async throws {
        let (session, exchange) = try await recordSession()
        let rita = try await plane.token("rita", groups: ["auditors"])
        do { let code = try await plane.call("/api/v1/sessions?subject=agent-1", token: rita).status; XCTAssertEqual(code, 200) }
        do { let code = try await plane.call("/api/v1/sessions/\(session)", token: rita).status; XCTAssertEqual(code, 200) }
        do { let code = try await plane.call("/api/v1/exchanges/\(exchange)/chunks", token: rita).status; XCTAssertEqual(code, 200) }

        let admin = try await plane.token("ada", groups: ["platform"])
        let audit = try await plane.call("/api/v1/audit/reads?viewer=rita", token: admin)
        XCTAssertEqual(audit.status, 200, "\(audit.body)")
        let rows = audit.body["items"]?.arrayValue ?? []
        XCTAssertEqual(rows.count, 3, "\(audit.body)")
        func row(_ action: String) -> JSONValue? { rows.first { $0["action"]?.stringValue == action } }
        let list = try XCTUnwrap(row("sessions.list"), "\(audit.body)")
        XCTAssertEqual(list["query"]?.stringValue, "subject=agent-1", "a list is audited with its filter")
        XCTAssertNil(list["sessionID"], "a list is one read of the list, not a read per session")
        let read = try XCTUnwrap(row("sessions.get"), "\(audit.body)")
        XCTAssertEqual(read["sessionID"]?.stringValue, session)
        let chunks = try XCTUnwrap(row("chunks.get"), "\(audit.body)")
        XCTAssertEqual(chunks["sessionID"]?.stringValue, session)
        XCTAssertEqual(chunks["exchangeID"]?.stringValue, exchange)
        for row in rows {
            XCTAssertEqual(row["viewer"]?.stringValue, "rita")
            XCTAssertEqual(row["issuer"]?.stringValue, plane.issuerURL)
            XCTAssertEqual(row["address"]?.stringValue, "127.0.0.1", "the client's address, without its port")
            XCTAssertEqual(row["count"], 1)
            let at = try XCTUnwrap(row["firstAt"]?.stringValue.flatMap(AdminJSON.parseDate))
            XCTAssertLessThan(abs(at.timeIntervalSinceNow), 60)
        }
        let bySession = try await plane.call("/api/v1/audit/reads?session=\(session)", token: admin)
        XCTAssertEqual(Set(bySession.body["items"]?.arrayValue?.compactMap { $0["action"]?.stringValue } ?? []),
                       ["sessions.get", "chunks.get"])
        let limited = try await plane.call("/api/v1/audit/reads?limit=1", token: admin)
        XCTAssertEqual(limited.body["items"]?.arrayValue?.count, 1)
        do { let code = try await plane.call("/api/v1/audit/reads?limit=0", token: admin).status; XCTAssertEqual(code, 400) }
    }

    /// A page polling an open session adds one row that counts the polls; a read after a longer pause is a row of its own.
    func testRepeatedReadsCountIntoOneRowAndAReadAfterAPauseStartsAnother() async throws {
        let (session, _) = try await recordSession()
        let rita = try await plane.token("rita", groups: ["auditors"])
        for _ in 0..<3 {
            let code = try await plane.call("/api/v1/sessions/\(session)", token: rita).status
            XCTAssertEqual(code, 200)
        }
        var rows = try await harness.store.listReads(RecordingReadFilter(viewer: "rita"))
        XCTAssertEqual(rows.map(\.count), [3])
        let later = Date().addingTimeInterval(AdminAPI.readCoalesceWindow + 1)
        try await harness.store.recordRead(rows[0].event, at: later, coalesceWithin: AdminAPI.readCoalesceWindow)
        rows = try await harness.store.listReads(RecordingReadFilter(viewer: "rita"))
        XCTAssertEqual(rows.map(\.count), [1, 3], "newest first")
        XCTAssertEqual(rows.first?.firstAt.timeIntervalSince1970 ?? 0, later.timeIntervalSince1970, accuracy: 0.001)
    }

    func testAuditRowsSurviveARestartOfTheStore() async throws {
        let (session, _) = try await recordSession()
        let rita = try await plane.token("rita", groups: ["auditors"])
        do { let code = try await plane.call("/api/v1/sessions/\(session)", token: rita).status; XCTAssertEqual(code, 200) }
        try await harness.store.close()
        let reopened = try await SessionStores.open(url: harness.storeURL)
        let rows = try await reopened.listReads(RecordingReadFilter(sessionID: session))
        try await reopened.close()
        XCTAssertEqual(rows.map(\.event.viewer), ["rita"])
        XCTAssertEqual(rows.map(\.event.action), [.readSession])
    }

    /// No read goes unrecorded: when the audit cannot be written, the recording is not served.
    func testAReadThatCannotBeAuditedIsRefused() async throws {
        let (session, _) = try await recordSession()
        let rita = try await plane.token("rita", groups: ["auditors"])
        try await harness.store.close()
        let refused = try await plane.call("/api/v1/sessions/\(session)", token: rita)
        XCTAssertEqual(refused.status, 503, "\(refused.body)")
        XCTAssertTrue(refused.body["message"]?.stringValue?.contains("could not be recorded in the audit") ?? false, "\(refused.body)")
    }

    func testReadingTheAuditNeedsTheAdminRole() async throws {
        let rita = try await plane.token("rita", groups: ["auditors"])
        let refused = try await plane.call("/api/v1/audit/reads", token: rita)
        XCTAssertEqual(refused.status, 403, "\(refused.body)")
        let sam = try await plane.token("sam", groups: ["sre"])
        do { let code = try await plane.call("/api/v1/audit/reads", token: sam).status; XCTAssertEqual(code, 403) }
        do { let code = try await plane.call("/api/v1/audit/reads", token: nil).status; XCTAssertEqual(code, 401) }
    }
}

/// RecordingReadAuditTests with the session store on PostgreSQL.
final class RecordingReadAuditOnPostgresTests: RecordingReadAuditTests {
    override class var backend: GatewayStoreBackend { .postgres }

    override func testEverySessionReadAppearsInTheAuditWithTheViewersSubject() async throws { try await super.testEverySessionReadAppearsInTheAuditWithTheViewersSubject() }
    override func testRepeatedReadsCountIntoOneRowAndAReadAfterAPauseStartsAnother() async throws { try await super.testRepeatedReadsCountIntoOneRowAndAReadAfterAPauseStartsAnother() }
    override func testAuditRowsSurviveARestartOfTheStore() async throws { try await super.testAuditRowsSurviveARestartOfTheStore() }
    override func testAReadThatCannotBeAuditedIsRefused() async throws { try await super.testAReadThatCannotBeAuditedIsRefused() }
    override func testReadingTheAuditNeedsTheAdminRole() async throws { try await super.testReadingTheAuditNeedsTheAdminRole() }
}
