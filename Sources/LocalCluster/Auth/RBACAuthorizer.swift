/// Kubernetes RBAC over the rbac.authorization.k8s.io/v1 objects in the store.
///
/// Contract (as plugin/pkg/auth/authorizer/rbac):
/// - Members of `system:masters` are always allowed (kube-apiserver's privileged-group shortcut).
/// - A ClusterRoleBinding grants its ClusterRole's rules everywhere; a RoleBinding grants its
///   Role's (same namespace) or ClusterRole's rules only in the binding's namespace, so a
///   cluster-scoped request is never allowed by a RoleBinding.
/// - Subjects: `User` by name, `Group` by membership, `ServiceAccount` by
///   `system:serviceaccount:<ns>:<name>` where `<ns>` defaults to the binding's namespace.
/// - A rule matches a resource request when verb, apiGroup, resource and resourceName match:
///   `*` matches anything; resources are `resource` or `resource/subresource`, and
///   `*/subresource` matches that subresource of any resource; an empty `resourceNames` matches
///   any name, a non-empty one only requests that carry one of those names (so never list or
///   create). Non-resource requests match `nonResourceURLs` exactly, by `*`, or by a trailing
///   `*` prefix.
/// - ClusterRoles with an `aggregationRule` also get the rules of the ClusterRoles whose labels
///   match a selector's `matchLabels` (the aggregation controller's result, computed on read).
/// - Nothing matching → denied. The reason is empty, or `RBAC: ...` listing bindings whose role
///   is missing, worded as RBAC does; it is appended to the 403 message.
/// - The bootstrap ClusterRoles/bindings kube-apiserver creates (cluster-admin, system:discovery,
///   system:basic-user, system:public-info-viewer) apply unless the snapshot has objects of the
///   same names; `RBACAuthorizer.bootstrapPolicy` gives them to the server to seed its store.
import KubeCore

/// The RBAC objects the decision is made from, as the store holds them.
public struct RBACSnapshot: Sendable {
    public var roles: [JSONValue]
    public var clusterRoles: [JSONValue]
    public var roleBindings: [JSONValue]
    public var clusterRoleBindings: [JSONValue]

    public init(roles: [JSONValue] = [], clusterRoles: [JSONValue] = [],
                roleBindings: [JSONValue] = [], clusterRoleBindings: [JSONValue] = []) {
        self.roles = roles
        self.clusterRoles = clusterRoles
        self.roleBindings = roleBindings
        self.clusterRoleBindings = clusterRoleBindings
    }
}

public struct RBACAuthorizer: Sendable {
    public static let privilegedGroup = "system:masters"

    /// Returns the current RBAC objects; called once per decision.
    public let snapshot: @Sendable () -> RBACSnapshot
    public let includesBootstrapPolicy: Bool

    public init(includesBootstrapPolicy: Bool = true, snapshot: @escaping @Sendable () -> RBACSnapshot) {
        self.snapshot = snapshot
        self.includesBootstrapPolicy = includesBootstrapPolicy
    }

    /// A fixed snapshot (tests, or a server that rebuilds the authorizer on RBAC changes).
    public init(_ fixed: RBACSnapshot, includesBootstrapPolicy: Bool = true) {
        self.init(includesBootstrapPolicy: includesBootstrapPolicy) { fixed }
    }

    public func allowed(user: UserInfo, attributes: AuthorizationAttributes) -> AuthorizationDecision {
        if user.groups.contains(Self.privilegedGroup) {
            return .allow("user is in group \"\(Self.privilegedGroup)\"")
        }
        let policy = PolicyIndex(includesBootstrapPolicy ? snapshot().withBootstrapPolicy() : snapshot())
        var errors: [String] = []

        for binding in policy.clusterRoleBindings {
            guard let subject = matchingSubject(binding, user: user, bindingNamespace: "") else { continue }
            let roleName = binding[path: ["roleRef", "name"]]?.stringValue ?? ""
            guard binding[path: ["roleRef", "kind"]]?.stringValue == "ClusterRole",
                  let rules = policy.clusterRoleRules(named: roleName) else {
                errors.append("clusterrole.rbac.authorization.k8s.io \(quoted(roleName)) not found")
                continue
            }
            if rules.contains(where: { $0.allows(attributes) }) {
                return .allow("RBAC: allowed by ClusterRoleBinding \(quoted(objectName(binding))) of ClusterRole "
                              + "\(quoted(roleName)) to \(subject)")
            }
        }

        if !attributes.namespace.isEmpty {
            for binding in policy.roleBindings where objectNamespace(binding) == attributes.namespace {
                guard let subject = matchingSubject(binding, user: user, bindingNamespace: attributes.namespace) else {
                    continue
                }
                let roleKind = binding[path: ["roleRef", "kind"]]?.stringValue ?? ""
                let roleName = binding[path: ["roleRef", "name"]]?.stringValue ?? ""
                let rules: [PolicyRule]?
                switch roleKind {
                case "Role": rules = policy.roleRules(namespace: attributes.namespace, named: roleName)
                case "ClusterRole": rules = policy.clusterRoleRules(named: roleName)
                default: rules = nil
                }
                guard let rules else {
                    let resource = roleKind == "ClusterRole" ? "clusterrole" : "role"
                    errors.append("\(resource).rbac.authorization.k8s.io \(quoted(roleName)) not found")
                    continue
                }
                if rules.contains(where: { $0.allows(attributes) }) {
                    return .allow("RBAC: allowed by RoleBinding \(quoted(objectName(binding) + "/" + attributes.namespace))"
                                  + " of \(roleKind) \(quoted(roleName)) to \(subject)")
                }
            }
        }

        switch errors.count {
        case 0: return .deny("")
        case 1: return .deny("RBAC: \(errors[0])")
        default: return .deny("RBAC: [" + errors.joined(separator: ", ") + "]")
        }
    }

    /// Every rule granted to `user` in `namespace` (ClusterRoleBindings' everywhere, the
    /// namespace's RoleBindings'), for SelfSubjectRulesReview, with RBAC's errors for bindings
    /// whose role is missing (the review is then `incomplete`, as kube-apiserver reports it).
    func rules(for user: UserInfo, namespace: String) -> (rules: [PolicyRule], errors: [String]) {
        let policy = PolicyIndex(includesBootstrapPolicy ? snapshot().withBootstrapPolicy() : snapshot())
        var rules: [PolicyRule] = []
        var errors: [String] = []
        for binding in policy.clusterRoleBindings where matchingSubject(binding, user: user, bindingNamespace: "") != nil {
            let roleName = binding[path: ["roleRef", "name"]]?.stringValue ?? ""
            if let granted = policy.clusterRoleRules(named: roleName) {
                rules += granted
            } else {
                errors.append("clusterrole.rbac.authorization.k8s.io \(quoted(roleName)) not found")
            }
        }
        guard !namespace.isEmpty else { return (rules, errors) }
        for binding in policy.roleBindings where objectNamespace(binding) == namespace {
            guard matchingSubject(binding, user: user, bindingNamespace: namespace) != nil else { continue }
            let roleKind = binding[path: ["roleRef", "kind"]]?.stringValue ?? ""
            let roleName = binding[path: ["roleRef", "name"]]?.stringValue ?? ""
            let granted = roleKind == "Role" ? policy.roleRules(namespace: namespace, named: roleName)
                : policy.clusterRoleRules(named: roleName)
            if let granted {
                rules += granted
            } else {
                errors.append("\(roleKind == "Role" ? "role" : "clusterrole").rbac.authorization.k8s.io \(quoted(roleName)) not found")
            }
        }
        return (rules, errors)
    }

    /// The first subject of `binding` that names `user`, described as RBAC's reasons do.
    private func matchingSubject(_ binding: JSONValue, user: UserInfo, bindingNamespace: String) -> String? {
        for subject in binding["subjects"]?.arrayValue ?? [] {
            let kind = subject["kind"]?.stringValue ?? ""
            let name = subject["name"]?.stringValue ?? ""
            switch kind {
            case "User":
                if name == user.username { return "User \(quoted(name))" }
            case "Group":
                if user.groups.contains(name) { return "Group \(quoted(name))" }
            case "ServiceAccount":
                let declared = subject["namespace"]?.stringValue ?? ""
                let namespace = declared.isEmpty ? bindingNamespace : declared
                guard !namespace.isEmpty, !name.isEmpty else { continue }
                if user.username == UserInfo.serviceAccountUsername(namespace: namespace, name: name) {
                    return "ServiceAccount \(quoted(name + "/" + namespace))"
                }
            default:
                continue
            }
        }
        return nil
    }
}

private func objectName(_ object: JSONValue) -> String {
    object[path: ["metadata", "name"]]?.stringValue ?? ""
}

private func objectNamespace(_ object: JSONValue) -> String {
    object[path: ["metadata", "namespace"]]?.stringValue ?? ""
}

/// One `rules[]` entry of a Role or ClusterRole.
struct PolicyRule: Sendable, Hashable {
    var verbs: [String]
    var apiGroups: [String]
    var resources: [String]
    var resourceNames: [String]
    var nonResourceURLs: [String]

    init(_ json: JSONValue) {
        func strings(_ key: String) -> [String] { json[key]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        verbs = strings("verbs")
        apiGroups = strings("apiGroups")
        resources = strings("resources")
        resourceNames = strings("resourceNames")
        nonResourceURLs = strings("nonResourceURLs")
    }

    func allows(_ request: AuthorizationAttributes) -> Bool {
        guard verbs.contains("*") || verbs.contains(request.verb) else { return false }
        if !request.isResourceRequest {
            return nonResourceURLs.contains { url in
                url == "*" || url == request.path
                    || (url.hasSuffix("*") && request.path.hasPrefix(String(url.dropLast())))
            }
        }
        guard apiGroups.contains("*") || apiGroups.contains(request.apiGroup) else { return false }
        let combined = request.combinedResource
        let resourceMatches = resources.contains { resource in
            resource == "*" || resource == combined
                || (!request.subresource.isEmpty && resource == "*/\(request.subresource)")
        }
        guard resourceMatches else { return false }
        return resourceNames.isEmpty || resourceNames.contains(request.name)
    }
}

/// The snapshot's objects indexed by name, with ClusterRole aggregation resolved.
struct PolicyIndex {
    let clusterRoleBindings: [JSONValue]
    let roleBindings: [JSONValue]
    private let clusterRoles: [String: JSONValue]
    private let roles: [String: JSONValue]

    init(_ snapshot: RBACSnapshot) {
        clusterRoleBindings = snapshot.clusterRoleBindings
        roleBindings = snapshot.roleBindings
        var clusterRoles: [String: JSONValue] = [:]
        for role in snapshot.clusterRoles { clusterRoles[objectName(role)] = role }
        self.clusterRoles = clusterRoles
        var roles: [String: JSONValue] = [:]
        for role in snapshot.roles { roles[objectNamespace(role) + "/" + objectName(role)] = role }
        self.roles = roles
    }

    func roleRules(namespace: String, named name: String) -> [PolicyRule]? {
        guard let role = roles[namespace + "/" + name] else { return nil }
        return Self.rules(of: role)
    }

    func clusterRoleRules(named name: String) -> [PolicyRule]? {
        guard let role = clusterRoles[name] else { return nil }
        var rules = Self.rules(of: role)
        let selectors = role[path: ["aggregationRule", "clusterRoleSelectors"]]?.arrayValue ?? []
        guard !selectors.isEmpty else { return rules }
        for (otherName, other) in clusterRoles.sorted(by: { $0.key < $1.key }) where otherName != name {
            let labels = other[path: ["metadata", "labels"]]?.objectValue ?? [:]
            let selected = selectors.contains { selector in
                let wanted = selector["matchLabels"]?.objectValue ?? [:]
                // An empty selector would select every role; the aggregation controller ignores it too.
                return !wanted.isEmpty && wanted.allSatisfy { labels[$0.key] == $0.value }
            }
            if selected { rules += Self.rules(of: other) }
        }
        return rules
    }

    private static func rules(of role: JSONValue) -> [PolicyRule] {
        (role["rules"]?.arrayValue ?? []).map(PolicyRule.init)
    }
}
