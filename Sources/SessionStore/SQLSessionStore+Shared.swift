import Foundation

/// State gateway replicas share through the database, so what one replica decides does not
/// depend on which replica a request reached: alert windows (``countAlertHit``) and refused
/// stream upgrades kept for the client's retry (``rememberStreamRefusal``).
///
/// An alert window is one `alert_windows` row (firing or not) and its `alert_hits`; a hit is
/// counted in one write transaction that, on PostgreSQL, first takes a transaction-scoped
/// advisory lock on the window's key, so hits arriving on several replicas at once are
/// counted one after another and exactly one of them fires the window. SQLite has one
/// writer and needs no lock.
extension SQLSessionStore {
    func countAlertHit(_ key: String, at: Date, window: TimeInterval, threshold: Int) async throws -> AlertWindowCount {
        try checkOpen()
        let dialect = self.dialect
        let now = SQLTime.micros(at)
        let oldest = SQLTime.micros(at.addingTimeInterval(-window))
        return try await driver.write { tx in
            if dialect == .postgres {
                try await tx.query("SELECT pg_advisory_xact_lock(hashtext(?))", [.text("alert:" + key)])
            }
            try await tx.query("DELETE FROM alert_hits WHERE window_key = ? AND at_us <= ?", [.text(key), .int(oldest)])
            let before = try await tx.query("SELECT COUNT(*) AS n FROM alert_hits WHERE window_key = ?", [.text(key)])
                .first?.int("n") ?? 0
            var firing = try await tx.query("SELECT firing FROM alert_windows WHERE window_key = ?", [.text(key)])
                .first?.int("firing") ?? 0 != 0
            // Below the threshold again: the next time it is reached fires anew.
            if before < Int64(threshold) { firing = false }
            try await tx.query("INSERT INTO alert_hits (window_key, at_us) VALUES (?, ?)", [.text(key), .int(now)])
            let count = Int(before) + 1
            let fires = count >= threshold && !firing
            if fires { firing = true }
            try await tx.query("""
                INSERT INTO alert_windows (window_key, firing, last_hit_us) VALUES (?, ?, ?)
                ON CONFLICT (window_key) DO UPDATE SET firing = excluded.firing, last_hit_us = excluded.last_hit_us
                """, [.text(key), .int(firing ? 1 : 0), .int(now)])
            return AlertWindowCount(count: count, fires: fires)
        }
    }

    func rememberStreamRefusal(_ key: String, answer: StreamRefusal, until: Date) async throws {
        try checkOpen()
        let now = SQLTime.micros(Date())
        _ = try await driver.write { tx in
            try await tx.query("DELETE FROM stream_refusals WHERE expires_at_us <= ?", [.int(now)])
            try await tx.query("""
                INSERT INTO stream_refusals (refusal_key, status_code, body, expires_at_us) VALUES (?, ?, ?, ?)
                ON CONFLICT (refusal_key) DO UPDATE SET status_code = excluded.status_code, body = excluded.body,
                expires_at_us = excluded.expires_at_us
                """, [.text(key), .int(Int64(answer.statusCode)), .blob(answer.body), SQLValue(micros: until)])
        }
    }

    func takeStreamRefusal(_ key: String, at: Date) async throws -> StreamRefusal? {
        try checkOpen()
        let rows = try await driver.write { tx in
            try await tx.query("DELETE FROM stream_refusals WHERE refusal_key = ? AND expires_at_us > ? RETURNING status_code, body",
                               [.text(key), SQLValue(micros: at)])
        }
        return rows.first.map { StreamRefusal(statusCode: Int($0.int("status_code")), body: $0["body"].blob ?? []) }
    }

    /// Forgets alert windows with no hit since `cutoff`, with their hits (run with retention
    /// pruning, with a cutoff far older than any rule's window).
    func pruneAlertWindows(before cutoff: Date) async throws {
        let micros = SQLTime.micros(cutoff)
        _ = try await driver.write { tx in
            try await tx.query("DELETE FROM alert_hits WHERE window_key IN (SELECT window_key FROM alert_windows WHERE last_hit_us < ?)",
                               [.int(micros)])
            try await tx.query("DELETE FROM alert_windows WHERE last_hit_us < ?", [.int(micros)])
        }
    }
}
