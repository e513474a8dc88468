import Foundation

/// SessionStore: the recorder behind the gateway.
///
/// Contract (see ../../shared/DESIGN.md, "Session store"):
/// - A **session** groups the exchanges of one agent identity on one connection. Its key is
///   the connection + subject + the token's `sid`/`jti` claim when present; without one, a
///   new session starts after an idle gap (15 minutes by default).
/// - An **exchange** is one HTTP request/response through the gateway. The gateway calls
///   `beginExchange` *before* forwarding and only forwards once it returned (fail closed);
///   the record is durable when it returns (committed, or on SQLite in the store's recording
///   journal, which the next store to open the file ingests), so a crash afterwards leaves a
///   row that `recoverInterrupted` later marks `incomplete` — never a forwarded request with
///   no record.
/// - Bodies are stored as the agent saw them: the caller masks them first.
/// - Streams (watch events, exec/log frames) are appended to their exchange as they pass
///   and replay in order with their timestamps.
/// - Several replicas may share one PostgreSQL database. Each store has an `instanceID`;
///   exchanges carry their owner, instances heartbeat, and recovery only marks exchanges of
///   owners that are provably dead (see `recoverInterrupted`).
///
/// All times are stored with microsecond precision. All values reach SQL as bound
/// parameters, never interpolated into statement text.
public protocol SessionStore: Sendable {
    /// The identity of this store instance, recorded as owner of the exchanges it begins.
    var instanceID: String { get }

    /// Creates or upgrades the schema. Idempotent; safe when replicas migrate at once.
    func migrate() async throws

    /// Finds the session for `key` (extending its `lastActivity` to `at`) or starts one.
    func resolveSession(_ key: SessionKey, identity: AgentIdentityInfo, at: Date) async throws -> SessionRecord

    /// Records an exchange as `inProgress` and returns once it is durable. Call before forwarding.
    /// The exchange gets the next `sequence` number of its session.
    func beginExchange(_ start: ExchangeStart) async throws -> ExchangeRecord

    /// Appends one stream frame (watch event, exec/log chunk) to an exchange.
    func appendStreamChunk(_ exchangeID: ExchangeID, at: Date, channel: String, data: [UInt8]) async throws

    /// Finishes an exchange with its response; `result.state` is normally `.complete`
    /// (`.incomplete` when the stream was cut). The session's `lastActivity` moves to the
    /// completion time only for an exchange that lasted a second or more; a shorter one
    /// already moved it when it began.
    func completeExchange(_ exchangeID: ExchangeID, result: ExchangeResult) async throws

    /// Returns once every record this instance made is in the database, where other
    /// instances and processes sharing it read it. The SQLite store records exchanges and
    /// stream chunks through a journal it ingests every few milliseconds (`RecordingJournal`;
    /// its own reads ingest first); elsewhere a record is in the database when its call
    /// returns, and this returns at once.
    func flush() async throws

    /// How far recording is behind, for metrics: on SQLite, its recording journal's records not
    /// yet in the database and the new exchanges held meanwhile (see `RecordingJournal`);
    /// elsewhere a record is in the database when its call returns, and this is all zeros.
    func recorderBacklog() -> RecorderBacklog

    /// Records this instance as alive at `at`. Call every few seconds (see `runHeartbeats`).
    func heartbeat(at: Date) async throws

    /// Marks `inProgress` exchanges of dead instances `incomplete` and returns how many; their
    /// pending approvals become `abandoned` (nobody holds those requests any more).
    ///
    /// An owner is dead when it is not this instance and either its heartbeat is older than
    /// `staleAfter`, or it ran on this host (same hostname and boot) and its process no longer
    /// exists (pid gone, or reused by a process with another start time), or it is unknown.
    /// So a restart on the same host recovers at once, and a replica on another host is only
    /// declared dead after it stopped heartbeating. Exchanges of this instance are never touched.
    @discardableResult
    func recoverInterrupted(at: Date, staleAfter: TimeInterval) async throws -> Int

    /// Sessions matching `filter`, most recent activity first.
    func listSessions(_ filter: SessionFilter) async throws -> [SessionRecord]

    /// One session with all its exchanges (bodies included), or nil.
    func session(id: SessionID) async throws -> SessionDetail?

    /// The exchanges of a session in sequence order.
    func exchanges(sessionID: SessionID) async throws -> [ExchangeRecord]

    /// One exchange, or nil.
    func exchange(id: ExchangeID) async throws -> ExchangeRecord?

    /// Stream frames of an exchange in the order they were appended, after `afterSequence`.
    func streamChunks(exchangeID: ExchangeID, afterSequence: Int64, limit: Int?) async throws -> [StreamChunk]

    /// Deletes sessions whose `lastActivity` is before `cutoff` (of `connection` only, when
    /// given), with their exchanges and chunks.
    func prune(olderThan cutoff: Date, connection: ConnectionRef?) async throws -> PruneResult

    /// Per-connection counters for AgentConnection `status.sessions`; "active" means activity
    /// within the idle gap before `at`.
    func stats(at: Date) async throws -> [ConnectionRef: SessionStats]

    /// Marks this instance's own `inProgress` exchanges incomplete and its pending approvals
    /// `abandoned`, and releases connections.
    func close() async throws

    // MARK: Approvals (held requests)

    /// Stores a new `pending` approval owned by this instance.
    func createApproval(_ approval: ApprovalRecord) async throws

    /// Moves a pending approval to `decision.state`, once: throws
    /// ``SessionStoreError/approvalAlreadyDecided(_:)`` when it is no longer pending (a second
    /// approver, a replayed request, or the timeout won), ``SessionStoreError/approvalNotFound(_:)``
    /// when unknown. Other replicas learn of it through ``approvalDecisions()``.
    func decideApproval(_ id: ApprovalID, _ decision: ApprovalDecision) async throws -> ApprovalRecord

    func approval(id: ApprovalID) async throws -> ApprovalRecord?

    /// Approvals matching `filter`, newest first.
    func listApprovals(_ filter: ApprovalFilter) async throws -> [ApprovalRecord]

    /// Ids of approvals decided by any instance sharing the database, as they are decided
    /// (PostgreSQL LISTEN/NOTIFY). SQLite has one writer process and never yields. Best
    /// effort: a notification sent while the listening connection reconnects is lost, so a
    /// waiter also re-reads its approval now and then.
    func approvalDecisions() -> AsyncStream<ApprovalID>

    // MARK: State shared by gateway replicas

    /// Counts one request against an alert rule's sliding window, for every gateway sharing
    /// this database at once: hits older than `window` are dropped, the window stops firing
    /// when fewer than `threshold` hits remain, and the hit that brings it to `threshold`
    /// fires it — once, until it has fallen below the threshold again. `key` names the rule
    /// and whose requests it counts (connection, session, rule).
    func countAlertHit(_ key: String, at: Date, window: TimeInterval, threshold: Int) async throws -> AlertWindowCount

    /// Keeps the answer to a refused stream upgrade until `until`, for the client's retry of
    /// the same request over another protocol, which may reach another replica.
    func rememberStreamRefusal(_ key: String, answer: StreamRefusal, until: Date) async throws

    /// The refusal remembered for `key` and not yet expired, taken: a second call gets nil.
    func takeStreamRefusal(_ key: String, at: Date) async throws -> StreamRefusal?

    // MARK: Recording-read audit (see RecordingReads.swift)

    /// Records that `read.viewer` read a recording at `at`, durable on return; a read of the
    /// same target from the same address within `coalesceWithin` is counted into its row.
    func recordRead(_ read: RecordingReadEvent, at: Date, coalesceWithin: TimeInterval) async throws

    /// Audit rows matching `filter`, most recently read first.
    func listReads(_ filter: RecordingReadFilter) async throws -> [RecordingRead]
}

/// An alert window after one more hit (see ``SessionStore/countAlertHit(_:at:window:threshold:)``).
public struct AlertWindowCount: Sendable, Equatable {
    /// Hits within the window, this one included.
    public var count: Int
    /// Whether this hit made the window fire.
    public var fires: Bool
    public init(count: Int, fires: Bool) {
        self.count = count
        self.fires = fires
    }
}

/// The answer given to a refused stream upgrade (a Status body).
public struct StreamRefusal: Sendable, Equatable {
    public var statusCode: Int
    public var body: [UInt8]
    public init(statusCode: Int, body: [UInt8]) {
        self.statusCode = statusCode
        self.body = body
    }
}

/// See `SessionStore.recorderBacklog`.
public struct RecorderBacklog: Sendable, Equatable {
    /// Bytes of records made and not yet in the database.
    public var bytes: Int
    /// New exchanges waiting now for the backlog to fall below `journalBacklogBytes`.
    public var heldExchanges: Int
    /// Exchanges that ever waited so, since the store opened.
    public var heldTotal: Int64

    public init(bytes: Int = 0, heldExchanges: Int = 0, heldTotal: Int64 = 0) {
        self.bytes = bytes
        self.heldExchanges = heldExchanges
        self.heldTotal = heldTotal
    }
}

extension SessionStore {
    /// A store that records straight into its database is never behind.
    public func recorderBacklog() -> RecorderBacklog { RecorderBacklog() }

    /// Stats of one connection (zeros when it has no session).
    public func stats(connection: ConnectionRef, at: Date) async throws -> SessionStats {
        try await stats(at: at)[connection] ?? SessionStats()
    }

    public func streamChunks(exchangeID: ExchangeID) async throws -> [StreamChunk] {
        try await streamChunks(exchangeID: exchangeID, afterSequence: 0, limit: nil)
    }

    /// Deletes every connection's sessions whose `lastActivity` is before `cutoff`.
    public func prune(olderThan cutoff: Date) async throws -> PruneResult {
        try await prune(olderThan: cutoff, connection: nil)
    }

    @discardableResult
    public func recoverInterrupted(at: Date = Date()) async throws -> Int {
        try await recoverInterrupted(at: at, staleAfter: SessionStoreOptions.defaultStaleAfter)
    }

    /// Heartbeats and recovers dead replicas' exchanges every `interval` until the task is
    /// cancelled. Each round that reached the database is reported to `onSuccess`; errors go
    /// to `onError` and do not stop the loop.
    public func runHeartbeats(
        interval: Duration = .seconds(10),
        staleAfter: TimeInterval = SessionStoreOptions.defaultStaleAfter,
        onSuccess: @Sendable () -> Void = {},
        onError: @Sendable (any Error) -> Void = { _ in }
    ) async {
        while !Task.isCancelled {
            do {
                try await heartbeat(at: Date())
                try await recoverInterrupted(at: Date(), staleAfter: staleAfter)
                onSuccess()
            } catch {
                onError(error)
            }
            try? await Task.sleep(for: interval)
        }
    }
}

