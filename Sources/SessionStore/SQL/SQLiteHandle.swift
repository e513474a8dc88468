import Foundation
// The SQLite library sqlite-nio compiles (its `sqlite_nio_`-prefixed amalgamation). We call it
// directly: the session store's hot path is a handful of small statements per request, and
// SQLiteNIO prepares every statement afresh and hops to a thread pool for each one.
import VaporCSQLite

/// One `sqlite3` connection and its prepared statements.
///
/// Not thread-safe (opened `NOMUTEX`): its owner makes one call at a time — the driver's
/// writer queue or reader queue. Statements are prepared once per distinct SQL text
/// (`SQLITE_PREPARE_PERSISTENT`) and reset after each use; every value is bound, never spliced.
final class SQLiteHandle: @unchecked Sendable {   // confined to its owner's serial queue
    private var db: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    let path: String
    /// Distinct statements kept prepared; beyond it the cache starts over (the store uses a few dozen).
    static let maxCachedStatements = 256

    /// `sqlite3_initialize` once per process, before the first open (it is not safe to race).
    private static let libraryInitialized: Bool = {
        sqlite_nio_sqlite3_initialize() == SQLITE_OK
    }()

    init(path: String) throws {
        _ = Self.libraryInitialized
        self.path = path
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_CREATE | SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        let rc = sqlite_nio_sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "SQLite error \(rc)"
            sqlite_nio_sqlite3_close_v2(handle)
            throw SessionStoreError.database(operation: "open SQLite file \(path)", message: message)
        }
        db = handle
        // Another process writing the same file (a second gateway on one volume, a CLI): wait
        // for its transaction rather than fail half-way.
        sqlite_nio_sqlite3_busy_timeout(handle, 60_000)
    }

    deinit { close() }

    /// Finalizes every statement and closes the connection; later calls throw.
    func close() {
        for statement in statements.values { sqlite_nio_sqlite3_finalize(statement) }
        statements.removeAll()
        if let db { sqlite_nio_sqlite3_close_v2(db) }
        db = nil
    }

    /// The raw handle, for connection-level settings (WAL hook, checkpoint mode).
    var connection: OpaquePointer? { db }

    /// Copies the WAL's committed frames back into the database file, without waiting for
    /// readers or writers (best effort: what it cannot copy now, a later checkpoint will).
    /// Returns the WAL's size in frames and how many of them are now in the database file.
    /// (The statement, not `sqlite3_wal_checkpoint_v2`: a connection that has not read the
    /// database yet has not opened the WAL, and the call would silently do nothing.)
    @discardableResult
    func checkpointPassive() throws -> (walFrames: Int32, copied: Int32) {
        guard let row = try execute("PRAGMA wal_checkpoint(PASSIVE)", []).first else {
            throw SessionStoreError.database(operation: "PRAGMA wal_checkpoint(PASSIVE)", message: "no result row")
        }
        return (Int32(truncatingIfNeeded: row.int("log")), Int32(truncatingIfNeeded: row.int("checkpointed")))
    }

    /// Runs one statement with `binds` for its `?` placeholders and returns its rows.
    func execute(_ sql: String, _ binds: [SQLValue]) throws -> [SQLRow] {
        let statement = try prepared(sql)
        defer {
            sqlite_nio_sqlite3_reset(statement)
            sqlite_nio_sqlite3_clear_bindings(statement)
        }
        for (offset, value) in binds.enumerated() {
            let rc = bind(value, at: Int32(offset + 1), in: statement)
            guard rc == SQLITE_OK else { throw failure(sql, code: rc) }
        }
        var rows: [SQLRow] = []
        var names: [String] = []
        while true {
            let rc = sqlite_nio_sqlite3_step(statement)
            if rc == SQLITE_DONE { return rows }
            guard rc == SQLITE_ROW else { throw failure(sql, code: rc) }
            let count = sqlite_nio_sqlite3_column_count(statement)
            if names.isEmpty {
                names = (0..<count).map { String(cString: sqlite_nio_sqlite3_column_name(statement, $0)).lowercased() }
            }
            var values = [String: SQLValue](minimumCapacity: Int(count))
            for column in 0..<count {
                values[names[Int(column)]] = Self.value(of: statement, column: column)
            }
            rows.append(SQLRow(values: values))
        }
    }

    private func prepared(_ sql: String) throws -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        guard let db else { throw SessionStoreError.closed }
        if statements.count >= Self.maxCachedStatements {
            for statement in statements.values { sqlite_nio_sqlite3_finalize(statement) }
            statements.removeAll()
        }
        var statement: OpaquePointer?
        let rc = sqlite_nio_sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw failure(sql, code: rc) }
        statements[sql] = statement
        return statement
    }

    /// SQLite copies what it binds (`SQLITE_TRANSIENT`), so the Swift buffers may go away at once.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    private func bind(_ value: SQLValue, at index: Int32, in statement: OpaquePointer) -> Int32 {
        switch value {
        case .null:
            return sqlite_nio_sqlite3_bind_null(statement, index)
        case .int(let i):
            return sqlite_nio_sqlite3_bind_int64(statement, index, i)
        case .double(let d):
            return sqlite_nio_sqlite3_bind_double(statement, index, d)
        case .text(var text):
            return text.withUTF8 { utf8 in
                // An empty buffer may have no address; SQLite reads a null text pointer as NULL.
                guard let base = utf8.baseAddress, !utf8.isEmpty else {
                    return sqlite_nio_sqlite3_bind_text(statement, index, "", 0, Self.transient)
                }
                return base.withMemoryRebound(to: CChar.self, capacity: utf8.count) {
                    sqlite_nio_sqlite3_bind_text64(statement, index, $0, UInt64(utf8.count), Self.transient, UInt8(SQLITE_UTF8))
                }
            }
        case .blob(let bytes):
            // Likewise an empty blob: a zero-length blob, not NULL.
            guard !bytes.isEmpty else { return sqlite_nio_sqlite3_bind_zeroblob(statement, index, 0) }
            return bytes.withUnsafeBytes {
                sqlite_nio_sqlite3_bind_blob64(statement, index, $0.baseAddress, UInt64($0.count), Self.transient)
            }
        }
    }

    private static func value(of statement: OpaquePointer, column: Int32) -> SQLValue {
        switch sqlite_nio_sqlite3_column_type(statement, column) {
        case SQLITE_INTEGER:
            return .int(sqlite_nio_sqlite3_column_int64(statement, column))
        case SQLITE_FLOAT:
            return .double(sqlite_nio_sqlite3_column_double(statement, column))
        case SQLITE_TEXT:
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, column))
            guard let text = sqlite_nio_sqlite3_column_text(statement, column), count > 0 else { return .text("") }
            return .text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, column))
            guard let blob = sqlite_nio_sqlite3_column_blob(statement, column), count > 0 else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: blob, count: count)))
        default:
            return .null
        }
    }

    private func failure(_ sql: String, code: Int32) -> SessionStoreError {
        let message = db.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "SQLite error \(code)"
        return .database(operation: "SQLite statement \(sql.prefix(60))…", message: message)
    }
}
