import Foundation
import Logging
import VaporCSQLite

/// SQLite backend driver: one database file in WAL mode.
///
/// - Three connections (`SQLiteHandle`, statements prepared once and reused), each confined
///   to a serial queue of its own: the writer, used by one transaction at a time (a SQLite
///   connection has a single transaction and our callers are concurrent tasks); the reader,
///   which in WAL mode reads committed data without waiting for the writer; and the
///   checkpointer (below).
/// - A transaction of the only request in flight (`StoreWriteHints.alone`) that finds the
///   writer idle runs at once on its caller's thread: that saves two thread hops, most of a
///   small transaction's cost. Under concurrency transactions queue for a group commit,
///   which is cheaper (measured: inline commits whenever the writer happened to be idle cost
///   64 concurrent clients 10-20% more CPU per request).
/// - Group commit: write transactions queue in arrival order; one writer task runs every
///   transaction queued while the previous group ran inside one `BEGIN IMMEDIATE ... COMMIT`,
///   and only then answers their callers — so each caller still returns after its writes are
///   committed, and under concurrency BEGIN and COMMIT are paid once per group. When one body
///   of a group throws, the group is rolled back and its transactions run again one by one,
///   so a failure stays that caller's own. The writer task runs on the writer's queue (a task
///   executor), so a transaction's statements run back to back on one thread, without a
///   thread hop per statement.
/// - Writes are `BEGIN IMMEDIATE` transactions, so another process sharing the file waits
///   instead of failing half-way.
/// - Checkpoints (copying the WAL back into the database file, with an fsync) run on the
///   checkpointer's queue once the WAL holds `checkpointPages`, not inside a request's COMMIT
///   as SQLite's automatic checkpoint would. Under sustained writes a background checkpoint
///   never quite catches up with the WAL's tail, and SQLite only starts the WAL over once one
///   has; so past `writerCheckpointPages`, once no background checkpoint is running, the
///   writer checkpoints the remaining tail itself, between two transactions. The WAL stays bounded, and most of the copying stays off the
///   request path.
/// - Durability: `synchronous=NORMAL` (default) — a commit is in the WAL (in the OS page
///   cache) when `write` returns, which survives a crash or SIGKILL of this process; a power
///   loss may drop the last commits but never corrupts the file. `synchronous=FULL`
///   (`sqlite:PATH?synchronous=full`) also fsyncs every commit, at a latency cost on each
///   `beginExchange`.
final class SQLiteDriver: SQLDriver {
    let dialect = SQLDialect.sqlite
    private let writer: SQLiteHandle
    private let reader: SQLiteHandle
    private let writerQueue: SerialQueueExecutor
    private let readerQueue = DispatchQueue(label: "agentgate.sqlite.reader")
    private let checkpoints: WALCheckpointer
    private let queue = WriteQueue()
    /// Most transactions committed together (bounds the wait of the first one in a group).
    static let maxGroup = 64
    /// WAL size (pages) that starts a background checkpoint; SQLite's own default threshold.
    static let checkpointPages: Int32 = 1000
    /// WAL size (pages) at which the writer checkpoints what the background has not.
    static let writerCheckpointPages: Int32 = 4000

    private init(writer: SQLiteHandle, reader: SQLiteHandle, checkpoints: WALCheckpointer) {
        self.writer = writer
        self.reader = reader
        self.checkpoints = checkpoints
        self.writerQueue = SerialQueueExecutor(label: "agentgate.sqlite.writer")
    }

    static func open(path: String, synchronousFull: Bool, logger: Logger) async throws -> SQLiteDriver {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw SessionStoreError.database(operation: "create directory \(directory) for \(path)", message: "\(error)")
        }
        let writer = try SQLiteHandle(path: path)
        _ = try writer.execute("PRAGMA journal_mode=WAL", [])
        _ = try writer.execute(synchronousFull ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", [])
        let reader = try SQLiteHandle(path: path)
        let checkpoints = WALCheckpointer(handle: try SQLiteHandle(path: path), threshold: checkpointPages,
                                          writerThreshold: writerCheckpointPages, logger: logger)
        checkpoints.install(on: writer)
        return SQLiteDriver(writer: writer, reader: reader, checkpoints: checkpoints)
    }

    func read(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        let reader = self.reader
        return try await withCheckedThrowingContinuation { continuation in
            readerQueue.async { continuation.resume(with: Result { try reader.execute(sql, binds) }) }
        }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLTransaction) async throws -> T) async throws -> T {
        // Not cancelled with the caller: BEGIN is always followed by COMMIT or ROLLBACK, and the
        // caller is answered only after either.
        if StoreWriteHints.alone, queue.claimIdle() {
            // The only request in flight, and nobody is writing or waiting: its transaction runs
            // at once, on its own thread. A hop to the writer's queue and back costs more than a
            // small transaction.
            let result = ResultBox<T>()
            let failure = ResultBox<Error>()
            await runAlone(WriteJob(run: { tx in result.value = try await body(tx) }, finish: { failure.value = $0 }))
            if checkpoints.writerShouldCheckpoint() { writer.checkpointPassive() }
            if queue.releaseClaim() {
                // Transactions queued meanwhile: the writer's queue takes them (as a group).
                Task(executorPreference: writerQueue) { await self.drain() }
            }
            if let error = failure.value { throw error }
            return result.value!
        }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            let result = ResultBox<T>()
            let job = WriteJob(
                run: { tx in result.value = try await body(tx) },
                finish: { error in
                    if let error { continuation.resume(throwing: error) } else { continuation.resume(returning: result.value!) }
                })
            if queue.enqueue(job) {
                Task(executorPreference: writerQueue) { await self.drain() }
            }
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
            if checkpoints.writerShouldCheckpoint() { writer.checkpointPassive() }
        }
    }

    private func runAlone(_ job: WriteJob) async {
        let tx = Transaction(handle: writer)
        do {
            _ = try writer.execute("BEGIN IMMEDIATE", [])
        } catch {
            return job.finish(error)
        }
        do {
            try await job.run(tx)
            _ = try writer.execute("COMMIT", [])
        } catch {
            _ = try? writer.execute("ROLLBACK", [])
            return job.finish(error)
        }
        job.finish(nil)
    }

    private func runGroup(_ group: [WriteJob]) async {
        let tx = Transaction(handle: writer)
        do {
            _ = try writer.execute("BEGIN IMMEDIATE", [])
            do {
                for job in group { try await job.run(tx) }
                _ = try writer.execute("COMMIT", [])
            } catch {
                _ = try? writer.execute("ROLLBACK", [])
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

    /// Waits for queued writes and a running checkpoint, then closes the three connections.
    func close() async throws {
        await queue.waitUntilIdle()
        let (reader, writer) = (self.reader, self.writer)
        await withCheckedContinuation { continuation in
            readerQueue.async { reader.close(); continuation.resume() }
        }
        await checkpoints.close()
        await writerQueue.run { writer.close() }
    }

    /// Statements of the current transaction: run at once on the writer's queue, where the
    /// transaction's task runs.
    private struct Transaction: SQLTransaction {
        let handle: SQLiteHandle
        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            try handle.execute(sql, binds)
        }
    }
}

/// A task executor backed by a serial dispatch queue: a task preferring it runs its
/// nonisolated code on that queue, one job at a time, in order.
final class SerialQueueExecutor: TaskExecutor, @unchecked Sendable {   // the queue is thread-safe
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// Runs `body` on the queue after everything already queued.
    func run(_ body: @escaping @Sendable () -> Void) async {
        await withCheckedContinuation { continuation in
            queue.async { body(); continuation.resume() }
        }
    }
}

/// Checkpoints the WAL in the background: the writer's WAL hook reports the WAL's size after
/// each commit, and past the threshold a PASSIVE checkpoint (which never blocks the writer)
/// runs on a connection and queue of its own — one at a time.
final class WALCheckpointer: @unchecked Sendable {   // `running` behind `lock`; `handle` confined to `queue`
    private let handle: SQLiteHandle
    private let threshold: Int32
    private let logger: Logger
    private let writerThreshold: Int32
    private let queue = DispatchQueue(label: "agentgate.sqlite.checkpoint", qos: .utility)
    private let lock = NSLock()
    private var running = false
    private var closed = false
    private var walPages: Int32 = 0

    init(handle: SQLiteHandle, threshold: Int32, writerThreshold: Int32, logger: Logger) {
        self.handle = handle
        self.threshold = threshold
        self.writerThreshold = writerThreshold
        self.logger = logger
    }

    /// True when the WAL outgrew the background checkpoints (see `SQLiteDriver`); the writer
    /// then checkpoints at once. Called by the writer after each transaction.
    func writerShouldCheckpoint() -> Bool {
        lock.withLock {
            guard walPages >= writerThreshold, !running else { return false }
            walPages = 0
            return true
        }
    }

    /// Turns off the writer's automatic checkpoint and reports its commits to this checkpointer.
    /// The writer's handle must not outlive this object (the driver holds both).
    func install(on writer: SQLiteHandle) {
        guard let db = writer.connection else { return }
        sqlite_nio_sqlite3_wal_hook(db, { context, _, _, pages in
            guard let context else { return SQLITE_OK }
            Unmanaged<WALCheckpointer>.fromOpaque(context).takeUnretainedValue().committed(walPages: pages)
            return SQLITE_OK
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    private func committed(walPages pages: Int32) {
        let start: Bool = lock.withLock {
            walPages = pages
            // Past the writer's threshold the writer takes over (it waits for this one to end).
            guard pages >= threshold, pages < writerThreshold, !running, !closed else { return false }
            running = true
            return true
        }
        guard start else { return }
        queue.async { [self] in
            do {
                _ = try handle.execute("PRAGMA wal_checkpoint(PASSIVE)", [])
            } catch {
                logger.warning("SQLite WAL checkpoint failed", metadata: ["error": "\(error)"])
            }
            lock.withLock { running = false }
        }
    }

    func close() async {
        lock.withLock { closed = true }
        let handle = self.handle
        await withCheckedContinuation { continuation in
            queue.async { handle.close(); continuation.resume() }
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
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []

    /// True, and the writer is the caller's, when no transaction is running or queued: the
    /// caller runs its own and then calls `releaseClaim`.
    func claimIdle() -> Bool {
        lock.withLock {
            if draining || !pending.isEmpty { return false }
            draining = true
            return true
        }
    }

    /// Ends a claim; true when transactions were queued meanwhile and the caller must start
    /// the writer task for them.
    func releaseClaim() -> Bool {
        lock.withLock {
            if !pending.isEmpty { return true }
            draining = false
            for waiter in idleWaiters { waiter.resume() }
            idleWaiters.removeAll()
            return false
        }
    }

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
                for waiter in idleWaiters { waiter.resume() }
                idleWaiters.removeAll()
                return nil
            }
            let count = min(max, pending.count)
            let group = Array(pending.prefix(count))
            pending.removeFirst(count)
            return group
        }
    }

    /// Returns once no write is queued or running.
    func waitUntilIdle() async {
        await withCheckedContinuation { continuation in
            let idle = lock.withLock {
                if draining { idleWaiters.append(continuation) }
                return !draining
            }
            if idle { continuation.resume() }
        }
    }
}
