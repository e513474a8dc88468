import KubeCore

/// What the operator and gateway report about an AgentConnection. Written only through the
/// `/status` subresource; `kubectl get agc` shows Ready, endpoint, sessions, pending approvals
/// and credential expiry from here.
public struct AgentConnectionStatus: Codable, Sendable, Hashable {
    /// The generation this status describes (kstatus: Reconciling while it lags `metadata.generation`).
    public var observedGeneration: Int64?
    /// URL agents put in their kubeconfig: `https://<gateway>/c/<namespace>/<name>`.
    public var endpoint: String?
    /// The token held for the gateway (operator).
    public var credential: CredentialStatus?
    /// Agent sessions from the session store (gateway).
    public var sessions: SessionStats?
    /// Requests currently held for approval.
    public var pendingApprovals: Int32?
    /// Names of the MaskingRules the selector resolved to, sorted.
    public var appliedMaskingRules: [String]?
    /// `Ready`, `Reconciling`, `Stalled` (kstatus).
    public var conditions: [Condition]?

    public init(observedGeneration: Int64? = nil, endpoint: String? = nil, credential: CredentialStatus? = nil,
                sessions: SessionStats? = nil, pendingApprovals: Int32? = nil, appliedMaskingRules: [String]? = nil,
                conditions: [Condition]? = nil) {
        self.observedGeneration = observedGeneration
        self.endpoint = endpoint
        self.credential = credential
        self.sessions = sessions
        self.pendingApprovals = pendingApprovals
        self.appliedMaskingRules = appliedMaskingRules
        self.conditions = conditions
    }
}

/// The ServiceAccount token currently held for the connection (never the token itself).
public struct CredentialStatus: Codable, Sendable, Hashable {
    /// When the current token was issued; RFC 3339 (`KubeTime.format`), as is `expiresAt`.
    public var issuedAt: String?
    /// When it expires; the next one is requested `rotateBefore` earlier.
    public var expiresAt: String?
    /// Tokens requested after the first one.
    public var rotations: Int64?
    /// Secret in the gateway namespace that holds the token.
    public var secretName: String?

    public init(issuedAt: String? = nil, expiresAt: String? = nil, rotations: Int64? = nil, secretName: String? = nil) {
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.rotations = rotations
        self.secretName = secretName
    }
}

/// `status.sessions`, written by the gateway from the session store.
public struct SessionStats: Codable, Sendable, Hashable {
    /// Sessions with an exchange within the session idle gap.
    public var active: Int32?
    /// Sessions kept in the store (retention prunes older ones).
    public var total: Int64?
    /// RFC 3339 time of the last exchange on any session.
    public var lastActivity: String?
    /// The session with the latest activity (`agentgate sessions show <id>`).
    public var lastSessionID: String?

    public init(active: Int32? = nil, total: Int64? = nil, lastActivity: String? = nil, lastSessionID: String? = nil) {
        self.active = active
        self.total = total
        self.lastActivity = lastActivity
        self.lastSessionID = lastSessionID
    }
}
