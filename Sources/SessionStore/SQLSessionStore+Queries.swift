import Foundation

/// Reads (lists, details, replay, stats) and retention pruning.
extension SQLSessionStore {
    func listSessions(_ filter: SessionFilter) async throws -> [SessionRecord] {
        try checkOpen()
        try await flushJournal()
        var sql = "SELECT * FROM sessions s WHERE 1 = 1"
        var binds: [SQLValue] = []
        func add(_ clause: String, _ values: SQLValue...) {
            sql += " AND " + clause
            binds += values
        }
        if let c = filter.connection { add("s.connection_namespace = ? AND s.connection_name = ?", .text(c.namespace), .text(c.name)) }
        if let v = filter.subject { add("s.subject = ?", .text(v)) }
        if let v = filter.model { add("s.model = ?", .text(v)) }
        if let v = filter.since { add("s.last_activity_us >= ?", SQLValue(micros: v)) }
        if let v = filter.until { add("s.started_at_us <= ?", SQLValue(micros: v)) }
        // Exchange criteria must hold for one and the same exchange: a facet row is the
        // combination one or more exchanges of the session had.
        var exchangeClauses: [String] = []
        if let v = filter.verb { exchangeClauses.append("e.verb = ?"); binds.append(.text(v)) }
        if let v = filter.resource {
            // "pods/exec" names a subresource, as in RBAC rules.
            let parts = v.split(separator: "/", maxSplits: 1).map(String.init)
            exchangeClauses.append("e.resource = ?")
            binds.append(.text(parts.first ?? v))
            if parts.count == 2 { exchangeClauses.append("e.subresource = ?"); binds.append(.text(parts[1])) }
        }
        if let v = filter.namespace { exchangeClauses.append("e.namespace = ?"); binds.append(.text(v)) }
        if let v = filter.name { exchangeClauses.append("e.name = ?"); binds.append(.text(v)) }
        if !exchangeClauses.isEmpty {
            sql += " AND EXISTS (SELECT 1 FROM session_facets e WHERE e.session_id = s.id AND "
                + exchangeClauses.joined(separator: " AND ") + ")"
        }
        sql += " ORDER BY s.last_activity_us DESC, s.id DESC LIMIT ?"
        binds.append(.int(Int64(filter.limit > 0 ? min(filter.limit, 10_000) : 100)))
        return try await driver.read(sql, binds).map(Self.session)
    }

    func session(id: SessionID) async throws -> SessionDetail? {
        try checkOpen()
        try await flushJournal()
        guard let row = try await driver.read("SELECT * FROM sessions WHERE id = ?", [.text(id)]).first else {
            return nil
        }
        return SessionDetail(session: Self.session(row), exchanges: try await exchanges(sessionID: id))
    }

    func exchanges(sessionID: SessionID) async throws -> [ExchangeRecord] {
        try checkOpen()
        try await flushJournal()
        return try await driver.read(
            "SELECT * FROM exchanges WHERE session_id = ? ORDER BY sequence", [.text(sessionID)]
        ).map(Self.exchange)
    }

    func exchange(id: ExchangeID) async throws -> ExchangeRecord? {
        try checkOpen()
        try await flushJournal()
        return try await driver.read("SELECT * FROM exchanges WHERE id = ?", [.text(id)]).first.map(Self.exchange)
    }

    func streamChunks(exchangeID: ExchangeID, afterSequence: Int64, limit: Int?) async throws -> [StreamChunk] {
        try checkOpen()
        try await flushJournal()
        var sql = "SELECT * FROM stream_chunks WHERE exchange_id = ? AND sequence > ? ORDER BY sequence"
        var binds: [SQLValue] = [.text(exchangeID), .int(afterSequence)]
        if let limit {
            sql += " LIMIT ?"
            binds.append(.int(Int64(max(0, limit))))
        }
        return try await driver.read(sql, binds).map { row in
            StreamChunk(exchangeID: row.text("exchange_id"), sequence: row.int("sequence"), time: row.date("at_us"),
                        channel: row.text("channel"), data: row["data"].blob ?? [])
        }
    }

    func prune(olderThan cutoff: Date, connection: ConnectionRef?) async throws -> PruneResult {
        try checkOpen()
        try await flushJournal()
        let which = "last_activity_us < ?" + (connection == nil ? "" : " AND connection_namespace = ? AND connection_name = ?")
        let binds: [SQLValue] = [SQLValue(micros: cutoff)]
            + (connection.map { [.text($0.namespace), .text($0.name)] } ?? [])
        let old = "SELECT id FROM sessions WHERE \(which)"
        let journal = self.journal
        // Alert windows idle for two days (far longer than any rule's window) go too.
        try await pruneAlertWindows(before: Date().addingTimeInterval(-2 * 86_400))
        return try await driver.maintenance { tx in
            var result = PruneResult()
            if let journal {
                // The journal must not record more exchanges into these sessions.
                let gone = try await tx.query(old, binds).map { $0.text("id") }
                journal.updateCounters { counters in for id in gone { counters.sessions[id] = nil } }
            }
            let s = try await tx.query(
                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS b FROM sessions WHERE \(which)", binds)
            result.sessions = s.first?.int("n") ?? 0
            result.bytes = s.first?.int("b") ?? 0
            let e = try await tx.query("""
                SELECT COUNT(*) AS n, CAST(COALESCE(SUM(chunk_count), 0) AS BIGINT) AS k
                FROM exchanges WHERE session_id IN (\(old))
                """, binds)
            result.exchanges = e.first?.int("n") ?? 0
            result.streamChunks = e.first?.int("k") ?? 0
            try await tx.query(
                "DELETE FROM stream_chunks WHERE exchange_id IN (SELECT id FROM exchanges WHERE session_id IN (\(old)))", binds)
            try await tx.query("DELETE FROM exchanges WHERE session_id IN (\(old))", binds)
            try await tx.query("DELETE FROM session_facets WHERE session_id IN (\(old))", binds)
            try await tx.query("DELETE FROM sessions WHERE \(which)", binds)
            return result
        }
    }

    func stats(at: Date) async throws -> [ConnectionRef: SessionStats] {
        try checkOpen()
        try await flushJournal()
        var stats: [ConnectionRef: SessionStats] = [:]
        let rows = try await driver.read("""
            SELECT connection_namespace AS ns, connection_name AS nm, COUNT(*) AS total,
            CAST(SUM(CASE WHEN last_activity_us >= ? THEN 1 ELSE 0 END) AS BIGINT) AS active,
            MAX(last_activity_us) AS last, CAST(SUM(bytes) AS BIGINT) AS b
            FROM sessions GROUP BY connection_namespace, connection_name
            """, [SQLValue(micros: at.addingTimeInterval(-options.idleGap))])
        for row in rows {
            var s = SessionStats()
            s.total = row.int("total")
            s.active = row.int("active")
            s.lastActivity = row.optionalDate("last")
            s.bytes = row.int("b")
            stats[ConnectionRef(namespace: row.text("ns"), name: row.text("nm"))] = s
        }
        let latest = try await driver.read("""
            SELECT s.connection_namespace AS ns, s.connection_name AS nm, s.id AS id FROM sessions s
            WHERE s.last_activity_us = (SELECT MAX(t.last_activity_us) FROM sessions t
              WHERE t.connection_namespace = s.connection_namespace AND t.connection_name = s.connection_name)
            ORDER BY s.id
            """, [])
        for row in latest {
            // Ordered by id, so on a tie the newest session wins.
            stats[ConnectionRef(namespace: row.text("ns"), name: row.text("nm"))]?.lastSessionID = row.text("id")
        }
        return stats
    }

    static func session(_ row: SQLRow) -> SessionRecord {
        let groups = (try? JSONDecoder().decode([String].self, from: Data(row.text("groups_json").utf8))) ?? []
        return SessionRecord(
            id: row.text("id"),
            connection: ConnectionRef(namespace: row.text("connection_namespace"), name: row.text("connection_name")),
            subject: row.text("subject"), groups: groups, model: row["model"].text, tokenKey: row["token_key"].text,
            startedAt: row.date("started_at_us"), lastActivity: row.date("last_activity_us"),
            exchangeCount: row.int("exchange_count"), bytes: row.int("bytes"))
    }

    /// The request columns an exchange row and an approval row share (same names in both tables).
    static func requestSummary(_ row: SQLRow) -> RequestSummary {
        RequestSummary(verb: row.text("verb"), apiGroup: row.text("api_group"), resource: row.text("resource"),
                       subresource: row.text("subresource"), namespace: row.text("namespace"), name: row.text("name"),
                       httpMethod: row.text("http_method"), path: row.text("path"), query: row.text("query"),
                       body: row["request_body"].blob)
    }

    static func exchange(_ row: SQLRow) -> ExchangeRecord {
        ExchangeRecord(
            id: row.text("id"), sessionID: row.text("session_id"), sequence: row.int("sequence"),
            time: row.date("started_at_us"), request: requestSummary(row), statusCode: row["status_code"].int.map { Int($0) },
            latencyMs: row["latency_ms"].double, completedAt: row.optionalDate("completed_at_us"),
            responseBody: row["response_body"].blob,
            requestBytes: row.int("request_bytes"), responseBytes: row.int("response_bytes"),
            truncated: row.int("truncated") != 0, approvalID: row["approval_id"].text,
            kubectlCommand: row["kubectl_command"].text, kubectlSession: row["kubectl_session"].text,
            userAgent: row["user_agent"].text, state: ExchangeState(rawValue: row.text("state")) ?? .incomplete,
            owner: row.text("owner"), streamChunkCount: row.int("chunk_count"))
    }
}
