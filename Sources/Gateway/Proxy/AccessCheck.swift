import AgentGateAPI
import KubeCore

/// `spec.access`, applied before forwarding (on top of Kubernetes RBAC).
///
/// Contract (AgentGateAPI `AccessPolicy`): a matching Deny rule always refuses; when any
/// Allow rule exists, a request must match one of them. A matcher list that is absent or
/// contains `*` matches anything; `resources` may name `resource/subresource`. Non-resource
/// requests (discovery: `/api`, `/apis`, `/version`, `/openapi/...`) are matched only by
/// verb, so clients can still discover the API. The refusal names the rule.
///
/// Built in, whatever the rules: a write (create, update, patch, delete, deletecollection) to
/// an `agentgate.io` resource is refused unless an Allow rule names the group `agentgate.io`
/// itself (a `*` does not count). An agent whose ServiceAccount may edit AgentConnections or
/// MaskingRules would otherwise loosen its own approval, access or masking rules through the
/// gateway that enforces them.
public enum AccessCheck {
    public enum Decision: Sendable, Equatable {
        case allowed
        case denied(String)
    }

    public static func evaluate(_ policy: AccessPolicy?, _ info: RequestInfo) -> Decision {
        if !info.isResourceRequest { return .allowed }
        if info.apiGroup.hasSameBytes(as: AgentGateGroup.name), RequestMatcher.writeVerbs.contains(info.verb),
           !(policy?.rules ?? []).contains(where: { rule in
               rule.action == .allow && (rule.apiGroups ?? []).contains { $0.hasSameBytes(as: AgentGateGroup.name) } && matches(rule, info)
           }) {
            return .denied("\(info.verb) \(info.resource) is refused through an agent endpoint: an agent may not change the AgentGate resources that govern it; "
                + "a spec.access Allow rule naming apiGroup \(AgentGateGroup.name) permits it")
        }
        guard let rules = policy?.rules, !rules.isEmpty else { return .allowed }
        for rule in rules where rule.action == .deny && matches(rule, info) {
            return .denied("denied by spec.access rule \"\(rule.name)\" of this connection")
        }
        let allows = rules.filter { $0.action == .allow }
        if allows.isEmpty || allows.contains(where: { matches($0, info) }) { return .allowed }
        let what = info.subresource.isEmpty ? info.resource : "\(info.resource)/\(info.subresource)"
        return .denied("\(info.verb) \(what) is not allowed by any spec.access Allow rule of this connection (rules: \(allows.map(\.name).joined(separator: ", ")))")
    }

    static func matches(_ rule: AccessRule, _ info: RequestInfo) -> Bool {
        RequestMatcher.matches(verbs: rule.verbs, apiGroups: rule.apiGroups, resources: rule.resources,
                               subresources: rule.subresources, namespaces: rule.namespaces, info)
    }
}
