import Foundation

/// Liveness and crash recovery: heartbeats in `store_instances`, and marking the
/// `inProgress` exchanges of dead owners `incomplete` (rules on `SessionStore.recoverInterrupted`).
extension SQLSessionStore {
    func heartbeat(at: Date) async throws {
        try checkOpen()
        let me = ProcessIdentity.current
        let id = instanceID
        try await driver.write { tx in
            try await Self.upsertHeartbeat(tx, id: id, me: me, at: at)
        }
    }

    private static func upsertHeartbeat(_ tx: any SQLTransaction, id: String, me: ProcessIdentity, at: Date) async throws {
        try await tx.query("""
            INSERT INTO store_instances (id, host, pid, process_start, started_at_us, heartbeat_at_us)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET heartbeat_at_us = excluded.heartbeat_at_us
            """, [.text(id), .text(me.host), .int(me.pid), .text(me.processStart),
                  SQLValue(micros: at), SQLValue(micros: at)])
    }

    func recoverInterrupted(at: Date, staleAfter: TimeInterval) async throws -> Int {
        try checkOpen()
        let me = ProcessIdentity.current
        let id = instanceID
        let staleBefore = SQLTime.micros(at.addingTimeInterval(-staleAfter))
        let dialect = self.dialect
        let inProgress = Self.inProgress
        return try await driver.maintenance { tx in
            try await Self.upsertHeartbeat(tx, id: id, me: me, at: at)
            var instances: [String: (identity: ProcessIdentity, heartbeat: Int64)] = [:]
            for row in try await tx.query("SELECT * FROM store_instances WHERE id <> ?", [.text(id)]) {
                instances[row.text("id")] = (
                    ProcessIdentity(host: row.text("host"), pid: row.int("pid"), processStart: row.text("process_start")),
                    row.int("heartbeat_at_us"))
            }
            func isDead(_ owner: String) -> Bool {
                guard let instance = instances[owner] else { return true }
                return instance.heartbeat < staleBefore || me.provesDead(instance.identity)
            }
            let owners = try await tx.query(
                "SELECT DISTINCT owner FROM exchanges WHERE \(inProgress) AND owner <> ?", [.text(id)]
            ).map { $0.text("owner") }
            var marked = 0
            for owner in owners where isDead(owner) {
                marked += try await tx.query("""
                    UPDATE exchanges SET state = ?, completed_at_us = COALESCE(completed_at_us, ?)
                    WHERE \(inProgress) AND owner = ? RETURNING id
                    """, [.text(ExchangeState.incomplete.rawValue), SQLValue(micros: at), .text(owner)]).count
            }
            let approvalOwners = try await tx.query(
                "SELECT DISTINCT owner FROM approvals WHERE state = ? AND owner <> ?",
                [.text(ApprovalState.pending.rawValue), .text(id)]
            ).map { $0.text("owner") }
            for owner in approvalOwners where isDead(owner) {
                try await Self.abandonApprovals(tx, owner: owner, at: at, reason: "the gateway holding the request stopped",
                                                notify: dialect == .postgres)
            }
            for owner in instances.keys where isDead(owner) {
                try await tx.query("DELETE FROM store_instances WHERE id = ?", [.text(owner)])
            }
            return marked
        }
    }
}
