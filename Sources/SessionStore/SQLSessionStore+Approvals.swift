import Foundation

/// Approvals on SQL: one row per held request; a decision is one conditional UPDATE
/// (`WHERE state = 'pending'`), so two approvers racing, or an approver racing the timeout,
/// end with exactly one winner and the loser sees ``SessionStoreError/approvalAlreadyDecided(_:)``.
/// On PostgreSQL the decision's transaction also sends `NOTIFY agentgate_approvals, '<id>'`,
/// delivered on commit to every replica listening (``approvalDecisions()``).
extension SQLSessionStore {
    static let approvalChannel = "agentgate_approvals"

    func createApproval(_ approval: ApprovalRecord) async throws {
        try checkOpen()
        let owner = instanceID
        _ = try await driver.write { tx in
            try await tx.query("""
                INSERT INTO approvals (id, connection_namespace, connection_name, rule, state, subject, groups_json, model,
                session_id, exchange_id, verb, api_group, resource, subresource, namespace, name, http_method, path, query,
                request_body, dry_run_status_code, dry_run_body, approver_groups_json, created_at_us, expires_at_us, owner)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [
                    .text(approval.id), .text(approval.connection.namespace), .text(approval.connection.name),
                    .text(approval.rule), .text(ApprovalState.pending.rawValue), .text(approval.subject),
                    .text(Self.jsonList(approval.groups)), SQLValue(approval.model), SQLValue(approval.sessionID),
                    SQLValue(approval.exchangeID), .text(approval.verb), .text(approval.apiGroup), .text(approval.resource),
                    .text(approval.subresource), .text(approval.namespace), .text(approval.name), .text(approval.httpMethod),
                    .text(approval.path), .text(approval.query), SQLValue(approval.requestBody),
                    approval.dryRunStatusCode.map { .int(Int64($0)) } ?? .null, SQLValue(approval.dryRunBody),
                    .text(Self.jsonList(approval.approverGroups)), SQLValue(micros: approval.createdAt),
                    SQLValue(micros: approval.expiresAt), .text(owner),
                ])
        }
    }

    func decideApproval(_ id: ApprovalID, _ decision: ApprovalDecision) async throws -> ApprovalRecord {
        try checkOpen()
        precondition(decision.state.isFinal, "a decision moves an approval out of pending")
        let dialect = self.dialect
        return try await driver.write { tx in
            let updated = try await tx.query("""
                UPDATE approvals SET state = ?, decided_at_us = ?, decided_by = ?, reason = ?
                WHERE id = ? AND state = ? RETURNING *
                """, [.text(decision.state.rawValue), SQLValue(micros: decision.at), SQLValue(decision.decidedBy),
                      SQLValue(decision.reason), .text(id), .text(ApprovalState.pending.rawValue)])
            guard let row = updated.first else {
                guard let current = try await tx.query("SELECT * FROM approvals WHERE id = ?", [.text(id)]).first else {
                    throw SessionStoreError.approvalNotFound(id)
                }
                throw SessionStoreError.approvalAlreadyDecided(Self.approval(current))
            }
            if dialect == .postgres {
                try await tx.query("SELECT pg_notify(?, ?)", [.text(Self.approvalChannel), .text(id)])
            }
            return Self.approval(row)
        }
    }

    func approval(id: ApprovalID) async throws -> ApprovalRecord? {
        try checkOpen()
        return try await driver.read("SELECT * FROM approvals WHERE id = ?", [.text(id)]).first.map(Self.approval)
    }

    func listApprovals(_ filter: ApprovalFilter) async throws -> [ApprovalRecord] {
        try checkOpen()
        var sql = "SELECT * FROM approvals WHERE 1 = 1"
        var binds: [SQLValue] = []
        if let state = filter.state {
            sql += " AND state = ?"
            binds.append(.text(state.rawValue))
        }
        if let connections = filter.connections {
            if connections.isEmpty { return [] }
            sql += " AND (" + connections.map { _ in "(connection_namespace = ? AND connection_name = ?)" }
                .joined(separator: " OR ") + ")"
            for c in connections { binds += [.text(c.namespace), .text(c.name)] }
        }
        sql += " ORDER BY created_at_us DESC, id DESC LIMIT ?"
        binds.append(.int(Int64(filter.limit > 0 ? min(filter.limit, 10_000) : 100)))
        return try await driver.read(sql, binds).map(Self.approval)
    }

    func approvalDecisions() -> AsyncStream<ApprovalID> {
        driver.notifications(channel: Self.approvalChannel)
    }

    /// Marks the pending approvals of `owner` abandoned (in a write transaction); returns their ids.
    @discardableResult
    static func abandonApprovals(_ tx: any SQLTransaction, owner: String, at: Date, reason: String, notify: Bool) async throws
        -> [ApprovalID] {
        let ids = try await tx.query("""
            UPDATE approvals SET state = ?, decided_at_us = ?, reason = ? WHERE state = ? AND owner = ? RETURNING id
            """, [.text(ApprovalState.abandoned.rawValue), SQLValue(micros: at), .text(reason),
                  .text(ApprovalState.pending.rawValue), .text(owner)]).map { $0.text("id") }
        if notify {
            for id in ids { try await tx.query("SELECT pg_notify(?, ?)", [.text(approvalChannel), .text(id)]) }
        }
        return ids
    }

    static func jsonList(_ values: [String]) -> String {
        String(decoding: (try? JSONEncoder().encode(values)) ?? Data("[]".utf8), as: UTF8.self)
    }

    static func list(_ text: String) -> [String] {
        (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
    }

    static func approval(_ row: SQLRow) -> ApprovalRecord {
        ApprovalRecord(
            id: row.text("id"), connection: ConnectionRef(namespace: row.text("connection_namespace"), name: row.text("connection_name")),
            rule: row.text("rule"), state: ApprovalState(rawValue: row.text("state")) ?? .abandoned, subject: row.text("subject"),
            groups: list(row.text("groups_json")), model: row["model"].text, sessionID: row["session_id"].text,
            exchangeID: row["exchange_id"].text, request: requestSummary(row),
            dryRunStatusCode: row["dry_run_status_code"].int.map { Int($0) },
            dryRunBody: row["dry_run_body"].blob, approverGroups: list(row.text("approver_groups_json")),
            createdAt: row.date("created_at_us"), expiresAt: row.date("expires_at_us"),
            decidedAt: row.optionalDate("decided_at_us"), decidedBy: row["decided_by"].text, reason: row["reason"].text,
            owner: row.text("owner"))
    }
}
