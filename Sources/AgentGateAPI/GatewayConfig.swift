import Foundation
import KubeCore

/// The compiled configuration of one AgentConnection, as the operator writes it and the
/// gateway reads it: everything the gateway needs to serve the connection, resolved (the
/// referenced RecordingPolicy inlined, the selected MaskingRules inlined, defaults applied).
///
/// Where it lives: a Secret in the gateway's namespace named ``secretName(namespace:name:)``,
/// labelled `agentgate.io/connection-namespace`, `agentgate.io/connection-name` and
/// ``managedByLabel``, with two keys — ``configKey`` (this struct as JSON) and ``tokenKey``
/// (the ServiceAccount token). One Secret per connection, so a credential and the config
/// it goes with change together, and only the gateway's ServiceAccount may read them.
public struct GatewayConnectionConfig: Codable, Sendable, Hashable {
    public static let configKey = "config.json"
    public static let tokenKey = "token"
    public static let managedByLabel = "app.kubernetes.io/managed-by"
    public static let managedByValue = "agentgate-operator"
    public static let connectionNamespaceLabel = "agentgate.io/connection-namespace"
    public static let connectionNameLabel = "agentgate.io/connection-name"

    /// `agc-<namespace>-<name>`, shortened with a hash when over 253 characters.
    public static func secretName(namespace: String, name: String) -> String {
        let full = "agc-\(namespace)-\(name)"
        if full.count <= 253 { return full }
        var hasher = Hasher()
        hasher.combine(full)
        return String(full.prefix(240)) + "-" + String(UInt(bitPattern: hasher.finalize()), radix: 36).prefix(12)
    }

    /// Connection namespace and name (the `/c/<namespace>/<name>` route).
    public var namespace: String
    public var name: String
    /// `metadata.generation` of the AgentConnection this was compiled from.
    public var generation: Int64
    public var uid: String
    /// The ServiceAccount whose token is in the Secret.
    public var serviceAccountName: String
    public var endpoint: String?
    public var identity: AgentIdentity
    public var approval: ApprovalPolicy?
    public var access: AccessPolicy?
    /// The RecordingPolicy's spec (defaults when the connection references none).
    public var recording: RecordingPolicySpec
    /// Name of the RecordingPolicy used, if any.
    public var recordingPolicyName: String?
    /// The selected MaskingRules' specs, by rule name, sorted by name.
    public var maskingRules: [NamedMaskingRule]
    /// When the token in the Secret expires (RFC 3339).
    public var credentialExpiresAt: String?

    public init(namespace: String, name: String, generation: Int64, uid: String, serviceAccountName: String,
                endpoint: String?, identity: AgentIdentity, approval: ApprovalPolicy?, access: AccessPolicy?,
                recording: RecordingPolicySpec, recordingPolicyName: String?, maskingRules: [NamedMaskingRule],
                credentialExpiresAt: String?) {
        self.namespace = namespace
        self.name = name
        self.generation = generation
        self.uid = uid
        self.serviceAccountName = serviceAccountName
        self.endpoint = endpoint
        self.identity = identity
        self.approval = approval
        self.access = access
        self.recording = recording
        self.recordingPolicyName = recordingPolicyName
        self.maskingRules = maskingRules
        self.credentialExpiresAt = credentialExpiresAt
    }
}

public struct NamedMaskingRule: Codable, Sendable, Hashable {
    public var name: String
    public var spec: MaskingRuleSpec
    public init(name: String, spec: MaskingRuleSpec) {
        self.name = name
        self.spec = spec
    }
}
