import Foundation
import Logging
import SQLiteNIO

/// SQLite backend driver: one database file in WAL mode.
///
/// - Two connections: a writer, used by one transaction at a time (a SQLite connection has a
///   single transaction and our callers are concurrent tasks), and a reader, which in WAL
///   mode reads committed data without waiting for the writer.
/// - Group commit: write transactions queue in arrival order; one writer task runs every
///   transaction queued while the previous group ran inside one `BEGIN IMMEDIATE ... COMMIT`,
///   and only then answers their callers — so each caller still returns after its writes are
///   committed, and under concurrency BEGIN and COMMIT are paid once per group. When one body
///   of a group throws, the group is rolled back and its transactions run again one by one,
///   so a failure stays that caller's own.
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
    private let queue = WriteQueue()
    /// Most transactions committed together (bounds the wait of the first one in a group).
    static let maxGroup = 64

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
        // Not cancelled with the caller: BEGIN is always followed by COMMIT or ROLLBACK, and the
        // caller is answered only after either.
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            let result = ResultBox<T>()
            let job = WriteJob(
                run: { tx in result.value = try await body(tx) },
                finish: { error in
                    if let error { continuation.resume(throwing: error) } else { continuation.resume(returning: result.value!) }
                })
            if queue.enqueue(job) { Task { await self.drain() } }
        }
    }

    /// Runs queued transactions group by group until the queue is empty.
    private func drain() async {
        while let group = queue.nextGroup(max: Self.maxGroup) {
            if group.count == 1 {
                await runAlone(group[0])
            } else {
                await runGroup(group)
            }
        }
    }

    private func runAlone(_ job: WriteJob) async {
        let tx = Transaction(connection: writer)
        do {
            _ = try await Self.run(writer, "BEGIN IMMEDIATE", [])
        } catch {
            return job.finish(error)
        }
        do {
            try await job.run(tx)
            _ = try await Self.run(writer, "COMMIT", [])
        } catch {
            _ = try? await Self.run(writer, "ROLLBACK", [])
            return job.finish(error)
        }
        job.finish(nil)
    }

    private func runGroup(_ group: [WriteJob]) async {
        let tx = Transaction(connection: writer)
        do {
            _ = try await Self.run(writer, "BEGIN IMMEDIATE", [])
            do {
                for job in group { try await job.run(tx) }
                _ = try await Self.run(writer, "COMMIT", [])
            } catch {
                _ = try? await Self.run(writer, "ROLLBACK", [])
                throw error
            }
        } catch {
            // One body (or the commit) failed: nothing of the group is kept; each runs alone.
            for job in group { await runAlone(job) }
            return
        }
        for job in group { job.finish(nil) }
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

/// One queued write transaction: `run` executes the body inside the current transaction;
/// `finish` answers the caller once the transaction committed (nil) or failed.
struct WriteJob: Sendable {
    let run: @Sendable (any SQLTransaction) async throws -> Void
    let finish: @Sendable (Error?) -> Void
}

/// Holds a body's result between the body and its commit (written and read by the writer task only).
final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}

/// Write transactions waiting for the writer, in arrival order.
final class WriteQueue: @unchecked Sendable {   // state behind `lock`
    private let lock = NSLock()
    private var pending: [WriteJob] = []
    private var draining = false

    /// Queues `job`; true when the caller must start the writer task.
    func enqueue(_ job: WriteJob) -> Bool {
        lock.withLock {
            pending.append(job)
            if draining { return false }
            draining = true
            return true
        }
    }

    /// The next group (oldest first), or nil — and the writer stops — when none is waiting.
    func nextGroup(max: Int) -> [WriteJob]? {
        lock.withLock {
            if pending.isEmpty {
                draining = false
                return nil
            }
            let count = min(max, pending.count)
            let group = Array(pending.prefix(count))
            pending.removeFirst(count)
            return group
        }
    }
}
