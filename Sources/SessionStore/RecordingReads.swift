import Foundation

/// The recording-read audit: who read which recording through the admin API, when and from
/// where (``SessionStore/recordRead(_:at:coalesceWithin:)``).
///
/// Contract:
/// - A row is one viewer's reads of one target (`action`, session, exchange) from one address.
///   A read within `coalesceWithin` of that row's last read counts into it (`count`,
///   `lastAt`), so a web page polling an open session every two seconds adds one row, not
///   one per poll; a read after a longer pause starts a new row. Every read is counted.
/// - Rows outlive the sessions they name: retention pruning never deletes them.
/// - Empty strings stand for "none" (no session for a list, no exchange for a session read).

/// What was read.
public enum RecordingReadAction: String, Hashable, Sendable, Codable, CaseIterable {
    /// `GET /api/v1/sessions`: the list (its filter in `query`), not each session listed.
    case listSessions = "sessions.list"
    /// `GET /api/v1/sessions/{id}`: a session with its exchanges and bodies.
    case readSession = "sessions.get"
    /// `GET /api/v1/exchanges/{id}/chunks`: one exchange's stream frames.
    case readChunks = "chunks.get"
    /// Approvals (request and dry-run bodies), audited only when the break-glass token reads them.
    case listApprovals = "approvals.list"
    case readApproval = "approvals.get"
    /// The audit itself, read with the break-glass token.
    case listAudit = "audit.list"
}

/// One read to record.
public struct RecordingReadEvent: Hashable, Sendable {
    /// The viewer's OIDC subject, or `admin-token` for the break-glass token.
    public var viewer: String
    /// The issuer that vouched for `viewer` ("" for the break-glass token).
    public var issuer: String
    public var action: RecordingReadAction
    public var sessionID: SessionID
    public var exchangeID: ExchangeID
    /// The list's filter (query string) for a list; "" otherwise.
    public var query: String
    /// The client's address as the admin listener saw it.
    public var address: String

    public init(viewer: String, issuer: String = "", action: RecordingReadAction, sessionID: SessionID = "",
                exchangeID: ExchangeID = "", query: String = "", address: String = "") {
        self.viewer = viewer
        self.issuer = issuer
        self.action = action
        self.sessionID = sessionID
        self.exchangeID = exchangeID
        self.query = query
        self.address = address
    }
}

/// A row of the audit: ``RecordingReadEvent`` plus when and how often.
public struct RecordingRead: Hashable, Sendable {
    public var id: String
    public var event: RecordingReadEvent
    public var firstAt: Date
    public var lastAt: Date
    /// Reads counted into this row (1 or more).
    public var count: Int64
}

/// Narrows ``SessionStore/listReads(_:)``; rows newest first.
public struct RecordingReadFilter: Hashable, Sendable {
    public var sessionID: SessionID?
    public var viewer: String?
    public var limit: Int
    public init(sessionID: SessionID? = nil, viewer: String? = nil, limit: Int = 100) {
        self.sessionID = sessionID
        self.viewer = viewer
        self.limit = limit
    }
}
