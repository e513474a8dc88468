import Foundation
import Logging

/// The SQLite store's recording journal: how a request's records are made durable with one
/// `write()` each, instead of a SQLite commit each.
///
/// Why: a small exchange committed to SQLite twice (begin, completion) wrote 8.7 WAL frames,
/// 36 KB, and cost 0.4-0.5 ms of CPU at one client. The journal appends each record to a file
/// of this instance with one `write()` (plus `fdatasync` under `synchronous=full`), which
/// survives a crash or SIGKILL of the process exactly as a `synchronous=NORMAL` commit does,
/// and ingests what accumulated into SQLite in one transaction every `ingestDelay`.
///
/// Contract:
/// - `append` returns once the record is in the journal file: the caller may forward.
/// - Records are ingested in the order they were appended, a journal file at a time; the file
///   is removed once its records are committed, and the transaction that ingests a file
///   also marks it ingested (`journal_files_ingested`), so a crash between the commit and the
///   removal never applies a file twice.
/// - A journal file is closed once it holds `maxFileBytes`, and ingested at once; a
///   transaction ingests files up to that size together (one file at least), so the WAL a
///   transaction fills before a checkpoint can copy it stays near that size, whatever the
///   rate of records or the speed of the machine.
/// - `flush` returns once everything appended before the call is in SQLite: the store calls
///   it before every read, so readers in this process see every record.
/// - Journal files of a gone instance (its lock is free: see `JournalDirectory`) are ingested
///   when any store opens the database, before it recovers interrupted exchanges.
/// - When records arrive faster than SQLite ingests them, `waitForRoom` (which the store
///   calls before it begins an exchange) holds new exchanges while more than `backlogLimit`
///   bytes of records wait (`SessionStoreOptions.journalBacklogBytes`). A sustained overload
///   then slows requests down instead of growing memory until `append` refuses
///   (`maxPendingBytes`, the backstop for what does not wait: completions and stream chunks
///   of exchanges already begun).
/// - When ingesting fails (disk full, the file unwritable), `append` fails too, so the gateway
///   answers 503 instead of forwarding what it can no longer record; ingesting is retried
///   every second, and `append` works again once it succeeds.
///
/// It also keeps the counters the store assigns sequences from (`Counters`), behind the same
/// lock as the appends, so an event's sequence and its place in the file agree.
final class RecordingJournal: @unchecked Sendable {   // state behind `lock`
    /// Per-session next-sequence base and per-exchange chunk counts of exchanges in flight.
    struct Counters {
        /// Session id to its exchange count, including exchanges not yet ingested.
        var sessions: [SessionID: Int64] = [:]
        /// Exchanges begun and not completed, to their stream chunk count.
        var openExchanges: [ExchangeID: Int64] = [:]
    }

    /// A closed journal file not yet ingested, with its events.
    struct Batch: Sendable {
        let file: String
        let events: [JournalEvent]
        /// The journal's append count once this file's last event was appended.
        var through: UInt64 = 0
        /// The file's size.
        var bytes = 0
    }

    /// Ingests `batches` in one transaction (skipping files already marked ingested) and
    /// forgets the marks of `removed`, files deleted after an earlier ingest.
    typealias Ingest = @Sendable (_ batches: [Batch], _ removed: [String]) async throws -> Void

    let directory: JournalDirectory
    let stem: String
    let synchronousFull: Bool
    let ingestDelay: Duration
    private let ingest: Ingest
    private let logger: Logger
    /// Records held in memory (bodies included) past which `append` refuses more: ingesting
    /// has fallen far behind.
    static let maxPendingBytes = 256 << 20
    /// Pending records that start an ingest before `ingestDelay` has passed.
    static let eagerIngestEvents = 2048
    /// Size at which a journal file is closed and ingested at once, and past which a
    /// transaction takes no further file: what bounds a transaction's WAL frames.
    static let maxFileBytes = 1 << 20
    /// Counter entries kept beyond which they are dropped whenever nothing is pending.
    static let maxCounterEntries = 10_000

    private let lock = NSLock()
    private var counters = Counters()
    private var lockFD: Int32 = -1
    private var fd: Int32 = -1
    private var fileSize: off_t = 0
    private var generation = 0
    /// The last generation number handed out (to the current file or the spare).
    private var lastGeneration = 0
    /// The next journal file, opened by the ingest round so a request does not create one.
    private var spare: (fd: Int32, generation: Int)?
    private var pending: [JournalEvent] = []
    private var pendingBytes = 0
    /// Closed files waiting for (or failed at) ingest, oldest first.
    private var batches: [Batch] = []
    /// Files removed after their ingest whose marks the next ingest deletes.
    private var removed: [String] = []
    private var appended: UInt64 = 0
    private var ingested: UInt64 = 0
    private var failure: Error?
    private var closed = false
    private var abandoned = false
    private var round: Task<Void, Never>?
    private var roundRunning = false
    private var waiters: [(target: UInt64, continuation: CheckedContinuation<Void, Error>)] = []
    /// New exchanges held by `waitForRoom`, oldest first.
    private var roomWaiters: [CheckedContinuation<Void, Never>] = []
    /// Exchanges `waitForRoom` ever held.
    private var heldTotal: Int64 = 0
    /// When holding was last logged (at most once a minute).
    private var lastHoldLogged: ContinuousClock.Instant?
    /// Bytes of records waiting past which `waitForRoom` holds new exchanges.
    private let backlogLimit: Int

    init(directory: JournalDirectory, instanceID: String, synchronousFull: Bool, ingestDelay: Duration,
         logger: Logger, backlogBytes: Int = SessionStoreOptions.defaultJournalBacklogBytes, ingest: @escaping Ingest) {
        self.backlogLimit = backlogBytes
        self.directory = directory
        self.stem = JournalDirectory.stem(instanceID)
        self.synchronousFull = synchronousFull
        self.ingestDelay = ingestDelay
        self.logger = logger
        self.ingest = ingest
    }

    deinit {
        // A store dropped without close: its files stay for the next opener to ingest.
        if fd >= 0 { Foundation.close(fd) }
        if let spare { discard(fd: spare.fd, generation: spare.generation) }
        if lockFD >= 0 { Foundation.close(lockFD) }
    }

    /// Updates the counters (learning a session's count from the database).
    func updateCounters(_ body: (inout Counters) -> Void) {
        lock.withLock { body(&counters) }
    }

    /// Appends the event `prepare` builds from the counters and, once it is in the file,
    /// applies `commit` to them; returns false (writing nothing) when `prepare` returns nil.
    func append(prepare: (Counters) throws -> JournalEvent?, commit: (inout Counters) -> Void) throws -> Bool {
        // nil: nothing written; otherwise whether a sleeping round must be woken.
        let wake: Bool? = try lock.withLock {
            if closed { throw SessionStoreError.closed }
            if let failure {
                throw SessionStoreError.database(operation: "record to the journal",
                                                 message: "ingesting it into SQLite fails: \(failure)")
            }
            guard pendingBytes < Self.maxPendingBytes else {
                throw SessionStoreError.database(operation: "record to the journal",
                                                 message: "\(pendingBytes) bytes wait to be ingested into SQLite")
            }
            guard let event = try prepare(counters) else { return nil }
            try write(JournalCodec.frame(event))
            commit(&counters)
            pending.append(event)
            pendingBytes += event.payloadBytes
            appended += 1
            let full = fileSize >= Self.maxFileBytes
            if full { closeCurrentFile() }
            if round == nil {
                startRound(after: full ? .zero : ingestDelay)
                return false
            }
            return (full || pending.count >= Self.eagerIngestEvents) && !roundRunning
        }
        guard let wake else { return false }
        if wake { wakeRound() }
        return true
    }

    /// Returns at once while fewer than `backlogLimit` bytes of records wait to be ingested;
    /// otherwise once an ingest round has brought them below that, failed (the append that
    /// follows then reports why) or the journal was closed.
    func waitForRoom() async {
        let full: Bool = lock.withLock { pendingBytes >= backlogLimit && !closed && failure == nil }
        guard full else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            // Whether a sleeping round must be woken, and the backlog to log (once a minute).
            let (wake, logged): (Bool, Int?) = lock.withLock {
                guard pendingBytes >= backlogLimit, !closed, failure == nil else {
                    continuation.resume()
                    return (false, nil)
                }
                roomWaiters.append(continuation)
                heldTotal += 1
                let now = ContinuousClock.now
                var logged: Int?
                if lastHoldLogged.map({ now - $0 >= .seconds(60) }) ?? true {
                    lastHoldLogged = now
                    logged = pendingBytes
                }
                if round == nil {
                    startRound(after: .zero)
                    return (false, logged)
                }
                return (!roundRunning, logged)
            }
            if let logged {
                logger.warning("recording falls behind: new requests wait until SQLite has ingested the recording journal",
                               metadata: ["waitingBytes": "\(logged)", "limitBytes": "\(backlogLimit)"])
            }
            if wake { wakeRound() }
        }
    }

    /// Records waiting and exchanges held, for metrics.
    func backlog() -> RecorderBacklog {
        lock.withLock { RecorderBacklog(bytes: pendingBytes, heldExchanges: roomWaiters.count, heldTotal: heldTotal) }
    }

    /// Lets held exchanges go once the backlog is below the limit, or all of them when
    /// ingesting failed or the journal closed (under `lock`).
    private func resumeRoomWaiters(all: Bool) {
        guard !roomWaiters.isEmpty, all || pendingBytes < backlogLimit else { return }
        for waiter in roomWaiters { waiter.resume() }
        roomWaiters = []
    }

    /// Writes one frame to the current journal file (opening the lock and a new file as
    /// needed). A failed write is cut off the file, so no torn frame precedes later ones.
    private func write(_ frame: [UInt8]) throws {
        if lockFD < 0 { lockFD = try directory.acquireLock(stem: stem) }
        if fd < 0 {
            if let spare {
                (fd, generation) = spare
                self.spare = nil
            } else {
                lastGeneration += 1
                generation = lastGeneration
                fd = try openJournalFile(generation)
            }
            fileSize = 0
        }
        var written = 0
        let ok = frame.withUnsafeBytes { raw -> Bool in
            while written < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                written += n
            }
            return true
        }
        guard ok, !synchronousFull || fdatasync(fd) == 0 else {
            let error = JournalDirectory.failure("append to the recording journal \(directory.filePath(directory.logName(stem, generation: generation)))")
            _ = ftruncate(fd, fileSize)
            throw error
        }
        fileSize += off_t(frame.count)
    }

    private func openJournalFile(_ generation: Int) throws -> Int32 {
        let path = directory.filePath(directory.logName(stem, generation: generation))
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw JournalDirectory.failure("create the recording journal \(path)") }
        return fd
    }

    /// Opens the next journal file ahead of the append that needs it (creating a file takes
    /// directory locks, which a request should not wait for).
    private func prepareSpare() {
        let generation: Int? = lock.withLock {
            guard spare == nil, lockFD >= 0, !closed else { return nil }
            lastGeneration += 1
            return lastGeneration
        }
        guard let generation, let fd = try? openJournalFile(generation) else { return }
        let unused: Bool = lock.withLock {
            if closed { return true }
            spare = (fd, generation)
            return false
        }
        if unused { discard(fd: fd, generation: generation) }
    }

    private func discard(fd: Int32, generation: Int) {
        Foundation.close(fd)
        unlink(directory.filePath(directory.logName(stem, generation: generation)))
    }

    /// Returns once every record appended before the call is in SQLite.
    func flush() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            let wake: Bool = lock.withLock {
                let target = appended
                if abandoned {
                    continuation.resume(throwing: SessionStoreError.closed)
                    return false
                }
                if ingested >= target {
                    continuation.resume()
                    return false
                }
                waiters.append((target, continuation))
                if round == nil {
                    startRound(after: .zero)
                    return false
                }
                return !roundRunning
            }
            if wake { wakeRound() }
        }
    }

    /// Ingests what is pending and removes this instance's journal and lock files; later
    /// appends throw `closed`. On failure the files stay, for the next opener to ingest.
    func close() async throws {
        lock.withLock {
            closed = true
            resumeRoomWaiters(all: true)
        }
        try await flush()
        let (lockFD, removed, spare) = lock.withLock { () -> (Int32, [String], (fd: Int32, generation: Int)?) in
            defer { self.lockFD = -1; self.spare = nil }
            return (self.lockFD, self.removed, self.spare)
        }
        if let spare { discard(fd: spare.fd, generation: spare.generation) }
        if !removed.isEmpty { try? await ingest([], removed) }
        if lockFD >= 0 {
            unlink(directory.lockPath(stem))
            Foundation.close(lockFD)
        }
    }

    /// Leaves the journal as a killed process would: files and pending records stay, and the
    /// lock is released, so the next store to open the database ingests them (tests).
    func abandon() {
        lock.withLock {
            closed = true
            abandoned = true
            resumeRoomWaiters(all: true)
            round?.cancel()
            if fd >= 0 { Foundation.close(fd) }
            if let spare { Foundation.close(spare.fd) }
            if lockFD >= 0 { Foundation.close(lockFD) }
            fd = -1
            spare = nil
            lockFD = -1
        }
    }

    // MARK: Ingest rounds

    /// Starts the round task (under `lock`): after `delay` (cut short by `wakeRound`) it runs
    /// one round, which schedules the next.
    private func startRound(after delay: Duration) {
        round = Task { [self] in
            if delay > .zero { try? await Task.sleep(for: delay) }
            await runRound()
        }
    }

    /// Cuts a sleeping round's delay short (its sleep throws on cancellation).
    private func wakeRound() {
        lock.withLock { if !roundRunning { round?.cancel() } }
    }

    /// One round: closes the current file, ingests the oldest closed files (up to
    /// `maxFileBytes` of them, one at least), then schedules the next round — at once while
    /// closed files remain or a flush waits, otherwise after `ingestDelay` (so records arriving
    /// meanwhile are ingested together) — or, when nothing is left, ends.
    private func runRound() async {
        let work: (batches: [Batch], removed: [String])? = lock.withLock {
            if abandoned { return nil }
            roundRunning = true
            closeCurrentFile()
            guard !batches.isEmpty else {
                roundRunning = false
                round = nil
                trimCounters()
                return nil
            }
            var count = 1
            var bytes = batches[0].bytes
            while count < batches.count, bytes + batches[count].bytes <= Self.maxFileBytes {
                bytes += batches[count].bytes
                count += 1
            }
            return (Array(batches.prefix(count)), removed)
        }
        guard let work else { return }
        do {
            try await ingest(work.batches, work.removed)
            for batch in work.batches { unlink(directory.filePath(batch.file)) }
            prepareSpare()
            lock.withLock {
                batches.removeFirst(work.batches.count)
                removed.removeFirst(work.removed.count)
                removed.append(contentsOf: work.batches.map(\.file))
                pendingBytes -= work.batches.reduce(0) { $0 + $1.events.reduce(0) { $0 + $1.payloadBytes } }
                ingested = max(ingested, work.batches.last!.through)
                failure = nil
                resumeWaiters(nil)
                resumeRoomWaiters(all: false)
                roundRunning = false
                if pending.isEmpty && batches.isEmpty {
                    round = nil
                    trimCounters()
                } else {
                    let soon = !waiters.isEmpty || !roomWaiters.isEmpty || !batches.isEmpty
                        || pending.count >= Self.eagerIngestEvents
                    startRound(after: soon ? .zero : ingestDelay)
                }
            }
        } catch {
            logger.error("could not ingest the recording journal into SQLite; retrying in 1 s",
                         metadata: ["error": "\(error)", "files": "\(work.batches.map(\.file))"])
            lock.withLock {
                failure = error
                resumeWaiters(error)
                resumeRoomWaiters(all: true)
                roundRunning = false
                startRound(after: .seconds(1))
            }
        }
    }

    /// Closes the current journal file into a batch (under `lock`); the next append opens a new one.
    private func closeCurrentFile() {
        guard fd >= 0 else { return }
        Foundation.close(fd)
        fd = -1
        batches.append(Batch(file: directory.logName(stem, generation: generation), events: pending,
                             through: appended, bytes: Int(fileSize)))
        pending = []
    }

    /// Answers the flushes that are satisfied, or all of them with `error` (under `lock`).
    private func resumeWaiters(_ error: Error?) {
        var waiting: [(target: UInt64, continuation: CheckedContinuation<Void, Error>)] = []
        for waiter in waiters {
            if let error {
                waiter.continuation.resume(throwing: error)
            } else if waiter.target <= ingested {
                waiter.continuation.resume()
            } else {
                waiting.append(waiter)
            }
        }
        waiters = waiting
    }

    /// Drops counter entries when there are many and nothing is pending (under `lock`): the
    /// database then holds every count, and a store reloads an entry when it needs it.
    private func trimCounters() {
        guard pending.isEmpty, batches.isEmpty else { return }
        if counters.sessions.count > Self.maxCounterEntries { counters.sessions.removeAll() }
        if counters.openExchanges.count > 10 * Self.maxCounterEntries { counters.openExchanges.removeAll() }
    }

    // MARK: Replay

    /// Ingests the journal files of every gone instance (see `JournalDirectory`), oldest file
    /// first, and removes them.
    static func ingestGoneInstances(_ directory: JournalDirectory, except ownStem: String, logger: Logger,
                                    ingest: Ingest) async throws {
        directory.removeAbandonedTemporaryLocks()
        let (logs, locks) = directory.contents()
        for stem in Set(logs.keys).union(locks) where stem != ownStem {
            guard let lockFD = directory.lockOfGoneInstance(stem) else { continue }
            defer { if lockFD >= 0 { Foundation.close(lockFD) } }
            let files = logs[stem] ?? []
            var records = 0
            for file in files {
                let path = directory.filePath(file.name)
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw JournalDirectory.failure("read the recording journal \(path)")
                }
                let (events, intact) = JournalCodec.decode(Array(data))
                if !intact {
                    logger.warning("recording journal ends with a torn or corrupt record; the records before it are kept",
                                   metadata: ["file": "\(path)", "records": "\(events.count)"])
                }
                try await ingest([Batch(file: file.name, events: events)], [])
                unlink(path)
                records += events.count
            }
            if !files.isEmpty { try await ingest([], files.map(\.name)) }
            unlink(directory.lockPath(stem))
            if records > 0 {
                logger.notice("ingested the recording journal of a stopped gateway",
                              metadata: ["instance": "\(stem)", "files": "\(files.count)", "records": "\(records)"])
            }
        }
    }
}
