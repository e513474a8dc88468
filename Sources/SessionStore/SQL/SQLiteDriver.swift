import Foundation
import Logging
import SQLiteNIO

/// SQLite backend driver: one database file in WAL mode.
///
/// - Two connections: a writer, used by one transaction at a time (a FIFO gate, because a
///   SQLite connection has a single transaction and our callers are concurrent tasks), and a
///   reader, which in WAL mode reads committed data without waiting for the writer.
/// - Writes are `BEGIN IMMEDIATE` transactions, so another process sharing the file waits
///   instead of failing half-way.
/// - Durability: `synchronous=NORMAL` (default) — a commit is in the WAL (in the OS page
///   cache) when `write` returns, which survives a crash or SIGKILL of this process; a power
///   loss may drop the last commits but never corrupts the file. `synchronous=FULL`
///   (`sqlite:PATH?synchronous=full`) also fsyncs every commit, at a latency cost on each
///   `beginExchange`.
final class SQLiteDriver: SQLDriver {
    let dialect = SQLDialect.sqlite
    private let writer: SQLiteConnection
    private let reader: SQLiteConnection
    private let gate = SerialGate()

    private init(writer: SQLiteConnection, reader: SQLiteConnection) {
        self.writer = writer
        self.reader = reader
    }

    static func open(path: String, synchronousFull: Bool, logger: Logger) async throws -> SQLiteDriver {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw SessionStoreError.database(operation: "create directory \(directory) for \(path)", message: "\(error)")
        }
        do {
            let writer = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
            _ = try await writer.query("PRAGMA journal_mode=WAL", [])
            _ = try await writer.query(synchronousFull ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", [])
            let reader = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
            return SQLiteDriver(writer: writer, reader: reader)
        } catch let error as SQLiteError {
            throw SessionStoreError.database(operation: "open SQLite file \(path)", message: error.description)
        }
    }

    func read(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try await Self.run(reader, sql, binds)
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLTransaction) async throws -> T) async throws -> T {
        // Not cancelled with the caller: BEGIN is always followed by COMMIT or ROLLBACK.
        try await Task { try await self.transaction(body) }.value
    }

    private func transaction<T: Sendable>(_ body: @Sendable (any SQLTransaction) async throws -> T) async throws -> T {
        await gate.acquire()
        do {
            _ = try await Self.run(writer, "BEGIN IMMEDIATE", [])
            do {
                let result = try await body(Transaction(connection: writer))
                _ = try await Self.run(writer, "COMMIT", [])
                await gate.release()
                return result
            } catch {
                _ = try? await Self.run(writer, "ROLLBACK", [])
                throw error
            }
        } catch {
            await gate.release()
            throw error
        }
    }

    /// One process writes a SQLite file, so there is nobody else to hear from.
    func notifications(channel: String) -> AsyncStream<String> {
        AsyncStream { _ in }
    }

    func close() async throws {
        try await reader.close()
        try await writer.close()
    }

    private struct Transaction: SQLTransaction {
        let connection: SQLiteConnection
        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            try await SQLiteDriver.run(connection, sql, binds)
        }
    }

    static func run(_ connection: SQLiteConnection, _ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        let data: [SQLiteData] = binds.map {
            switch $0 {
            case .null: return .null
            case .int(let i): return .integer(SQLiteInt64(i))
            case .double(let d): return .float(d)
            case .text(let s): return .text(s)
            case .blob(let b): return .blob(ByteBuffer(bytes: b))
            }
        }
        let rows: [SQLiteRow]
        do {
            rows = try await connection.query(sql, data)
        } catch let error as SQLiteError {
            throw SessionStoreError.database(operation: "SQLite statement \(sql.prefix(60))…", message: error.description)
        }
        return rows.map { row in
            var values: [String: SQLValue] = [:]
            for column in row.columns {
                let value: SQLValue
                switch column.data {
                case .null: value = .null
                case .integer(let i): value = .int(Int64(i))
                case .float(let d): value = .double(d)
                case .text(let s): value = .text(s)
                case .blob(let buffer): value = .blob(Array(buffer.readableBytesView))
                }
                values[column.name.lowercased()] = value
            }
            return SQLRow(values: values)
        }
    }
}

/// A FIFO async mutex: one holder at a time, waiters resumed in arrival order.
actor SerialGate {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !busy {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}
