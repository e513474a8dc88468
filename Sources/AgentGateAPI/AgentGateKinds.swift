/// The names of the three AgentGate kinds, as their CRDs declare them. The embedded API
/// server, the operator's informers, RBAC and `kubectl get agc` all rely on these exact
/// strings; the CRD tests check them against the manifests.
public struct AgentGateKind: Sendable, Hashable {
    public var kind: String
    /// Resource name in URLs (`/apis/agentgate.io/v1alpha1/namespaces/NS/agentconnections`).
    public var plural: String
    public var singular: String
    public var shortName: String
    public var listKind: String
    public var group: String { AgentGateGroup.name }
    public var version: String { AgentGateGroup.version }
    /// `agentconnections.agentgate.io`, the CRD's `metadata.name`.
    public var crdName: String { "\(plural).\(group)" }
    /// Every AgentGate kind is namespaced.
    public var namespaced: Bool { true }
    /// The `kubectl get` category shared by all three kinds (`kubectl get agentgate`).
    public var categories: [String] { [AgentGateKinds.category] }
}

public enum AgentGateKinds {
    public static let category = "agentgate"

    public static let agentConnection = AgentGateKind(
        kind: "AgentConnection", plural: "agentconnections", singular: "agentconnection",
        shortName: "agc", listKind: "AgentConnectionList")
    public static let maskingRule = AgentGateKind(
        kind: "MaskingRule", plural: "maskingrules", singular: "maskingrule",
        shortName: "mr", listKind: "MaskingRuleList")
    public static let recordingPolicy = AgentGateKind(
        kind: "RecordingPolicy", plural: "recordingpolicies", singular: "recordingpolicy",
        shortName: "rp", listKind: "RecordingPolicyList")

    public static let all: [AgentGateKind] = [agentConnection, maskingRule, recordingPolicy]

    /// The kind with this `kind`, plural, singular or short name (case-insensitive, as kubectl matches).
    public static func lookup(_ name: String) -> AgentGateKind? {
        let lowered = name.lowercased()
        return all.first {
            $0.kind.lowercased() == lowered || $0.plural == lowered || $0.singular == lowered || $0.shortName == lowered
        }
    }
}
