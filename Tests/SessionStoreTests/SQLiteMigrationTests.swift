import Foundation
@testable import SessionStore
import XCTest

/// A database written by an earlier version opens with what it recorded intact and
/// searchable. The file is built with the schema as it shipped (versions 1 and 2) and rows as
/// that version wrote them, then opened by the current store.
final class SQLiteMigrationTests: XCTestCase {
    func testAVersionTwoDatabaseKeepsItsExchangesFindableByEveryFilter() async throws {
        let url = try TestBackend.sqlite.freshURL()
        let path = String(url.dropFirst("sqlite:".count))
        let old = try SQLiteHandle(path: path)
        _ = try old.execute("CREATE TABLE agentgate_schema_version (version BIGINT PRIMARY KEY, applied_at_us BIGINT NOT NULL)", [])
        for migration in Migrations.all(.sqlite) where migration.version <= 2 {
            for statement in migration.statements { _ = try old.execute(statement, []) }
            _ = try old.execute("INSERT INTO agentgate_schema_version VALUES (?, 0)", [.int(migration.version)])
        }
        _ = try old.execute("""
            INSERT INTO sessions (id, connection_namespace, connection_name, subject, groups_json, model, token_key,
            started_at_us, last_activity_us, exchange_count, bytes) VALUES ('s1', 'team-a', 'claude', 'alice', '[]', 'opus', 't', 0, 2, 2, 0)
            """, [])
        for (id, sequence, verb, resource, subresource, namespace, name, state) in [
            ("e1", 1, "get", "pods", "log", "dev", "web-0", "complete"),
            ("e2", 2, "delete", "deployments", "", "prod", "api", "inProgress"),
        ] {
            _ = try old.execute("""
                INSERT INTO exchanges (id, session_id, sequence, started_at_us, verb, api_group, resource, subresource,
                namespace, name, http_method, path, query, request_bytes, truncated, state, owner)
                VALUES (?, 's1', ?, ?, ?, '', ?, ?, ?, ?, 'GET', '/', '', 0, 0, ?, 'dead-replica')
                """, [.text(id), .int(Int64(sequence)), .int(Int64(sequence)), .text(verb), .text(resource), .text(subresource),
                      .text(namespace), .text(name), .text(state)])
        }
        old.close()

        let store = try await TestBackend.sqlite.open(url, instanceID: "upgraded")
        func ids(_ filter: SessionFilter) async throws -> [String] { try await store.listSessions(filter).map(\.id) }
        try await assertEqualAsync(try await ids(SessionFilter(verb: "delete")), ["s1"])
        try await assertEqualAsync(try await ids(SessionFilter(resource: "pods/log")), ["s1"])
        try await assertEqualAsync(try await ids(SessionFilter(namespace: "prod", name: "api")), ["s1"])
        try await assertEqualAsync(try await ids(SessionFilter(name: "web-0")), ["s1"])
        try await assertEqualAsync(try await ids(SessionFilter(verb: "delete", namespace: "dev")), [],
                                   "criteria still hold for one exchange after the upgrade")
        // The exchange a dead replica left in progress is still found by recovery.
        try await assertEqualAsync(try await store.recoverInterrupted(at: Date(), staleAfter: 0), 1)
        try await assertEqualAsync(try await store.exchange(id: "e2")?.state, .incomplete)
        // New exchanges on the upgraded file number on from the old ones.
        let stored = try await store.session(id: "s1")?.session
        let session = try XCTUnwrap(stored)
        let next = try await store.begin(session, at: t0, verb: "patch", name: "api")
        XCTAssertEqual(next.sequence, 3)
        try await assertEqualAsync(try await ids(SessionFilter(verb: "patch")), ["s1"])
        try await store.close()
    }

    /// Version 6 adds the recording-read audit to a database that has sessions already.
    func testAVersionFiveDatabaseGainsTheRecordingReadAuditAndKeepsItsSessions() async throws {
        let url = try TestBackend.sqlite.freshURL()
        let path = String(url.dropFirst("sqlite:".count))
        let old = try SQLiteHandle(path: path)
        _ = try old.execute("CREATE TABLE agentgate_schema_version (version BIGINT PRIMARY KEY, applied_at_us BIGINT NOT NULL)", [])
        for migration in Migrations.all(.sqlite) where migration.version <= 5 {
            for statement in migration.statements { _ = try old.execute(statement, []) }
            _ = try old.execute("INSERT INTO agentgate_schema_version VALUES (?, 0)", [.int(migration.version)])
        }
        _ = try old.execute("""
            INSERT INTO sessions (id, connection_namespace, connection_name, subject, groups_json, started_at_us, last_activity_us)
            VALUES ('s5', 'team-a', 'claude', 'alice', '[]', 0, 0)
            """, [])
        old.close()
        let store = try await TestBackend.sqlite.open(url)
        try await store.recordRead(RecordingReadEvent(viewer: "rita", action: .readSession, sessionID: "s5"), at: t0, coalesceWithin: 300)
        try await assertEqualAsync(try await store.listReads(RecordingReadFilter(sessionID: "s5")).map(\.event.viewer), ["rita"])
        try await assertEqualAsync(try await store.session(id: "s5")?.session.subject, "alice")
        try await store.close()
    }

    func testADatabaseMigratedByANewerVersionIsRefusedAndLeftAsItWas() async throws {
        let url = try TestBackend.sqlite.freshURL()
        let current = try await TestBackend.sqlite.open(url)
        try await current.close()
        let path = String(url.dropFirst("sqlite:".count))
        let newer = try SQLiteHandle(path: path)
        _ = try newer.execute("INSERT INTO agentgate_schema_version VALUES (99, 0)", [])
        newer.close()
        do {
            let store = try await TestBackend.sqlite.open(url)
            try? await store.close()
            XCTFail("a schema of version 99 is not used by a version that knows fewer")
        } catch {
            XCTAssertTrue("\(error)".contains("schema is version 99"), "\(error)")
            XCTAssertTrue("\(error)".contains("run the newer agentgate"), "\(error)")
        }
        let check = try SQLiteHandle(path: path)
        let versions = try check.execute("SELECT MAX(version) AS v FROM agentgate_schema_version", [])
        check.close()
        XCTAssertEqual(versions.first?["v"].int, 99, "nothing was rolled back or rewritten")
    }
}
