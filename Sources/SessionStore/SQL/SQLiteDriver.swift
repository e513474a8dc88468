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
/// - A transaction of the only request in flight (per the gateway's ``RequestLoad``) that finds the
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
///   checkpointer's queue once `checkpointPages` frames were added to the WAL, not inside a
///   request's COMMIT as SQLite's automatic checkpoint would. Once the WAL holds
///   `restartFrames`, what background checkpoints leave behind (frames committed while they
///   ran) the writer copies between two transactions, so the WAL starts over and stays
///   bounded (`WALCheckpointer`).
/// - Durability: `synchronous=NORMAL` (default) — a commit is in the WAL (in the OS page
///   cache) when `write` returns, which survives a crash or SIGKILL of this process; a power
///   loss may drop the last commits but never corrupts the file. `synchronous=FULL`
///   (`sqlite:PATH?synchronous=full`) also fsyncs every commit, at a latency cost on each
///   `beginExchange`.
/// - A transaction on the writer's queue gives up the CPU (`sched_yield`) between statements
///   once it has run `CPUYield.interval`: a long transaction (ingesting the recording journal)
///   then never holds a core another thread woke up for. The scheduler otherwise lets a
///   running thread finish its slice (milliseconds) before a woken one may take its core, and
///   the threads a request passes through (the load client, the gateway's event loop, the API
///   server) each waited out an ingest round that way: measured at one client, 1.5-2.4% of
///   requests spent over 0.7 ms waiting for their upstream answer, 85% of them during an
///   ingest round; 0.3-0.6% with the yields. Lowering the writer thread's nice value instead
///   (to 10) changed nothing.
final class SQLiteDriver: SQLDriver {
    let dialect = SQLDialect.sqlite
    private let writer: SQLiteHandle
    private let reader: SQLiteHandle
    private let writerQueue: SerialQueueExecutor
    private let readerQueue = DispatchQueue(label: "agentgate.sqlite.reader")
    private let checkpoints: WALCheckpointer
    /// Checkpoints run so far (for tests).
    var checkpointCount: Int { checkpoints.checkpointCount }
    private let queue = WriteQueue()
    /// The gateway's requests in flight; nil when nobody counts them (then every write queues).
    private let load: RequestLoad?
    /// Most transactions committed together (bounds the wait of the first one in a group).
    static let maxGroup = 64
    /// Frames added to the WAL that start a background checkpoint; SQLite's own default threshold.
    static let checkpointPages: Int32 = 1000
    /// Frames not yet copied at which the writer checkpoints what the background has not.
    static let writerCheckpointPages: Int32 = 4000
    /// WAL size (frames; 4 KiB each) from which the writer copies the last frames so it starts
    /// over: the WAL file peaks at 32 MiB and what is committed while the last background
    /// passes run (a few MiB, more under sustained large writes).
    static let restartFrames: Int32 = 8000

    private init(writer: SQLiteHandle, reader: SQLiteHandle, checkpoints: WALCheckpointer, load: RequestLoad?) {
        self.load = load
        self.writer = writer
        self.reader = reader
        self.checkpoints = checkpoints
        self.writerQueue = SerialQueueExecutor(label: "agentgate.sqlite.writer")
    }

    static func open(path: String, synchronousFull: Bool, load: RequestLoad? = nil, logger: Logger) async throws -> SQLiteDriver {
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
        let checkpoints = WALCheckpointer(handle: try SQLiteHandle(path: path), databasePath: path, threshold: checkpointPages,
                                          writerThreshold: writerCheckpointPages, restartFrames: restartFrames,
                                          logger: logger)
        checkpoints.install(on: writer)
        return SQLiteDriver(writer: writer, reader: reader, checkpoints: checkpoints, load: load)
    }

    func read(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        let reader = self.reader
        return try await withCheckedThrowingContinuation { continuation in
            readerQueue.async { continuation.resume(with: Result { try reader.execute(sql, binds) }) }
        }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLTransaction) async throws -> T) async throws -> T {
        try await write(inline: load?.current == 1, body)
    }

    /// Background work (journal ingest, pruning, migrations) always queues for the writer: it
    /// is nobody's request, and running it inline would hold up whoever's thread it is on.
    func maintenance<T: Sendable>(_ body: @escaping @Sendable (any SQLTransaction) async throws -> T) async throws -> T {
        try await write(inline: false, body)
    }

    private func write<T: Sendable>(inline: Bool, _ body: @escaping @Sendable (any SQLTransaction) async throws -> T) async throws -> T {
        // Not cancelled with the caller: BEGIN is always followed by COMMIT or ROLLBACK, and the
        // caller is answered only after either.
        if inline, queue.claimIdle() {
            // The only request in flight, and nobody is writing or waiting: its transaction runs
            // at once, on its own thread. A hop to the writer's queue and back costs more than a
            // small transaction.
            let result = ResultBox<T>()
            let failure = ResultBox<Error>()
            await runAlone(WriteJob(run: { tx in result.value = try await body(tx) }, finish: { failure.value = $0 }), yield: nil)
            checkpoints.checkpointTailIfDue(on: writer)
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

    func writeStatement(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try await write { tx in try await tx.query(sql, binds) }
    }

    /// Runs queued transactions group by group until the queue is empty.
    private func drain() async {
        let yield = CPUYield()
        while let group = queue.nextGroup(max: Self.maxGroup) {
            if group.count == 1 {
                await runAlone(group[0], yield: yield)
            } else {
                await runGroup(group, yield: yield)
            }
            checkpoints.checkpointTailIfDue(on: writer)
        }
    }

    /// Runs one transaction; `yield` is nil on a request's own thread.
    private func runAlone(_ job: WriteJob, yield: CPUYield?) async {
        let tx = Transaction(handle: writer, yield: yield)
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

    private func runGroup(_ group: [WriteJob], yield: CPUYield) async {
        let tx = Transaction(handle: writer, yield: yield)
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
            for job in group { await runAlone(job, yield: yield) }
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
    /// transaction's task runs (or on the thread of the request running it alone).
    private struct Transaction: SQLTransaction {
        let handle: SQLiteHandle
        let yield: CPUYield?
        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            defer { yield?.ifDue() }
            return try handle.execute(sql, binds)
        }
    }
}

/// Gives up the CPU once `interval` has passed since it last did (see `SQLiteDriver`); used by
/// one thread at a time (the writer's queue).
final class CPUYield: @unchecked Sendable {
    static let interval: UInt64 = 100_000   // nanoseconds
    private var last = DispatchTime.now().uptimeNanoseconds

    func ifDue() {
        let now = DispatchTime.now().uptimeNanoseconds
        guard now - last >= Self.interval else { return }
        sched_yield()
        last = DispatchTime.now().uptimeNanoseconds
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
/// each commit, and once `threshold` frames have been added since the last checkpoint a
/// PASSIVE checkpoint (which never blocks the writer) runs on a connection and queue of its
/// own — one at a time.
///
/// SQLite starts the WAL over only once a checkpoint has copied every frame. Under sustained
/// writes a background checkpoint almost never does: frames committed while it runs are left
/// over. Starting another one at the next commit, for those few frames, paid two fsyncs per
/// handful of pages, commit after commit, without ever catching up (measured with strace at
/// one gateway client: 481 fsyncs for 714 requests; perf put the checkpointer at 18% of the
/// gateway's CPU). Instead:
/// - A background checkpoint starts once `threshold` frames were added since the last copy.
///   Frames left over wait for the next one; the WAL keeps growing meanwhile.
/// - Once the WAL holds `restartFrames`, background passes repeat, each copying what was
///   committed while the previous one ran, until at most `smallTail` frames are left (or
///   `maxPasses` ran, or a pass left more than half of what it copied: commits outpacing the
///   copying). The writer then copies that tail between two transactions, where no commit
///   can race it, and the WAL starts over at the next commit. That checkpoint waits for two
///   fsyncs (2.5-8.5 ms measured here, whatever the tail's size), so it is kept rare: once
///   per `restartFrames`, about 450 small requests, not once per `threshold`.
/// - Past `writerThreshold` frames not yet copied (background checkpoints falling behind),
///   the writer checkpoints too.
final class WALCheckpointer: @unchecked Sendable {   // state behind `lock`; `handle` confined to `queue`
    private let handle: SQLiteHandle
    /// The database file, to flush what a partial checkpoint copied (-1 if it cannot be opened).
    private let databaseFile: Int32
    /// The WAL, opened at the first restart (nil until then; -1 if it cannot be opened).
    private var walFile: Int32?
    private let walPath: String
    private let threshold: Int32
    private let logger: Logger
    private let writerThreshold: Int32
    private let restartFrames: Int32
    private let queue = DispatchQueue(label: "agentgate.sqlite.checkpoint", qos: .utility)
    private let lock = NSLock()
    private var running = false
    private var closed = false
    /// The WAL's size in frames after the last commit.
    private var walFrames: Int32 = 0
    /// How many of the WAL's frames are known to be in the database file.
    private var copied: Int32 = 0
    /// Counts the times the WAL started over, so a checkpoint that ran across a restart does
    /// not report the old WAL's frames as the new one's.
    private var walGeneration = 0
    /// A background checkpoint left frames behind: the writer copies them.
    private var tailDue = false
    private var checkpointsRun = 0

    init(handle: SQLiteHandle, databasePath: String, threshold: Int32, writerThreshold: Int32, restartFrames: Int32,
         logger: Logger) {
        self.handle = handle
        self.databaseFile = open(databasePath, O_RDONLY | O_CLOEXEC)
        self.walPath = databasePath + "-wal"
        self.threshold = threshold
        self.writerThreshold = writerThreshold
        self.restartFrames = restartFrames
        self.logger = logger
    }

    /// Checkpoints run so far, by either connection (for tests).
    var checkpointCount: Int { lock.withLock { checkpointsRun } }

    /// Called by the writer after each transaction, on the writer's connection: copies what a
    /// background checkpoint left behind, or what background checkpoints fell behind on.
    func checkpointTailIfDue(on writer: SQLiteHandle) {
        let generation: Int? = lock.withLock {
            guard !running, !closed, tailDue || walFrames - copied >= writerThreshold else { return nil }
            tailDue = false
            running = true
            return walGeneration
        }
        guard let generation else { return }
        let result = Result { try writer.checkpointPassive() }
        lock.withLock {
            running = false
            checkpointsRun += 1
            if case let .success(frames) = result, generation == walGeneration { copied = max(copied, frames.copied) }
        }
        if case let .failure(error) = result {
            logger.warning("SQLite WAL checkpoint failed", metadata: ["error": "\(error)"])
        }
    }

    /// Turns off the writer's automatic checkpoint and reports its commits to this checkpointer.
    /// The writer's handle must not outlive this object (the driver holds both).
    func install(on writer: SQLiteHandle) {
        guard let db = writer.connection else { return }
        sqlite_nio_sqlite3_wal_hook(db, { context, _, _, pages in
            guard let context else { return SQLITE_OK }
            Unmanaged<WALCheckpointer>.fromOpaque(context).takeUnretainedValue().committed(walFrames: pages)
            return SQLITE_OK
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    private func committed(walFrames frames: Int32) {
        let generation: Int? = lock.withLock {
            if frames < walFrames {
                // The WAL started over: nothing in it has been copied yet.
                walGeneration += 1
                copied = 0
            }
            walFrames = frames
            let uncopied = frames - copied
            // Past the writer's threshold the writer takes over (after this one ends).
            guard uncopied >= threshold, uncopied < writerThreshold, !tailDue, !running, !closed else { return nil }
            running = true
            return walGeneration
        }
        guard let generation else { return }
        queue.async { [self] in backgroundPasses(generation: generation) }
    }

    /// Background checkpoints, each copying what was committed while the previous one ran,
    /// until what is left is small enough for the writer to copy without a noticeable pause.
    private func backgroundPasses(generation: Int) {
        var before = lock.withLock { copied }
        let passes = lock.withLock { walFrames >= restartFrames } ? Self.maxPasses : 1
        for _ in 0..<passes {
            let result = Result { try handle.checkpointPassive() }
            if case let .success(frames) = result, frames.copied < frames.walFrames, databaseFile >= 0 {
                // SQLite flushes the database file only when a checkpoint copied all it saw
                // (a reader held it back here), so the writer's tail checkpoint would flush
                // what this one copied, on the request path. Flushing here leaves it the tail.
                _ = fdatasync(databaseFile)
            }
            let again: Bool = lock.withLock {
                checkpointsRun += 1
                guard case let .success(frames) = result, generation == walGeneration, !closed else { return false }
                copied = max(copied, frames.copied)
                // Another pass only while they converge: when commits outpace the copying,
                // the writer takes over at once instead of the WAL growing meanwhile.
                let tail = walFrames - copied
                defer { before = copied }
                return tail > Self.smallTail && tail <= (copied - before) / 2
            }
            if case let .failure(error) = result {
                logger.warning("SQLite WAL checkpoint failed", metadata: ["error": "\(error)"])
            }
            guard again else { break }
        }
        if passes > 1 {
            // The writer's tail checkpoint flushes both files, and a flush waits for all that is
            // dirty: flushing here first leaves it only what is committed from now on
            // (measured under 1 MiB LISTs: tails of 8-261 frames waited 6-123 ms).
            let wal = walFile ?? open(walPath, O_RDONLY | O_CLOEXEC)
            walFile = wal
            if wal >= 0 { _ = fdatasync(wal) }
            if databaseFile >= 0 { _ = fdatasync(databaseFile) }
        }
        lock.withLock {
            running = false
            // A checkpoint copies the WAL as it was when it started. If nothing was committed
            // since, the next commit starts the WAL over; otherwise, once the WAL is large
            // enough to start over, the writer copies the rest.
            if generation == walGeneration { tailDue = copied < walFrames && walFrames >= restartFrames }
        }
    }

    /// Uncopied frames the writer takes over from the background.
    static let smallTail: Int32 = 64
    /// Background passes, at most, before the writer takes over whatever is left.
    static let maxPasses = 8

    func close() async {
        lock.withLock { closed = true }
        let handle = self.handle
        let databaseFile = self.databaseFile
        await withCheckedContinuation { continuation in
            queue.async {
                handle.close()
                if databaseFile >= 0 { _ = Foundation.close(databaseFile) }
                if let wal = self.walFile, wal >= 0 { _ = Foundation.close(wal) }
                continuation.resume()
            }
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
