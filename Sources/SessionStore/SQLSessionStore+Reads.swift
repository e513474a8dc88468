import Foundation

/// The recording-read audit on SQL (`recording_reads`, schema version 6; contract in
/// `RecordingReads.swift`). A read is one write transaction: count it into the viewer's
/// latest row for the same target and address if that row was read within the window, else
/// insert a row. Two replicas racing may each insert one; both rows are true.
extension SQLSessionStore {
    func recordRead(_ read: RecordingReadEvent, at: Date, coalesceWithin window: TimeInterval) async throws {
        try checkOpen()
        let now = SQLTime.micros(at)
        let since = SQLTime.micros(at.addingTimeInterval(-window))
        let id = SortableID.make(at: at)
        _ = try await driver.write { tx in
            let target: [SQLValue] = [.text(read.viewer), .text(read.issuer), .text(read.action.rawValue), .text(read.sessionID),
                                      .text(read.exchangeID), .text(read.query), .text(read.address)]
            let counted = try await tx.query("""
                UPDATE recording_reads SET count = count + 1, last_at_us = ?
                WHERE id = (SELECT id FROM recording_reads WHERE viewer = ? AND issuer = ? AND action = ? AND session_id = ?
                            AND exchange_id = ? AND query = ? AND address = ? AND last_at_us >= ?
                            ORDER BY last_at_us DESC LIMIT 1)
                RETURNING id
                """, [.int(now)] + target + [.int(since)])
            if counted.isEmpty {
                try await tx.query("""
                    INSERT INTO recording_reads (id, viewer, issuer, action, session_id, exchange_id, query, address,
                    first_at_us, last_at_us, count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
                    """, [.text(id)] + target + [.int(now), .int(now)])
            }
        }
    }

    func listReads(_ filter: RecordingReadFilter) async throws -> [RecordingRead] {
        try checkOpen()
        var sql = "SELECT * FROM recording_reads WHERE 1 = 1"
        var binds: [SQLValue] = []
        if let session = filter.sessionID {
            sql += " AND session_id = ?"
            binds.append(.text(session))
        }
        if let viewer = filter.viewer {
            sql += " AND viewer = ?"
            binds.append(.text(viewer))
        }
        sql += " ORDER BY last_at_us DESC, id DESC LIMIT ?"
        binds.append(.int(Int64(filter.limit > 0 ? min(filter.limit, 10_000) : 100)))
        return try await driver.read(sql, binds).map { row in
            RecordingRead(
                id: row.text("id"),
                event: RecordingReadEvent(viewer: row.text("viewer"), issuer: row.text("issuer"),
                                          action: RecordingReadAction(rawValue: row.text("action")) ?? .readSession,
                                          sessionID: row.text("session_id"), exchangeID: row.text("exchange_id"),
                                          query: row.text("query"), address: row.text("address")),
                firstAt: row.date("first_at_us"), lastAt: row.date("last_at_us"), count: row.int("count"))
        }
    }
}
