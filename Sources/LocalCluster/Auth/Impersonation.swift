/// User impersonation (`Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid`,
/// `Impersonate-Extra-<key>` headers; kubectl's `--as`, `--as-group`, `--as-uid`), as
/// kube-apiserver's impersonation filter does it (apiserver `endpoints/filters/impersonation.go`):
///
/// 1. No impersonation header: the authenticated user acts.
/// 2. Groups, a uid or extras without `Impersonate-User`: 500 `requested ... without
///    impersonating a user`, kube-apiserver's answer.
/// 3. Each requested attribute is authorized for the requester with verb `impersonate`:
///    `users` (name), `serviceaccounts` in the account's namespace (a
///    `system:serviceaccount:<ns>:<name>` user), `groups` (name), `uids` and
///    `userextras/<key>` (group `authentication.k8s.io`, name = value). The first refusal is a
///    403 worded as any RBAC refusal (`... cannot impersonate resource "users" ...`).
/// 4. The request then acts as the impersonated user: the given groups, or for a
///    ServiceAccount with none given `system:serviceaccounts` and
///    `system:serviceaccounts:<ns>`; plus `system:authenticated` unless
///    `system:authenticated` or `system:unauthenticated` was asked for.
///
/// The gateway removes these headers from agents' requests, so an agent can never use them.
import HTTPServing
import Foundation
import KubeCore

struct Impersonation {
    static let userHeader = "Impersonate-User"
    static let groupHeader = "Impersonate-Group"
    static let uidHeader = "Impersonate-Uid"
    static let extraHeaderPrefix = "impersonate-extra-"

    /// The user the request acts as: `requester`, or the impersonated user once every
    /// requested attribute is allowed.
    static func actingUser(for request: HTTPRequest, requester: UserInfo, authorizer: RBACAuthorizer?) throws -> UserInfo {
        let username = request.header(userHeader) ?? ""
        let groups = request.headers[groupHeader]
        let uid = request.header(uidHeader) ?? ""
        var extra: [String: [String]] = [:]
        for (name, value) in request.headers where name.lowercased().hasPrefix(extraHeaderPrefix) {
            let key = String(name.dropFirst(extraHeaderPrefix.count)).lowercased().removingPercentEncoding ?? ""
            extra[key, default: []].append(value)
        }
        if username.isEmpty {
            guard groups.isEmpty, uid.isEmpty, extra.isEmpty else {
                throw APIError(.internalError("requested impersonation of groups, uid or extra attributes without impersonating a user"))
            }
            return requester
        }

        var checks: [AuthorizationAttributes] = []
        let account = UserInfo(username: username).serviceAccount
        if let account {
            checks.append(.resource(verb: "impersonate", resource: "serviceaccounts", namespace: account.namespace, name: account.name))
        } else {
            checks.append(.resource(verb: "impersonate", resource: "users", name: username))
        }
        checks += groups.map { .resource(verb: "impersonate", resource: "groups", name: $0) }
        if !uid.isEmpty {
            checks.append(.resource(verb: "impersonate", group: "authentication.k8s.io", resource: "uids", name: uid))
        }
        for (key, values) in extra.sorted(by: { $0.key < $1.key }) {
            checks += values.map { .resource(verb: "impersonate", group: "authentication.k8s.io", resource: "userextras",
                                             subresource: key, name: $0) }
        }
        if let authorizer {
            for attributes in checks {
                let decision = authorizer.allowed(user: requester, attributes: attributes)
                if !decision.allowed {
                    throw APIError(attributes.forbiddenStatus(user: requester, reason: decision.reason))
                }
            }
        }

        var actingGroups = groups
        if let account, groups.isEmpty {
            actingGroups = ["system:serviceaccounts", "system:serviceaccounts:\(account.namespace)"]
        }
        if !actingGroups.contains("system:authenticated") && !actingGroups.contains("system:unauthenticated") {
            actingGroups.append("system:authenticated")
        }
        return UserInfo(username: username, uid: uid, groups: actingGroups, extra: extra)
    }
}
