import Foundation

/// Approvals: requests held by the gateway until a human decides (DESIGN.md, "Approvals").
/// Stored next to the sessions, so a decision is durable, listed by any replica and joined
/// to the exchange it released (`ExchangeRecord.approvalID`).

public typealias ApprovalID = String

/// Where an approval is in its life. Only `pending` moves, and only once.
public enum ApprovalState: String, Hashable, Sendable, Codable, CaseIterable {
    /// The request is held, waiting for an approver.
    case pending
    /// An approver allowed it; the request was forwarded as it was.
    case approved
    /// An approver refused it; the agent got 403.
    case denied
    /// Nobody decided within the timeout; the agent got 403.
    case expired
    /// The gateway holding the request stopped (shutdown answers 503; a crash is found at the
    /// next start); the agent may retry.
    case abandoned

    public var isFinal: Bool { self != .pending }
}

/// One held request and its outcome. Bodies are masked by the gateway before they get here.
public struct ApprovalRecord: CarriesRequestSummary, Hashable, Sendable, Codable {
    /// What the agent asked for (RequestInfo, method, path, query, masked body).
    public var request: RequestSummary
    public var id: ApprovalID
    public var connection: ConnectionRef
    /// The `spec.approval` rule that held the request.
    public var rule: String
    public var state: ApprovalState
    /// Who asked: the agent's subject, groups and model.
    public var subject: String
    public var groups: [String]
    public var model: String?
    /// The recorded exchange of the held request (nil when recording failed open).
    public var sessionID: SessionID?
    public var exchangeID: ExchangeID?
    /// The API server's answer to the same request with `dryRun=All` (masked), when the verb
    /// supports dry run: what would change.
    public var dryRunStatusCode: Int?
    public var dryRunBody: [UInt8]?
    /// Groups whose members may decide, copied from the policy when the request was held.
    public var approverGroups: [String]
    public var createdAt: Date
    /// When the request is denied for want of a decision.
    public var expiresAt: Date
    public var decidedAt: Date?
    /// The approver's subject (nil for expired and abandoned).
    public var decidedBy: String?
    public var reason: String?
    /// The store instance (gateway process) holding the request.
    public var owner: String

    public init(id: ApprovalID, connection: ConnectionRef, rule: String, state: ApprovalState = .pending, subject: String,
                groups: [String], model: String?, sessionID: SessionID?, exchangeID: ExchangeID?, verb: String,
                apiGroup: String, resource: String, subresource: String, namespace: String, name: String,
                httpMethod: String, path: String, query: String, requestBody: [UInt8]?, dryRunStatusCode: Int? = nil,
                dryRunBody: [UInt8]? = nil, approverGroups: [String], createdAt: Date, expiresAt: Date,
                decidedAt: Date? = nil, decidedBy: String? = nil, reason: String? = nil, owner: String = "") {
        self.init(id: id, connection: connection, rule: rule, state: state, subject: subject, groups: groups, model: model,
                  sessionID: sessionID, exchangeID: exchangeID,
                  request: RequestSummary(verb: verb, apiGroup: apiGroup, resource: resource, subresource: subresource,
                                          namespace: namespace, name: name, httpMethod: httpMethod, path: path,
                                          query: query, body: requestBody),
                  dryRunStatusCode: dryRunStatusCode, dryRunBody: dryRunBody, approverGroups: approverGroups,
                  createdAt: createdAt, expiresAt: expiresAt, decidedAt: decidedAt, decidedBy: decidedBy,
                  reason: reason, owner: owner)
    }

    public init(id: ApprovalID, connection: ConnectionRef, rule: String, state: ApprovalState = .pending, subject: String,
                groups: [String], model: String?, sessionID: SessionID?, exchangeID: ExchangeID?, request: RequestSummary,
                dryRunStatusCode: Int? = nil, dryRunBody: [UInt8]? = nil, approverGroups: [String], createdAt: Date,
                expiresAt: Date, decidedAt: Date? = nil, decidedBy: String? = nil, reason: String? = nil,
                owner: String = "") {
        self.request = request
        self.id = id
        self.connection = connection
        self.rule = rule
        self.state = state
        self.subject = subject
        self.groups = groups
        self.model = model
        self.sessionID = sessionID
        self.exchangeID = exchangeID
        self.dryRunStatusCode = dryRunStatusCode
        self.dryRunBody = dryRunBody
        self.approverGroups = approverGroups
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.decidedAt = decidedAt
        self.decidedBy = decidedBy
        self.reason = reason
        self.owner = owner
    }
}

/// A decision on a pending approval.
public struct ApprovalDecision: Hashable, Sendable {
    /// `approved`, `denied`, `expired` or `abandoned`.
    public var state: ApprovalState
    public var decidedBy: String?
    public var reason: String?
    public var at: Date

    public init(state: ApprovalState, decidedBy: String? = nil, reason: String? = nil, at: Date = Date()) {
        self.state = state
        self.decidedBy = decidedBy
        self.reason = reason
        self.at = at
    }
}

/// Narrows `listApprovals`; newest first.
public struct ApprovalFilter: Hashable, Sendable {
    public var state: ApprovalState?
    public var connections: [ConnectionRef]?
    public var limit: Int

    public init(state: ApprovalState? = nil, connections: [ConnectionRef]? = nil, limit: Int = 100) {
        self.state = state
        self.connections = connections
        self.limit = limit
    }
}
