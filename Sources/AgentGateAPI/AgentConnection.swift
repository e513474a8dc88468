import KubeCore

/// AgentConnection (`agc`): one agent identity's way into the cluster through the gateway.
///
/// The operator requests short-lived tokens for `spec.serviceAccountName` (TokenRequest),
/// keeps them in a Secret only the gateway reads, and publishes the connection's endpoint
/// (`https://<gateway>/c/<namespace>/<name>`) in `status.endpoint`. The gateway admits agents
/// whose OIDC token matches `spec.identity`, applies `spec.access` and `spec.approval`, masks
/// with the selected MaskingRules and records per the referenced RecordingPolicy.
/// The schema, defaults and cross-field rules live in `CRDs/AgentConnectionCRD.swift`.
public struct AgentConnection: AgentGateObject {
    public static let kindInfo = AgentGateKinds.agentConnection

    public var apiVersion: String
    public var kind: String
    public var metadata: ObjectMeta
    public var spec: AgentConnectionSpec
    public var status: AgentConnectionStatus?

    public init(metadata: ObjectMeta, spec: AgentConnectionSpec, status: AgentConnectionStatus? = nil) {
        self.apiVersion = AgentGateGroup.apiVersion
        self.kind = Self.kindInfo.kind
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

/// What a connection admits and how; owned by its author or GitOps tool, never written by the operator.
public struct AgentConnectionSpec: Codable, Sendable, Hashable {
    /// The ServiceAccount (same namespace) whose permissions the agent borrows.
    public var serviceAccountName: String
    /// Which OIDC tokens are admitted.
    public var identity: AgentIdentity
    /// Lifetime of the ServiceAccount token the operator requests; defaults apply when `nil`.
    public var credentials: CredentialPolicy?
    /// RecordingPolicy in the same namespace; built-in defaults when `nil`.
    public var recordingPolicyRef: LocalObjectReference?
    /// MaskingRules in the same namespace to apply on top of the built-in ones. `nil` selects
    /// none, `{}` selects all.
    public var maskingRuleSelector: LabelSelector?
    /// Requests held for a human before they are forwarded.
    public var approval: ApprovalPolicy?
    /// Allow/deny rules applied before Kubernetes RBAC sees the request.
    public var access: AccessPolicy?

    public init(serviceAccountName: String, identity: AgentIdentity, credentials: CredentialPolicy? = nil,
                recordingPolicyRef: LocalObjectReference? = nil, maskingRuleSelector: LabelSelector? = nil,
                approval: ApprovalPolicy? = nil, access: AccessPolicy? = nil) {
        self.serviceAccountName = serviceAccountName
        self.identity = identity
        self.credentials = credentials
        self.recordingPolicyRef = recordingPolicyRef
        self.maskingRuleSelector = maskingRuleSelector
        self.approval = approval
        self.access = access
    }
}

/// The OIDC identities admitted on a connection. A token must come from `issuer`, carry one
/// of `audiences`, and its subject must be in `allowedSubjects` or one of its groups in
/// `allowedGroups` (the CRD requires at least one of the two lists).
public struct AgentIdentity: Codable, Sendable, Hashable {
    /// OIDC issuer URL, as in the token's `iss`; https, or http on loopback for development.
    public var issuer: String
    /// A token's `aud` must contain at least one of these.
    public var audiences: [String]
    /// Subjects admitted, compared exactly with the `subjectClaim` claim.
    public var allowedSubjects: [String]?
    /// Groups admitted, compared exactly with the entries of the `groupsClaim` claim; one is enough.
    public var allowedGroups: [String]?
    /// Claim holding the subject; default `sub`.
    public var subjectClaim: String?
    /// Claim holding the groups; default `groups`.
    public var groupsClaim: String?
    /// Claim naming the model that drives the agent, recorded with each session; default `model`.
    public var modelClaim: String?

    public static let defaultSubjectClaim = "sub"
    public static let defaultGroupsClaim = "groups"
    public static let defaultModelClaim = "model"

    public init(issuer: String, audiences: [String], allowedSubjects: [String]? = nil, allowedGroups: [String]? = nil,
                subjectClaim: String? = nil, groupsClaim: String? = nil, modelClaim: String? = nil) {
        self.issuer = issuer
        self.audiences = audiences
        self.allowedSubjects = allowedSubjects
        self.allowedGroups = allowedGroups
        self.subjectClaim = subjectClaim
        self.groupsClaim = groupsClaim
        self.modelClaim = modelClaim
    }
}

/// Token lifetime as Go durations (`1h`, `10m`). The CRD keeps `rotateBefore < tokenTTL` and
/// `tokenTTL` within 10m...24h (TokenRequest refuses less than 10 minutes).
public struct CredentialPolicy: Codable, Sendable, Hashable {
    /// Requested token lifetime; default `1h`.
    public var tokenTTL: String?
    /// How long before expiry the operator requests the next token; default `10m`.
    public var rotateBefore: String?

    public static let defaultTokenTTL = "1h"
    public static let defaultRotateBefore = "10m"

    public init(tokenTTL: String? = nil, rotateBefore: String? = nil) {
        self.tokenTTL = tokenTTL
        self.rotateBefore = rotateBefore
    }
}

/// A reference to an object of a known kind in the same namespace.
public struct LocalObjectReference: Codable, Sendable, Hashable {
    public var name: String
    public init(name: String) { self.name = name }
}

/// API verbs as RequestInfo derives them; `*` matches every verb.
public enum RequestVerb: String, Codable, Sendable, Hashable, CaseIterable {
    case all = "*"
    case get, list, watch, create, update, patch, delete, deletecollection, proxy
}
