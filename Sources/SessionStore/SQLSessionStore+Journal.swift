import Foundation

/// Recording through the journal (SQLite; see `RecordingJournal`): the three writes of a
/// request's path append to the journal, with the sequences the store assigns from the
/// journal's counters, and `ingest` applies them to the database in batches.
///
/// The counters start from the database: a session (or an exchange) the journal has no entry
/// for is looked up first, and one that does not exist fails as it would without a journal
/// (`sessionNotFound`, `exchangeNotFound`).
extension SQLSessionStore {
    func beginExchange(_ start: ExchangeStart, in journal: RecordingJournal) async throws -> ExchangeRecord {
        // A new exchange waits while SQLite is far behind the journal (a sustained overload).
        await journal.waitForRoom()
        let id = SortableID.make(at: start.time)
        let owner = instanceID
        while true {
            var sequence: Int64 = 0
            let written = try journal.append(prepare: { counters in
                guard let count = counters.sessions[start.sessionID] else { return nil }
                sequence = count + 1
                return .begin(id: id, sequence: sequence, owner: owner, start: start)
            }, commit: { counters in
                counters.sessions[start.sessionID] = sequence
                counters.openExchanges[id] = 0
            })
            if written { return Self.started(start, id: id, sequence: sequence, owner: owner) }
            // Unknown to the journal: everything it holds for this session is in the database
            // (entries are only dropped when nothing is pending), so the stored count is current.
            let rows = try await driver.read("SELECT exchange_count FROM sessions WHERE id = ?", [.text(start.sessionID)])
            guard let count = rows.first?["exchange_count"].int else { throw SessionStoreError.sessionNotFound(start.sessionID) }
            journal.updateCounters { if $0.sessions[start.sessionID] == nil { $0.sessions[start.sessionID] = count } }
        }
    }

    func appendStreamChunk(_ exchangeID: ExchangeID, at: Date, channel: String, data: [UInt8],
                           in journal: RecordingJournal) async throws {
        let micros = SQLTime.micros(at)
        while true {
            var sequence: Int64 = 0
            let written = try journal.append(prepare: { counters in
                guard let count = counters.openExchanges[exchangeID] else { return nil }
                sequence = count + 1
                return .chunk(exchangeID: exchangeID, sequence: sequence, atMicros: micros, channel: channel, data: data)
            }, commit: { counters in
                counters.openExchanges[exchangeID] = sequence
            })
            if written { return }
            // Not begun here (or already completed): its count is in the database once what the
            // journal holds is.
            try await journal.flush()
            let rows = try await driver.read("SELECT chunk_count FROM exchanges WHERE id = ?", [.text(exchangeID)])
            guard let count = rows.first?["chunk_count"].int else { throw SessionStoreError.exchangeNotFound(exchangeID) }
            journal.updateCounters { if $0.openExchanges[exchangeID] == nil { $0.openExchanges[exchangeID] = count } }
        }
    }

    func completeExchange(_ exchangeID: ExchangeID, result: ExchangeResult, in journal: RecordingJournal) async throws {
        let event = JournalEvent.complete(exchangeID: exchangeID, result: result)
        let written = try journal.append(prepare: { counters in counters.openExchanges[exchangeID] == nil ? nil : event },
                                         commit: { counters in counters.openExchanges[exchangeID] = nil })
        if written { return }
        // Not in flight here (begun elsewhere, or completed twice): it must exist.
        try await journal.flush()
        let rows = try await driver.read("SELECT id FROM exchanges WHERE id = ?", [.text(exchangeID)])
        guard !rows.isEmpty else { throw SessionStoreError.exchangeNotFound(exchangeID) }
        _ = try journal.append(prepare: { _ in event }, commit: { _ in })
    }

    func recorderBacklog() -> RecorderBacklog {
        journal?.backlog() ?? RecorderBacklog()
    }

    /// Waits until this store's journal is in the database (reads call it first).
    func flushJournal() async throws {
        try await journal?.flush()
    }

    func flush() async throws {
        try checkOpen()
        try await flushJournal()
    }

    /// Ingests journal files of gone instances (at open, before recovery).
    func ingestGoneJournals(_ directory: JournalDirectory) async throws {
        try await RecordingJournal.ingestGoneInstances(
            directory, except: JournalDirectory.stem(instanceID), logger: logger,
            ingest: { [self] batches, removed in try await ingest(batches, removed: removed) })
    }

    /// Applies journal files in one transaction, each unless it is marked ingested already,
    /// marking each; and forgets the marks of `removed` files.
    func ingest(_ batches: [RecordingJournal.Batch], removed: [String]) async throws {
        let logger = self.logger
        // A background round, not a request: its transaction queues for the writer.
        try await driver.maintenance { tx in
            for file in removed {
                try await tx.query("DELETE FROM journal_files_ingested WHERE file = ?", [.text(file)])
            }
            var events: [JournalEvent] = []
            for batch in batches {
                let marked = try await tx.query("SELECT file FROM journal_files_ingested WHERE file = ?", [.text(batch.file)])
                guard marked.isEmpty else { continue }
                events += batch.events
                try await tx.query("INSERT INTO journal_files_ingested (file, ingested_at_us) VALUES (?, ?)",
                                   [.text(batch.file), SQLValue(micros: Date())])
            }
            for lost in try await Self.applyCoalesced(events, tx) {
                logger.error("a journal record could not be ingested", metadata: ["reason": "\(lost)"])
            }
        }
    }

    /// Applies journal records with fewer writes than one by one, to the same end: an exchange
    /// begun in `events` is inserted once, with its first completion and its chunk counts
    /// merged in (no row update, no passage through the in-progress index); each session is
    /// updated once (count, bytes, activity); each facet is inserted once. Records of other
    /// exchanges, later completions and exchanges whose insert conflicts go through `apply`
    /// one by one. Returns why records were dropped (see `apply`).
    static func applyCoalesced(_ events: [JournalEvent], _ tx: any SQLTransaction) async throws -> [String] {
        struct Begun {
            var id: ExchangeID
            var sequence: Int64
            var owner: String
            var start: ExchangeStart
            var result: ExchangeResult?
            var chunkCount: Int64 = 0
            var chunkBytes: Int64 = 0
            var lastChunkMicros: Int64 = .min
        }
        var begun: [Begun] = []
        var index: [ExchangeID: Int] = [:]
        // Event positions of the begun exchanges' chunks, and the records left for `apply`.
        var chunkEvents: [Int] = []
        var rest: [Int] = []
        for (position, event) in events.enumerated() {
            switch event {
            case let .begin(id, sequence, owner, start):
                if index[id] == nil {
                    index[id] = begun.count
                    begun.append(Begun(id: id, sequence: sequence, owner: owner, start: start))
                } else {
                    rest.append(position)
                }
            case let .chunk(id, sequence, at, _, data):
                guard let i = index[id] else { rest.append(position); continue }
                begun[i].chunkCount = max(begun[i].chunkCount, sequence)
                begun[i].chunkBytes += Int64(data.count)
                begun[i].lastChunkMicros = max(begun[i].lastChunkMicros, at)
                chunkEvents.append(position)
            case let .complete(id, result):
                guard let i = index[id], begun[i].result == nil else { rest.append(position); continue }
                begun[i].result = result
            }
        }
        var lost: [String] = []
        var inserted = Set<ExchangeID>()
        var unknownSessions = Set<SessionID>()
        var knownSessions = Set<SessionID>()
        for exchange in begun {
            let session = exchange.start.sessionID
            if !knownSessions.contains(session), !unknownSessions.contains(session) {
                let found = try await tx.query("SELECT id FROM sessions WHERE id = ?", [.text(session)])
                if found.isEmpty { unknownSessions.insert(session) } else { knownSessions.insert(session) }
            }
            if unknownSessions.contains(session) {
                lost.append("exchange \(exchange.id) belongs to session \(session), which no longer exists")
                continue
            }
            let rows = try await tx.query(exchangeInsert, exchangeInsertBinds(
                exchange.start, id: exchange.id, sequence: exchange.sequence, owner: exchange.owner,
                result: exchange.result, chunkCount: exchange.chunkCount, chunkBytes: exchange.chunkBytes))
            if !rows.isEmpty { inserted.insert(exchange.id) }
        }
        var sessions: [SessionID: (sequence: Int64, bytes: Int64, activity: Int64, forced: Int64)] = [:]
        var facets = Set<[String]>()
        for exchange in begun where inserted.contains(exchange.id) {
            let start = exchange.start
            var entry = sessions[start.sessionID] ?? (0, 0, .min, .min)
            entry.sequence = max(entry.sequence, exchange.sequence)
            entry.bytes += storedBytes(start, chunkBytes: exchange.chunkBytes, result: exchange.result)
            entry.activity = max(entry.activity, SQLTime.micros(start.time), exchange.lastChunkMicros)
            if let result = exchange.result, result.latencyMs >= longExchangeMs {
                entry.forced = max(entry.forced, SQLTime.micros(result.completedAt))
            }
            sessions[start.sessionID] = entry
            let facet = [start.sessionID, start.verb, start.resource, start.subresource, start.namespace, start.name]
            if facets.insert(facet).inserted { try await insertFacet(tx, start) }
        }
        for (session, entry) in sessions {
            try await tx.query("""
                UPDATE sessions SET exchange_count = MAX(exchange_count, ?), bytes = bytes + ?,
                last_activity_us = MAX(CASE WHEN ? - last_activity_us > ? THEN ? ELSE last_activity_us END, ?)
                WHERE id = ?
                """, [.int(entry.sequence), .int(entry.bytes), .int(entry.activity), .int(activityResolutionUs),
                      .int(entry.activity), .int(entry.forced), .text(session)])
        }
        for position in chunkEvents {
            guard case let .chunk(id, sequence, at, channel, data) = events[position], inserted.contains(id) else { continue }
            try await tx.query(
                "INSERT INTO stream_chunks (exchange_id, sequence, at_us, channel, data) VALUES (?, ?, ?, ?, ?)",
                [.text(id), .int(sequence), .int(at), .text(channel), .blob(data)])
        }
        // Exchanges whose insert conflicted (their sequence was taken) go one record at a time.
        var oneByOne = Set(rest)
        for (position, event) in events.enumerated() {
            guard let i = index[event.exchangeID], !inserted.contains(event.exchangeID),
                  !unknownSessions.contains(begun[i].start.sessionID) else { continue }
            oneByOne.insert(position)
        }
        for position in oneByOne.sorted() {
            if let reason = try await apply(events[position], tx) { lost.append(reason) }
        }
        return lost
    }

    /// A begun exchange's row (SQLite), with what the same journal batch recorded of it when
    /// ingested; its binds are `exchangeInsertBinds`. Returns the id when inserted and nothing
    /// when the id or (session, sequence) was taken.
    static let exchangeInsert = """
        INSERT INTO exchanges (id, session_id, sequence, started_at_us, verb, api_group, resource,
        subresource, namespace, name, http_method, path, query, request_body, request_bytes,
        truncated, approval_id, kubectl_command, kubectl_session, user_agent, state, owner,
        stored_bytes, status_code, latency_ms, completed_at_us, response_body, response_bytes, chunk_count)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT DO NOTHING RETURNING id
        """

    /// Bytes an exchange stores: its request body, chunks and response body (its row's
    /// `stored_bytes`, and what it adds to its session's `bytes`).
    static func storedBytes(_ start: ExchangeStart, chunkBytes: Int64, result: ExchangeResult?) -> Int64 {
        Int64(start.requestBody?.count ?? 0) + chunkBytes + Int64(result?.responseBody?.count ?? 0)
    }

    static func exchangeInsertBinds(_ start: ExchangeStart, id: ExchangeID, sequence: Int64, owner: String,
                                    result: ExchangeResult? = nil, chunkCount: Int64 = 0, chunkBytes: Int64 = 0) -> [SQLValue] {
        let stored = storedBytes(start, chunkBytes: chunkBytes, result: result)
        return [
            .text(id), .text(start.sessionID), .int(sequence), SQLValue(micros: start.time),
            .text(start.verb), .text(start.apiGroup), .text(start.resource), .text(start.subresource),
            .text(start.namespace), .text(start.name), .text(start.httpMethod), .text(start.path),
            .text(start.query), SQLValue(start.requestBody), .int(start.requestBytes),
            .int(start.truncated || result?.truncated == true ? 1 : 0), SQLValue(result?.approvalID ?? start.approvalID),
            SQLValue(start.kubectlCommand), SQLValue(start.kubectlSession), SQLValue(start.userAgent),
            .text((result?.state ?? .inProgress).rawValue), .text(owner), .int(stored),
            result.map { .int(Int64($0.statusCode)) } ?? .null, result.map { .double($0.latencyMs) } ?? .null,
            result.map { SQLValue(micros: $0.completedAt) } ?? .null, SQLValue(result?.responseBody),
            .int(result?.responseBytes ?? 0), .int(chunkCount),
        ]
    }

    /// Applies one journal record; returns why it was dropped when what it belongs to is gone
    /// (a session pruned while its exchange was in the journal).
    static func apply(_ event: JournalEvent, _ tx: any SQLTransaction) async throws -> String? {
        switch event {
        case let .begin(id, sequence, owner, start):
            let session = try await tx.query("SELECT last_activity_us FROM sessions WHERE id = ?", [.text(start.sessionID)])
            guard let last = session.first?["last_activity_us"].int else {
                return "exchange \(id) belongs to session \(start.sessionID), which no longer exists"
            }
            var stored = sequence
            var inserted = try await tx.query(exchangeInsert, exchangeInsertBinds(start, id: id, sequence: stored, owner: owner))
            if inserted.isEmpty {
                let existing = try await tx.query("SELECT id FROM exchanges WHERE id = ?", [.text(id)])
                guard existing.isEmpty else { return nil }   // ingested before
                // Its sequence was taken (by a writer outside this journal): the next free one.
                let next = try await tx.query("SELECT MAX(sequence) AS s FROM exchanges WHERE session_id = ?", [.text(start.sessionID)])
                stored = (next.first?["s"].int ?? 0) + 1
                inserted = try await tx.query(exchangeInsert, exchangeInsertBinds(start, id: id, sequence: stored, owner: owner))
                guard !inserted.isEmpty else { return "exchange \(id): sequence \(stored) is taken too" }
            }
            try await tx.query("""
                UPDATE sessions SET exchange_count = MAX(exchange_count, ?), bytes = bytes + ? WHERE id = ?
                """, [.int(stored), .int(Int64(start.requestBody?.count ?? 0)), .text(start.sessionID)])
            try await moveActivity(tx, session: start.sessionID, from: last, to: start.time)
            try await insertFacet(tx, start)
            return nil
        case let .chunk(exchangeID, sequence, atMicros, channel, data):
            let size = Int64(data.count)
            let inserted = try await tx.query("""
                INSERT INTO stream_chunks (exchange_id, sequence, at_us, channel, data)
                SELECT id, ?, ?, ?, ? FROM exchanges WHERE id = ? ON CONFLICT DO NOTHING RETURNING exchange_id
                """, [.int(sequence), .int(atMicros), .text(channel), .blob(data), .text(exchangeID)])
            guard !inserted.isEmpty else {
                let existing = try await tx.query("SELECT id FROM exchanges WHERE id = ?", [.text(exchangeID)])
                return existing.isEmpty ? "a stream chunk of exchange \(exchangeID), which no longer exists" : nil
            }
            let updated = try await tx.query("""
                UPDATE exchanges SET chunk_count = MAX(chunk_count, ?), stored_bytes = stored_bytes + ?
                WHERE id = ? RETURNING session_id
                """, [.int(sequence), .int(size), .text(exchangeID)])
            if let session = updated.first?["session_id"].text {
                try await addChunkToSession(tx, session: session, size: size, at: SQLTime.date(atMicros))
            }
            return nil
        case let .complete(exchangeID, result):
            guard try await applyCompletion(tx, exchangeID, result) else {
                return "the completion of exchange \(exchangeID), which no longer exists"
            }
            return nil
        }
    }
}
