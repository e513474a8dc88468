import Foundation
import Logging

/// The one implementation of `SessionStore`'s logic, over a `SQLDriver` (SQLite or
/// PostgreSQL). On SQLite, exchanges and stream chunks go through the recording journal
/// (`RecordingJournal`, `SQLSessionStore+Journal.swift`) unless it is turned off, and every
/// read ingests it first. Otherwise every mutation is one short write transaction:
///
/// - `resolveSession`: find by key (or the latest session within the idle gap), else insert.
///   On PostgreSQL a transaction-scoped advisory lock on the key makes two replicas resolving
///   the same key at once agree on one session.
/// - `beginExchange`: `UPDATE sessions ... exchange_count + 1 RETURNING` takes the session's
///   row (write) lock, so sequence numbers are unique and gap-free under any concurrency;
///   a unique index on (session_id, sequence) backs it. The row is committed on return.
/// - Stream chunks take their exchange's row lock the same way for their sequence.
final class SQLSessionStore: SessionStore, @unchecked Sendable {
    // @unchecked: all stored properties are immutable and Sendable except `closed`, which is behind `lock`.
    let driver: any SQLDriver
    let options: SessionStoreOptions
    let logger: Logger
    let schema: String?
    /// SQLite only (unless turned off): where exchanges and stream chunks are recorded first,
    /// then ingested in batches (see `RecordingJournal`).
    private(set) var journal: RecordingJournal?
    private let lock = NSLock()
    private var closed = false
    /// A session's `last_activity_us` is kept to this resolution: an exchange or stream chunk
    /// moves it only when it is further ahead than this. The column is in four indexes, and
    /// rewriting them on every request was a third of what a small exchange wrote.
    static let activityResolutionUs: Int64 = 1_000_000
    /// Exchanges lasting at least this long move their session's lastActivity when they complete.
    static let longExchangeMs = 1000.0
    /// The state recovery looks for, as a literal: SQLite uses the partial index
    /// `exchanges_in_progress` only for a query that names its condition verbatim.
    static let inProgress = "state = 'inProgress'"

    var instanceID: String { options.instanceID }
    var dialect: SQLDialect { driver.dialect }

    init(driver: any SQLDriver, options: SessionStoreOptions, schema: String?, logger: Logger) {
        self.driver = driver
        self.options = options
        self.schema = schema
        self.logger = logger
    }

    /// Records through a journal in `directory` from now on (before the store is shared).
    func useJournal(_ directory: JournalDirectory, synchronousFull: Bool, ingestDelay: Duration, backlogBytes: Int) {
        journal = RecordingJournal(
            directory: directory, instanceID: instanceID, synchronousFull: synchronousFull, ingestDelay: ingestDelay,
            logger: logger, backlogBytes: backlogBytes,
            ingest: { [unowned self] batches, removed in try await self.ingest(batches, removed: removed) })
    }

    func checkOpen() throws {
        let isClosed = lock.withLock { closed }
        if isClosed { throw SessionStoreError.closed }
    }

    func migrate() async throws {
        try checkOpen()
        try await Migrations.apply(driver, schema: schema)
    }

    func resolveSession(_ key: SessionKey, identity: AgentIdentityInfo, at: Date) async throws -> SessionRecord {
        try checkOpen()
        let idleGap = options.idleGap
        let dialect = self.dialect
        let groups = String(decoding: (try? JSONEncoder().encode(identity.groups)) ?? Data("[]".utf8), as: UTF8.self)
        return try await driver.write { tx in
            let keyBinds: [SQLValue] = [.text(key.connection.namespace), .text(key.connection.name), .text(key.subject)]
            if dialect == .postgres {
                let lockKey = [key.connection.namespace, key.connection.name, key.subject, key.tokenKey ?? ""]
                    .joined(separator: "\u{1F}")
                try await tx.query("SELECT pg_advisory_xact_lock(hashtext(?))", [.text(lockKey)])
            }
            let existing: [SQLRow]
            if let tokenKey = key.tokenKey {
                existing = try await tx.query("""
                    SELECT id FROM sessions WHERE connection_namespace = ? AND connection_name = ?
                    AND subject = ? AND token_key = ?
                    """, keyBinds + [.text(tokenKey)])
            } else {
                existing = try await tx.query("""
                    SELECT id FROM sessions WHERE connection_namespace = ? AND connection_name = ?
                    AND subject = ? AND token_key IS NULL AND last_activity_us >= ?
                    ORDER BY last_activity_us DESC LIMIT 1
                    """, keyBinds + [SQLValue(micros: at.addingTimeInterval(-idleGap))])
            }
            let id: String
            if let found = existing.first {
                id = found.text("id")
                try await tx.query("""
                    UPDATE sessions SET last_activity_us = \(dialect.greatest)(last_activity_us, ?),
                    model = COALESCE(model, ?) WHERE id = ?
                    """, [SQLValue(micros: at), SQLValue(identity.model), .text(id)])
            } else {
                id = SortableID.make(at: at)
                let insertTail: [SQLValue] = [
                    .text(groups), SQLValue(identity.model), SQLValue(key.tokenKey), SQLValue(micros: at), SQLValue(micros: at),
                ]
                try await tx.query("""
                    INSERT INTO sessions (id, connection_namespace, connection_name, subject, groups_json,
                    model, token_key, started_at_us, last_activity_us, exchange_count, bytes)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0)
                    """, [.text(id)] + keyBinds + insertTail)
            }
            let rows = try await tx.query("SELECT * FROM sessions WHERE id = ?", [.text(id)])
            guard let row = rows.first else { throw SessionStoreError.sessionNotFound(id) }
            return Self.session(row)
        }
    }

    func beginExchange(_ start: ExchangeStart) async throws -> ExchangeRecord {
        try checkOpen()
        let owner = instanceID
        let storedBytes = Int64(start.requestBody?.count ?? 0)
        if dialect == .postgres { return try await beginExchangeInOneStatement(start, storedBytes: storedBytes) }
        if let journal { return try await beginExchange(start, in: journal) }
        return try await driver.write { tx in
            let updated = try await tx.query("""
                UPDATE sessions SET exchange_count = exchange_count + 1, bytes = bytes + ?
                WHERE id = ? RETURNING exchange_count, last_activity_us
                """, [.int(storedBytes), .text(start.sessionID)])
            guard let row = updated.first, let sequence = row["exchange_count"].int else {
                throw SessionStoreError.sessionNotFound(start.sessionID)
            }
            try await Self.moveActivity(tx, session: start.sessionID, from: row.int("last_activity_us"), to: start.time)
            try await Self.insertFacet(tx, start)
            let record = Self.started(start, id: SortableID.make(at: start.time), sequence: sequence, owner: owner)
            let inserted = try await tx.query(Self.exchangeInsert,
                                              Self.exchangeInsertBinds(start, id: record.id, sequence: sequence, owner: owner))
            guard !inserted.isEmpty else {
                throw SessionStoreError.database(operation: "begin exchange", message: "sequence \(sequence) of session \(start.sessionID) is taken")
            }
            return record
        }
    }

    /// Records that a session used this verb, resource and object (one row per distinct
    /// combination: a repeated request finds its row and writes nothing).
    static func insertFacet(_ tx: any SQLTransaction, _ start: ExchangeStart) async throws {
        try await tx.query("""
            INSERT INTO session_facets (session_id, verb, resource, subresource, namespace, name)
            VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
            """, [.text(start.sessionID), .text(start.verb), .text(start.resource), .text(start.subresource),
                  .text(start.namespace), .text(start.name)])
    }

    /// `beginExchange` on PostgreSQL: the same writes as one statement (data-modifying CTEs),
    /// atomic without BEGIN and COMMIT, so one round trip instead of six. The session's update
    /// returns the sequence; with no such session nothing is inserted and no row comes back.
    private func beginExchangeInOneStatement(_ start: ExchangeStart, storedBytes: Int64) async throws -> ExchangeRecord {
        let id = SortableID.make(at: start.time)
        let micros = SQLTime.micros(start.time)
        let rows = try await driver.writeStatement("""
            WITH s AS (
                UPDATE sessions SET exchange_count = exchange_count + 1, bytes = bytes + ?,
                \(Self.activityAssignment)
                WHERE id = ? RETURNING id, exchange_count
            ), f AS (
                INSERT INTO session_facets (session_id, verb, resource, subresource, namespace, name)
                SELECT s.id, ?::text, ?::text, ?::text, ?::text, ?::text FROM s ON CONFLICT DO NOTHING
            )
            INSERT INTO exchanges (id, session_id, sequence, started_at_us, verb, api_group, resource,
            subresource, namespace, name, http_method, path, query, request_body, request_bytes,
            truncated, approval_id, kubectl_command, kubectl_session, user_agent, state, owner,
            stored_bytes)
            SELECT ?::text, s.id, s.exchange_count, ?::bigint, ?::text, ?::text, ?::text, ?::text, ?::text, ?::text,
            ?::text, ?::text, ?::text, ?::bytea, ?::bigint, ?::bigint, ?::text, ?::text, ?::text, ?::text, ?::text,
            ?::text, ?::bigint FROM s
            RETURNING sequence
            """, [
                .int(storedBytes)] + Self.activityBinds(micros) + [.text(start.sessionID),
                .text(start.verb), .text(start.resource), .text(start.subresource), .text(start.namespace), .text(start.name),
                .text(id), .int(micros), .text(start.verb), .text(start.apiGroup), .text(start.resource),
                .text(start.subresource), .text(start.namespace), .text(start.name), .text(start.httpMethod),
                .text(start.path), .text(start.query), SQLValue(start.requestBody), .int(start.requestBytes),
                .int(start.truncated ? 1 : 0), SQLValue(start.approvalID), SQLValue(start.kubectlCommand),
                SQLValue(start.kubectlSession), SQLValue(start.userAgent), .text(ExchangeState.inProgress.rawValue),
                .text(instanceID), .int(storedBytes),
            ])
        guard let sequence = rows.first?["sequence"].int else { throw SessionStoreError.sessionNotFound(start.sessionID) }
        return Self.started(start, id: id, sequence: sequence, owner: instanceID)
    }

    /// The record of an exchange just begun, as stored (its time to the microsecond).
    static func started(_ start: ExchangeStart, id: ExchangeID, sequence: Int64, owner: String) -> ExchangeRecord {
        ExchangeRecord(
            id: id, sessionID: start.sessionID, sequence: sequence,
            time: SQLTime.date(SQLTime.micros(start.time)), request: start.request,
            statusCode: nil, latencyMs: nil, completedAt: nil,
            responseBody: nil, requestBytes: start.requestBytes, responseBytes: 0,
            truncated: start.truncated, approvalID: start.approvalID,
            kubectlCommand: start.kubectlCommand, kubectlSession: start.kubectlSession,
            userAgent: start.userAgent, state: .inProgress, owner: owner, streamChunkCount: 0)
    }

    /// The PostgreSQL form of `moveActivity`, inside a statement's `UPDATE sessions SET`; its
    /// binds are `activityBinds`.
    private static let activityAssignment = "last_activity_us = CASE WHEN ? - last_activity_us > ? THEN ? ELSE last_activity_us END"
    private static func activityBinds(_ micros: Int64) -> [SQLValue] { [.int(micros), .int(activityResolutionUs), .int(micros)] }

    /// Moves a session's last activity to `time` when that is more than `activityResolutionUs`
    /// ahead of `current` (its stored value).
    static func moveActivity(_ tx: any SQLTransaction, session: SessionID, from current: Int64, to time: Date) async throws {
        let micros = SQLTime.micros(time)
        guard micros - current > activityResolutionUs else { return }
        try await tx.query("UPDATE sessions SET last_activity_us = ? WHERE id = ? AND last_activity_us < ?",
                           [.int(micros), .text(session), .int(micros)])
    }

    func appendStreamChunk(_ exchangeID: ExchangeID, at: Date, channel: String, data: [UInt8]) async throws {
        try checkOpen()
        if dialect == .postgres { return try await appendStreamChunkInOneStatement(exchangeID, at: at, channel: channel, data: data) }
        if let journal { return try await appendStreamChunk(exchangeID, at: at, channel: channel, data: data, in: journal) }
        try await driver.write { tx in
            let size = Int64(data.count)
            let updated = try await tx.query("""
                UPDATE exchanges SET chunk_count = chunk_count + 1, stored_bytes = stored_bytes + ?
                WHERE id = ? RETURNING chunk_count, session_id
                """, [.int(size), .text(exchangeID)])
            guard let row = updated.first, let sequence = row["chunk_count"].int else {
                throw SessionStoreError.exchangeNotFound(exchangeID)
            }
            try await tx.query(
                "INSERT INTO stream_chunks (exchange_id, sequence, at_us, channel, data) VALUES (?, ?, ?, ?, ?)",
                [.text(exchangeID), .int(sequence), SQLValue(micros: at), .text(channel), .blob(data)])
            try await Self.addChunkToSession(tx, session: row.text("session_id"), size: size, at: at)
        }
    }

    /// A stored chunk's share of its session: its bytes, and its time as activity.
    static func addChunkToSession(_ tx: any SQLTransaction, session: SessionID, size: Int64, at: Date) async throws {
        let current = try await tx.query("UPDATE sessions SET bytes = bytes + ? WHERE id = ? RETURNING last_activity_us",
                                         [.int(size), .text(session)])
        if let last = current.first?["last_activity_us"].int {
            try await moveActivity(tx, session: session, from: last, to: at)
        }
    }

    /// `appendStreamChunk` on PostgreSQL (every watch event, every exec frame): the same writes
    /// as one statement, one round trip instead of five or six. With no such exchange nothing is
    /// written and no row comes back.
    private func appendStreamChunkInOneStatement(_ exchangeID: ExchangeID, at: Date, channel: String, data: [UInt8]) async throws {
        let size = Int64(data.count)
        let micros = SQLTime.micros(at)
        let rows = try await driver.writeStatement("""
            WITH e AS (
                UPDATE exchanges SET chunk_count = chunk_count + 1, stored_bytes = stored_bytes + ?
                WHERE id = ? RETURNING id, chunk_count, session_id
            ), c AS (
                INSERT INTO stream_chunks (exchange_id, sequence, at_us, channel, data)
                SELECT e.id, e.chunk_count, ?::bigint, ?::text, ?::bytea FROM e
            ), s AS (
                UPDATE sessions SET bytes = bytes + ?, \(Self.activityAssignment)
                FROM e WHERE sessions.id = e.session_id
            )
            SELECT chunk_count FROM e
            """, [
                .int(size), .text(exchangeID), .int(micros), .text(channel), .blob(data), .int(size),
            ] + Self.activityBinds(micros))
        guard !rows.isEmpty else { throw SessionStoreError.exchangeNotFound(exchangeID) }
    }

    func completeExchange(_ exchangeID: ExchangeID, result: ExchangeResult) async throws {
        try checkOpen()
        let dialect = self.dialect
        let size = Int64(result.responseBody?.count ?? 0)
        if dialect == .postgres { return try await completeExchangeInOneStatement(exchangeID, result: result, size: size) }
        if let journal { return try await completeExchange(exchangeID, result: result, in: journal) }
        try await driver.write { tx in
            guard try await Self.applyCompletion(tx, exchangeID, result) else { throw SessionStoreError.exchangeNotFound(exchangeID) }
        }
    }

    /// The SQLite writes of a completion; false when there is no such exchange.
    static func applyCompletion(_ tx: any SQLTransaction, _ exchangeID: ExchangeID, _ result: ExchangeResult) async throws -> Bool {
        let size = Int64(result.responseBody?.count ?? 0)
        let updated = try await tx.query(completionUpdate, completionBinds(exchangeID, result, size: size))
        guard let row = updated.first else { return false }
        // last_activity_us is in four indexes; a short exchange began (and moved it) within
        // the second, so only a long one (a watch, a followed log, a held request) moves it again.
        if result.latencyMs >= longExchangeMs {
            try await tx.query("""
                UPDATE sessions SET bytes = bytes + ?, last_activity_us = MAX(last_activity_us, ?)
                WHERE id = ?
                """, [.int(size), SQLValue(micros: result.completedAt), .text(row.text("session_id"))])
        } else if size > 0 {
            try await tx.query("UPDATE sessions SET bytes = bytes + ? WHERE id = ?", [.int(size), .text(row.text("session_id"))])
        }
        return true
    }

    /// The exchange's own update when it completes, on both backends (PostgreSQL runs it as a
    /// CTE); its binds are `completionBinds`.
    private static let completionUpdate = """
        UPDATE exchanges SET status_code = ?, latency_ms = ?, completed_at_us = ?, response_body = ?,
        response_bytes = ?, truncated = CASE WHEN ? = 1 THEN 1 ELSE truncated END,
        approval_id = COALESCE(?, approval_id), state = ?, stored_bytes = stored_bytes + ?
        WHERE id = ? RETURNING session_id
        """

    private static func completionBinds(_ exchangeID: ExchangeID, _ result: ExchangeResult, size: Int64) -> [SQLValue] {
        [.int(Int64(result.statusCode)), .double(result.latencyMs), SQLValue(micros: result.completedAt),
         SQLValue(result.responseBody), .int(result.responseBytes), .int(result.truncated ? 1 : 0),
         SQLValue(result.approvalID), .text(result.state.rawValue), .int(size), .text(exchangeID)]
    }

    /// `completeExchange` on PostgreSQL: the same writes as one statement, one round trip
    /// instead of four. With no such exchange nothing is updated and no row comes back.
    private func completeExchangeInOneStatement(_ exchangeID: ExchangeID, result: ExchangeResult, size: Int64) async throws {
        let long = result.latencyMs >= Self.longExchangeMs
        let rows = try await driver.writeStatement("""
            WITH e AS (
                \(Self.completionUpdate)
            ), u AS (
                UPDATE sessions SET bytes = bytes + ?,
                last_activity_us = CASE WHEN ? = 1 THEN GREATEST(last_activity_us, ?) ELSE last_activity_us END
                FROM e WHERE sessions.id = e.session_id AND (? > 0 OR ? = 1)
            )
            SELECT session_id FROM e
            """, Self.completionBinds(exchangeID, result, size: size) + [
                .int(size), .int(long ? 1 : 0), SQLValue(micros: result.completedAt), .int(size), .int(long ? 1 : 0),
            ])
        guard !rows.isEmpty else { throw SessionStoreError.exchangeNotFound(exchangeID) }
    }

    func close() async throws {
        guard (lock.withLock { () -> Bool in
            defer { closed = true }
            return !closed
        }) else { return }
        do {
            try await journal?.close()
        } catch {
            logger.error("could not ingest the recording journal on close; the next start ingests it",
                         metadata: ["error": "\(error)"])
        }
        let owner = instanceID
        let dialect = self.dialect
        do {
            try await driver.write { tx in
                try await tx.query("""
                    UPDATE exchanges SET state = ?, completed_at_us = COALESCE(completed_at_us, ?)
                    WHERE \(Self.inProgress) AND owner = ?
                    """, [.text(ExchangeState.incomplete.rawValue), SQLValue(micros: Date()), .text(owner)])
                try await Self.abandonApprovals(tx, owner: owner, at: Date(), reason: "the gateway holding the request shut down",
                                                notify: dialect == .postgres)
                try await tx.query("DELETE FROM store_instances WHERE id = ?", [.text(owner)])
            }
        } catch {
            logger.warning("could not mark in-flight exchanges incomplete on close", metadata: ["error": "\(error)"])
        }
        try await driver.close()
    }
}
