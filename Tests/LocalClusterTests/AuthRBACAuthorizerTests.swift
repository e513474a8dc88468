import KubeCore
import XCTest
@testable import LocalCluster

/// RBAC decisions and 403 wording, table-driven over real Role/ClusterRole/binding objects.
final class AuthRBACAuthorizerTests: XCTestCase {
    private func role(_ name: String, namespace: String? = nil, labels: JSONValue? = nil,
                      aggregate: JSONValue? = nil, _ rules: [JSONValue]) -> JSONValue {
        var metadata: JSONValue = ["name": .string(name)]
        if let namespace { metadata.set(.string(namespace), at: ["namespace"]) }
        if let labels { metadata.set(labels, at: ["labels"]) }
        var object: JSONValue = ["apiVersion": "rbac.authorization.k8s.io/v1",
                                 "kind": namespace == nil ? "ClusterRole" : "Role",
                                 "metadata": metadata, "rules": .array(rules)]
        if let aggregate { object.set(["clusterRoleSelectors": [["matchLabels": aggregate]]], at: ["aggregationRule"]) }
        return object
    }

    private func binding(_ name: String, namespace: String? = nil, roleKind: String, role: String,
                         _ subjects: [JSONValue]) -> JSONValue {
        var metadata: JSONValue = ["name": .string(name)]
        if let namespace { metadata.set(.string(namespace), at: ["namespace"]) }
        return ["apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": namespace == nil ? "ClusterRoleBinding" : "RoleBinding",
                "metadata": metadata,
                "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": .string(roleKind), "name": .string(role)],
                "subjects": .array(subjects)]
    }

    private func sa(_ name: String, _ namespace: String? = nil) -> JSONValue {
        var subject: JSONValue = ["kind": "ServiceAccount", "name": .string(name)]
        if let namespace { subject.set(.string(namespace), at: ["namespace"]) }
        return subject
    }

    private func saUser(_ namespace: String, _ name: String) -> UserInfo {
        UserInfo(username: "system:serviceaccount:\(namespace):\(name)", uid: "u1",
                 groups: ["system:serviceaccounts", "system:serviceaccounts:\(namespace)", "system:authenticated"])
    }

    private lazy var snapshot = RBACSnapshot(
        roles: [
            role("pod-reader", namespace: "team-a", [
                ["apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]],
            ]),
            role("one-secret", namespace: "team-a", [
                ["apiGroups": [""], "resources": ["secrets"], "resourceNames": ["gateway-token"], "verbs": ["get"]],
            ]),
        ],
        clusterRoles: [
            role("agc-editor", [
                ["apiGroups": ["agentgate.dev"], "resources": ["*"], "verbs": ["*"]],
            ]),
            role("status-writer", [
                ["apiGroups": ["*"], "resources": ["*/status"], "verbs": ["update", "patch"]],
            ]),
            role("token-creator", [
                ["apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]],
            ]),
            role("metrics-reader", [
                ["nonResourceURLs": ["/metrics", "/debug/*"], "verbs": ["get"]],
            ]),
            role("aggregate-view", aggregate: ["example.dev/aggregate-to-view": "true"], []),
            role("lease-viewer", labels: ["example.dev/aggregate-to-view": "true"], [
                ["apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get"]],
            ]),
        ],
        roleBindings: [
            binding("readers", namespace: "team-a", roleKind: "Role", role: "pod-reader",
                    [sa("reader"), ["kind": "User", "name": "alice"]]),
            binding("secret", namespace: "team-a", roleKind: "Role", role: "one-secret", [sa("reader", "team-a")]),
            binding("agc", namespace: "team-a", roleKind: "ClusterRole", role: "agc-editor",
                    [["kind": "Group", "name": "agc-editors"]]),
            binding("tokens", namespace: "team-a", roleKind: "ClusterRole", role: "token-creator",
                    [sa("operator", "agentgate-system")]),
            binding("dangling", namespace: "team-b", roleKind: "Role", role: "missing-role", [sa("reader", "team-b")]),
        ],
        clusterRoleBindings: [
            binding("status", roleKind: "ClusterRole", role: "status-writer", [sa("operator", "agentgate-system")]),
            binding("metrics", roleKind: "ClusterRole", role: "metrics-reader", [["kind": "User", "name": "prom"]]),
            binding("view", roleKind: "ClusterRole", role: "aggregate-view", [["kind": "User", "name": "viewer"]]),
        ]
    )

    func testDecisionsFollowKubernetesRBACSemantics() {
        let authorizer = RBACAuthorizer(snapshot)
        let reader = saUser("team-a", "reader")
        let operatorSA = saUser("agentgate-system", "operator")
        let alice = UserInfo(username: "alice", groups: ["system:authenticated"])
        let editor = UserInfo(username: "bob", groups: ["agc-editors", "system:authenticated"])
        let prom = UserInfo(username: "prom", groups: ["system:authenticated"])
        let viewer = UserInfo(username: "viewer", groups: ["system:authenticated"])
        let admin = Authenticator.adminUser
        typealias A = AuthorizationAttributes

        let table: [(String, UserInfo, A, Bool)] = [
            ("Role grants listed verb", reader, .resource(verb: "list", resource: "pods", namespace: "team-a"), true),
            ("Role does not grant other verbs", reader, .resource(verb: "delete", resource: "pods", namespace: "team-a", name: "p"), false),
            ("RoleBinding is limited to its namespace", reader, .resource(verb: "list", resource: "pods", namespace: "team-b"), false),
            ("RoleBinding never grants cluster scope", reader, .resource(verb: "list", resource: "pods"), false),
            ("explicit subresource granted", reader, .resource(verb: "get", resource: "pods", subresource: "log", namespace: "team-a", name: "p"), true),
            ("other subresource not granted by parent resource", reader, .resource(verb: "get", resource: "pods", subresource: "exec", namespace: "team-a", name: "p"), false),
            ("User subject", alice, .resource(verb: "watch", resource: "pods", namespace: "team-a"), true),
            ("resourceNames allows the named object", reader, .resource(verb: "get", resource: "secrets", namespace: "team-a", name: "gateway-token"), true),
            ("resourceNames denies other names", reader, .resource(verb: "get", resource: "secrets", namespace: "team-a", name: "other"), false),
            ("resourceNames never allows list", reader, .resource(verb: "list", resource: "secrets", namespace: "team-a"), false),
            ("Group subject with wildcard resources and verbs", editor, .resource(verb: "deletecollection", group: "agentgate.dev", resource: "agentconnections", namespace: "team-a"), true),
            ("wildcard resources include subresources", editor, .resource(verb: "update", group: "agentgate.dev", resource: "agentconnections", subresource: "status", namespace: "team-a", name: "a"), true),
            ("apiGroup must match", editor, .resource(verb: "get", group: "apps", resource: "deployments", namespace: "team-a", name: "d"), false),
            ("RoleBinding to ClusterRole applies only in its namespace", editor, .resource(verb: "get", group: "agentgate.dev", resource: "agentconnections", namespace: "team-b", name: "a"), false),
            ("*/status matches any status subresource", operatorSA, .resource(verb: "patch", group: "apps", resource: "deployments", subresource: "status", namespace: "x", name: "d"), true),
            ("*/status does not match the main resource", operatorSA, .resource(verb: "patch", group: "apps", resource: "deployments", namespace: "x", name: "d"), false),
            ("SA subject from another namespace gets serviceaccounts/token", operatorSA, .resource(verb: "create", resource: "serviceaccounts", subresource: "token", namespace: "team-a", name: "reader"), true),
            ("serviceaccounts/token does not grant serviceaccounts", operatorSA, .resource(verb: "create", resource: "serviceaccounts", namespace: "team-a"), false),
            ("SA subject without namespace means the binding's namespace", saUser("team-b", "reader"), .resource(verb: "list", resource: "pods", namespace: "team-a"), false),
            ("non-resource URL exact", prom, .nonResource(path: "/metrics"), true),
            ("non-resource URL prefix wildcard", prom, .nonResource(path: "/debug/pprof/heap"), true),
            ("non-resource URL verb must match", prom, .nonResource(verb: "post", path: "/metrics"), false),
            ("non-resource URL not granted", reader, .nonResource(path: "/metrics"), false),
            ("discovery allowed to every authenticated user", reader, .nonResource(path: "/apis/agentgate.dev/v1alpha1"), true),
            ("openapi allowed to every authenticated user", reader, .nonResource(path: "/openapi/v3"), true),
            ("version allowed to every authenticated user", reader, .nonResource(path: "/version"), true),
            ("self subject review allowed (system:basic-user)", reader, .resource(verb: "create", group: "authorization.k8s.io", resource: "selfsubjectaccessreviews"), true),
            ("aggregated ClusterRole collects labelled roles", viewer, .resource(verb: "get", group: "coordination.k8s.io", resource: "leases", namespace: "n", name: "l"), true),
            ("denied by default", UserInfo(username: "nobody", groups: ["system:authenticated"]), .resource(verb: "get", resource: "configmaps", namespace: "team-a", name: "c"), false),
            ("system:masters always allowed", admin, .resource(verb: "delete", resource: "namespaces", name: "kube-system"), true),
        ]
        for (behaviour, user, attributes, expected) in table {
            XCTAssertEqual(authorizer.allowed(user: user, attributes: attributes).allowed, expected, behaviour)
        }
    }

    func testAllowReasonNamesBindingRoleAndSubject() {
        let decision = RBACAuthorizer(snapshot).allowed(
            user: saUser("team-a", "reader"), attributes: .resource(verb: "get", resource: "pods", namespace: "team-a", name: "p"))
        XCTAssertEqual(decision.reason,
                       #"RBAC: allowed by RoleBinding "readers/team-a" of Role "pod-reader" to ServiceAccount "reader/team-a""#)
    }

    func testBindingToMissingRoleIsReportedInTheDenyReason() {
        let user = saUser("team-b", "reader")
        let attributes = AuthorizationAttributes.resource(verb: "list", resource: "pods", namespace: "team-b")
        let decision = RBACAuthorizer(snapshot).allowed(user: user, attributes: attributes)
        XCTAssertFalse(decision.allowed)
        XCTAssertEqual(decision.reason, #"RBAC: role.rbac.authorization.k8s.io "missing-role" not found"#)
        XCTAssertEqual(attributes.forbiddenStatus(user: user, reason: decision.reason).message,
                       #"pods is forbidden: User "system:serviceaccount:team-b:reader" cannot list resource "pods" in API group "" in the namespace "team-b": RBAC: role.rbac.authorization.k8s.io "missing-role" not found"#)
    }

    func testSnapshotClosureIsReadOnEveryDecision() {
        let box = LockedSnapshot()
        let authorizer = RBACAuthorizer { box.value }
        let user = UserInfo(username: "alice", groups: ["system:authenticated"])
        let attributes = AuthorizationAttributes.resource(verb: "get", resource: "pods", namespace: "team-a", name: "p")
        XCTAssertFalse(authorizer.allowed(user: user, attributes: attributes).allowed)
        box.value = snapshot
        XCTAssertTrue(authorizer.allowed(user: user, attributes: attributes).allowed)
    }

    func testBootstrapPolicyCanBeTurnedOff() {
        let authorizer = RBACAuthorizer(RBACSnapshot(), includesBootstrapPolicy: false)
        let user = UserInfo(username: "alice", groups: ["system:authenticated"])
        XCTAssertFalse(authorizer.allowed(user: user, attributes: .nonResource(path: "/api")).allowed)
        XCTAssertTrue(RBACAuthorizer(RBACSnapshot()).allowed(user: user, attributes: .nonResource(path: "/api")).allowed)
    }

    func testForbiddenMessagesMatchKubeAPIServer() {
        let user = UserInfo(username: "system:serviceaccount:default:agent")
        let cases: [(AuthorizationAttributes, String)] = [
            (.resource(verb: "get", resource: "secrets", namespace: "default", name: "db"),
             #"secrets "db" is forbidden: User "system:serviceaccount:default:agent" cannot get resource "secrets" in API group "" in the namespace "default""#),
            (.resource(verb: "list", resource: "pods", namespace: "default"),
             #"pods is forbidden: User "system:serviceaccount:default:agent" cannot list resource "pods" in API group "" in the namespace "default""#),
            (.resource(verb: "list", resource: "namespaces"),
             #"namespaces is forbidden: User "system:serviceaccount:default:agent" cannot list resource "namespaces" in API group "" at the cluster scope"#),
            (.resource(verb: "get", group: "apiextensions.k8s.io", resource: "customresourcedefinitions", name: "agentconnections.agentgate.dev"),
             #"customresourcedefinitions.apiextensions.k8s.io "agentconnections.agentgate.dev" is forbidden: User "system:serviceaccount:default:agent" cannot get resource "customresourcedefinitions" in API group "apiextensions.k8s.io" at the cluster scope"#),
            (.resource(verb: "create", resource: "pods", subresource: "exec", namespace: "default", name: "p"),
             #"pods "p" is forbidden: User "system:serviceaccount:default:agent" cannot create resource "pods/exec" in API group "" in the namespace "default""#),
            (.nonResource(path: "/metrics"),
             #"forbidden: User "system:serviceaccount:default:agent" cannot get path "/metrics""#),
        ]
        for (attributes, message) in cases {
            let status = attributes.forbiddenStatus(user: user)
            XCTAssertEqual(status.message, message)
            XCTAssertEqual(status.code, 403)
            XCTAssertEqual(status.reason, "Forbidden")
        }
        let status = cases[3].0.forbiddenStatus(user: user)
        XCTAssertEqual(status.details?.group, "apiextensions.k8s.io")
        XCTAssertEqual(status.details?.kind, "customresourcedefinitions")
        XCTAssertEqual(status.details?.name, "agentconnections.agentgate.dev")
    }

    func testForbiddenMessageEscapesMarkupInPaths() {
        let message = AuthorizationAttributes.nonResource(path: "/<script>&").forbiddenStatus(user: UserInfo(username: "u")).message
        XCTAssertEqual(message, #"forbidden: User "u" cannot get path "/&lt;script&gt;&amp;""#)
    }
}

/// A snapshot the test swaps between decisions, as the server's store changes.
private final class LockedSnapshot: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = RBACSnapshot()
    var value: RBACSnapshot {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}
