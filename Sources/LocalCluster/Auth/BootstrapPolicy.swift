/// The default RBAC objects kube-apiserver creates at start (bootstrappolicy), limited to
/// what the local cluster's clients rely on:
/// - `cluster-admin` (everything) bound to group `system:masters`;
/// - `system:discovery` (`/api`, `/apis`, `/openapi`, `/version`, health) and
///   `system:basic-user` (self subject access/rules reviews) bound to `system:authenticated`;
/// - `system:public-info-viewer` (`/version`, health) bound to `system:authenticated` and
///   `system:unauthenticated`.
/// They carry the same labels and annotations as kube-apiserver's, so `kubectl get
/// clusterroles` shows familiar objects once the server seeds them into its store.
import KubeCore

extension RBACAuthorizer {
    public static let bootstrapPolicy: RBACSnapshot = {
        let rbacGroup = "rbac.authorization.k8s.io"
        func metadata(_ name: String) -> JSONValue {
            [
                "name": .string(name),
                "labels": ["kubernetes.io/bootstrapping": "rbac-defaults"],
                "annotations": ["rbac.authorization.kubernetes.io/autoupdate": "true"],
            ]
        }
        func clusterRole(_ name: String, _ rules: [JSONValue]) -> JSONValue {
            ["apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": metadata(name), "rules": .array(rules)]
        }
        func binding(_ name: String, groups: [String]) -> JSONValue {
            ["apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": metadata(name),
             "roleRef": ["apiGroup": .string(rbacGroup), "kind": "ClusterRole", "name": .string(name)],
             "subjects": .array(groups.map { ["apiGroup": .string(rbacGroup), "kind": "Group", "name": .string($0)] })]
        }
        func strings(_ values: [String]) -> JSONValue { .array(values.map { .string($0) }) }
        let healthAndVersion = ["/healthz", "/livez", "/readyz", "/version", "/version/"]

        return RBACSnapshot(
            clusterRoles: [
                clusterRole("cluster-admin", [
                    ["apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]],
                    ["nonResourceURLs": ["*"], "verbs": ["*"]],
                ]),
                clusterRole("system:discovery", [
                    ["nonResourceURLs": strings(["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                                                 "/openapi", "/openapi/*", "/readyz", "/version", "/version/"]),
                     "verbs": ["get"]],
                ]),
                clusterRole("system:basic-user", [
                    ["apiGroups": ["authorization.k8s.io"],
                     "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]],
                    ["apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]],
                ]),
                clusterRole("system:public-info-viewer", [
                    ["nonResourceURLs": strings(healthAndVersion), "verbs": ["get"]],
                ]),
            ],
            clusterRoleBindings: [
                binding("cluster-admin", groups: ["system:masters"]),
                binding("system:discovery", groups: ["system:authenticated"]),
                binding("system:basic-user", groups: ["system:authenticated"]),
                binding("system:public-info-viewer", groups: ["system:authenticated", "system:unauthenticated"]),
            ]
        )
    }()
}

extension RBACSnapshot {
    /// This snapshot plus the bootstrap objects whose names it does not already hold.
    func withBootstrapPolicy() -> RBACSnapshot {
        func names(_ objects: [JSONValue]) -> Set<String> {
            Set(objects.compactMap { $0[path: ["metadata", "name"]]?.stringValue })
        }
        var merged = self
        let roleNames = names(clusterRoles)
        let bindingNames = names(clusterRoleBindings)
        let bootstrap = RBACAuthorizer.bootstrapPolicy
        merged.clusterRoles += bootstrap.clusterRoles.filter {
            !roleNames.contains($0[path: ["metadata", "name"]]?.stringValue ?? "")
        }
        merged.clusterRoleBindings += bootstrap.clusterRoleBindings.filter {
            !bindingNames.contains($0[path: ["metadata", "name"]]?.stringValue ?? "")
        }
        return merged
    }
}
