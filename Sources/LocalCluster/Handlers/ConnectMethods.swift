import KubeCore

/// The HTTP methods kube-apiserver routes for the connect subresources (each connecter's
/// `ConnectMethods`): `pods/exec`, `pods/attach` and `pods/portforward` take GET and POST
/// only; the `proxy` subresources of pods, services and nodes take GET, POST, PUT, PATCH,
/// DELETE, HEAD and OPTIONS. Any other method has no route there: 405 MethodNotAllowed,
/// with or without an `Upgrade` header, so a PUT cannot start an exec.
enum ConnectMethods {
    static let streaming: Set<String> = ["GET", "POST"]
    static let proxy: Set<String> = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

    /// The methods routed for `resource/subresource` of the core group; nil when it is not a
    /// connect subresource.
    static func allowed(group: String, resource: String, subresource: String) -> Set<String>? {
        guard group.isEmpty else { return nil }
        switch (resource, subresource) {
        case ("pods", "exec"), ("pods", "attach"), ("pods", "portforward"): return streaming
        case ("pods", "proxy"), ("services", "proxy"), ("nodes", "proxy"): return proxy
        default: return nil
        }
    }

    /// Throws the 405 kube-apiserver answers for a method with no route on a connect subresource.
    static func check(_ method: String, info: RequestInfo) throws {
        guard let allowed = allowed(group: info.apiGroup, resource: info.resource, subresource: info.subresource),
              !allowed.contains(method.uppercased()) else { return }
        throw APIError(.methodNotAllowed("the server does not allow this method on the requested resource"))
    }
}
