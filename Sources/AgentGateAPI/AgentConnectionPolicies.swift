/// The request-matching parts of an AgentConnection: approval rules (hold for a human) and
/// access rules (allow/deny before RBAC). In every matcher list an absent or empty list, or
/// `*`, matches anything; the lists of one rule are ANDed, the entries of one list ORed.
/// `apiGroups` uses `""` for the core group, as RBAC does.

/// `spec.approval`: requests matching any rule are held until an approver decides.
public struct ApprovalPolicy: Codable, Sendable, Hashable {
    /// Unique by name; a request matching any rule is held.
    public var rules: [ApprovalRule]?
    /// Groups (from the approver's identity) allowed to approve or deny; the requesting agent
    /// never approves its own request. Required when `rules` is not empty.
    public var approverGroups: [String]?
    /// How long a request is held before it is denied (Go duration, 30s...24h, default `10m`).
    public var timeout: String?
    /// Optional http(s) URL the gateway POSTs each new approval to (the admin API's approval
    /// JSON), e.g. a chat bridge that pages the approvers.
    public var webhookURL: String?

    public static let defaultTimeout = "10m"

    public init(rules: [ApprovalRule]? = nil, approverGroups: [String]? = nil, timeout: String? = nil,
                webhookURL: String? = nil) {
        self.rules = rules
        self.approverGroups = approverGroups
        self.timeout = timeout
        self.webhookURL = webhookURL
    }
}

/// One reason to hold a request: every matcher list set must match (see the file comment).
public struct ApprovalRule: Codable, Sendable, Hashable {
    /// Unique within the connection; shown with each approval (`held by rule <name>`).
    public var name: String
    public var verbs: [RequestVerb]?
    public var apiGroups: [String]?
    public var resources: [String]?
    public var subresources: [String]?
    public var namespaces: [String]?
    /// Object names; for a create, the name it would create. A rule with names never matches
    /// list or deletecollection.
    public var names: [String]?
    /// When true, the rule matches only requests that set a workload's replicas to 0
    /// (update/patch of `scale`, or of `spec.replicas` on deployments, statefulsets, replicasets).
    public var scaleToZero: Bool?

    public init(name: String, verbs: [RequestVerb]? = nil, apiGroups: [String]? = nil, resources: [String]? = nil,
                subresources: [String]? = nil, namespaces: [String]? = nil, names: [String]? = nil,
                scaleToZero: Bool? = nil) {
        self.name = name
        self.verbs = verbs
        self.apiGroups = apiGroups
        self.resources = resources
        self.subresources = subresources
        self.namespaces = namespaces
        self.names = names
        self.scaleToZero = scaleToZero
    }
}

/// `spec.access`: a Deny match always refuses (403); when any Allow rule exists, only
/// requests matching an Allow rule pass. Kubernetes RBAC still applies afterwards.
public struct AccessPolicy: Codable, Sendable, Hashable {
    /// Unique by name.
    public var rules: [AccessRule]?
    public init(rules: [AccessRule]? = nil) { self.rules = rules }
}

/// One allow or deny rule: every matcher list set must match (see the file comment).
public struct AccessRule: Codable, Sendable, Hashable {
    /// Unique within the connection; quoted in the refusal of a request it denies.
    public var name: String
    /// Deny refuses a match; Allow lets it through to RBAC (and, once any exists, refuses the rest).
    public var action: AccessAction
    public var verbs: [RequestVerb]?
    public var apiGroups: [String]?
    public var resources: [String]?
    public var subresources: [String]?
    public var namespaces: [String]?

    public init(name: String, action: AccessAction, verbs: [RequestVerb]? = nil, apiGroups: [String]? = nil,
                resources: [String]? = nil, subresources: [String]? = nil, namespaces: [String]? = nil) {
        self.name = name
        self.action = action
        self.verbs = verbs
        self.apiGroups = apiGroups
        self.resources = resources
        self.subresources = subresources
        self.namespaces = namespaces
    }
}

public enum AccessAction: String, Codable, Sendable, Hashable, CaseIterable {
    case allow = "Allow"
    case deny = "Deny"
}
