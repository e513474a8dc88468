/// What a request asks to do (kube-apiserver's `authorizer.Attributes`), the authorizer's
/// answer, and the 403 that kube-apiserver sends when the answer is no.
///
/// The forbidden wording follows apiserver's `responsewriters.forbiddenMessage` and
/// `apierrors.NewForbidden`:
///   `pods "p" is forbidden: User "u" cannot get resource "pods" in API group "" in the namespace "ns"`
///   `nodes is forbidden: User "u" cannot list resource "nodes" in API group "" at the cluster scope`
///   `forbidden: User "u" cannot get path "/metrics"`
/// followed by `: <reason>` when the authorizer gave one (RBAC names missing roles there).
import KubeCore

public struct AuthorizationAttributes: Sendable, Hashable {
    /// get, list, watch, create, update, patch, delete, deletecollection (resource requests);
    /// get, post, put, delete, ... (lower-cased HTTP method) for non-resource requests.
    public var verb: String
    public var apiGroup: String
    public var apiVersion: String
    public var resource: String
    public var subresource: String
    public var namespace: String
    public var name: String
    public var isResourceRequest: Bool
    /// The URL path; what non-resource rules (`nonResourceURLs`) match.
    public var path: String

    public init(verb: String, apiGroup: String = "", apiVersion: String = "", resource: String = "",
                subresource: String = "", namespace: String = "", name: String = "",
                isResourceRequest: Bool = true, path: String = "") {
        self.verb = verb
        self.apiGroup = apiGroup
        self.apiVersion = apiVersion
        self.resource = resource
        self.subresource = subresource
        self.namespace = namespace
        self.name = name
        self.isResourceRequest = isResourceRequest
        self.path = path
    }

    /// A request on a resource (`/api/v1/namespaces/ns/pods/p/log` → get pods/log "p" in ns).
    public static func resource(verb: String, group: String = "", version: String = "v1", resource: String,
                                subresource: String = "", namespace: String = "", name: String = "",
                                path: String = "") -> AuthorizationAttributes {
        AuthorizationAttributes(verb: verb, apiGroup: group, apiVersion: version, resource: resource,
                                subresource: subresource, namespace: namespace, name: name,
                                isResourceRequest: true, path: path)
    }

    /// A request on a non-resource URL (`/version`, `/healthz`, `/openapi/v3`).
    public static func nonResource(verb: String = "get", path: String) -> AuthorizationAttributes {
        AuthorizationAttributes(verb: verb, isResourceRequest: false, path: path)
    }

    /// `resource/subresource`, the form RBAC rules name.
    public var combinedResource: String {
        subresource.isEmpty ? resource : "\(resource)/\(subresource)"
    }
}

public struct AuthorizationDecision: Sendable, Hashable {
    public var allowed: Bool
    /// Why: which binding allowed it, or (when denied) RBAC's errors, e.g. a binding whose role
    /// does not exist. Empty when denied for want of any matching rule, as RBAC does.
    public var reason: String

    public init(allowed: Bool, reason: String) {
        self.allowed = allowed
        self.reason = reason
    }

    public static func allow(_ reason: String) -> AuthorizationDecision { .init(allowed: true, reason: reason) }
    public static func deny(_ reason: String) -> AuthorizationDecision { .init(allowed: false, reason: reason) }
}

extension AuthorizationAttributes {
    /// The part of the 403 message after `<resource> "<name>" is forbidden: `, before any reason.
    public func forbiddenMessage(user: UserInfo) -> String {
        let text: String
        if !isResourceRequest {
            text = "User \(quoted(user.username)) cannot \(verb) path \(quoted(path))"
        } else if !namespace.isEmpty {
            text = "User \(quoted(user.username)) cannot \(verb) resource \(quoted(combinedResource))"
                + " in API group \(quoted(apiGroup)) in the namespace \(quoted(namespace))"
        } else {
            text = "User \(quoted(user.username)) cannot \(verb) resource \(quoted(combinedResource))"
                + " in API group \(quoted(apiGroup)) at the cluster scope"
        }
        // apiserver HTML-escapes this part so a crafted path cannot inject markup.
        return text.replacingOccurrences(of: "&", with: "&amp;")
            .replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    /// The 403 `metav1.Status` kube-apiserver returns for a denied request.
    public func forbiddenStatus(user: UserInfo, reason: String = "") -> Status {
        var detail = forbiddenMessage(user: user)
        if !reason.isEmpty { detail += ": \(reason)" }
        let groupResource: String
        if !isResourceRequest || (apiGroup.isEmpty && resource.isEmpty) {
            groupResource = ""
        } else {
            groupResource = apiGroup.isEmpty ? resource : "\(resource).\(apiGroup)"
        }
        let message: String
        if groupResource.isEmpty {
            message = "forbidden: \(detail)"
        } else if name.isEmpty || !isResourceRequest {
            message = "\(groupResource) is forbidden: \(detail)"
        } else {
            message = "\(groupResource) \(quoted(name)) is forbidden: \(detail)"
        }
        let resourceKind = isResourceRequest ? resource : ""
        let objectName = isResourceRequest ? name : ""
        return Status(message: message, reason: "Forbidden",
                      details: StatusDetails(name: objectName.isEmpty ? nil : objectName,
                                             group: apiGroup.isEmpty || !isResourceRequest ? nil : apiGroup,
                                             kind: resourceKind.isEmpty ? nil : resourceKind),
                      code: 403)
    }
}

/// Go's `%q` for the strings that appear here (names, paths): quotes and escapes `"` and `\`.
func quoted(_ value: String) -> String {
    "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}
