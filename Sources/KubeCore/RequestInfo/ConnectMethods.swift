/// The HTTP methods kube-apiserver routes for the connect subresources (each connecter's
/// `ConnectMethods`): `pods/exec`, `pods/attach` and `pods/portforward` take GET and POST
/// only; the `proxy` subresources of pods, services and nodes take GET, POST, PUT, PATCH,
/// DELETE, HEAD and OPTIONS. Any other method has no route there (405 MethodNotAllowed), with
/// or without an `Upgrade` header, so a PUT can never start an exec. The embedded API server
/// and the gateway both answer by this one table.
extension RequestInfo {
    public static let streamingConnectMethods: Set<String> = ["GET", "POST"]
    public static let proxyConnectMethods: Set<String> = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

    /// The methods routed for this request's connect subresource; nil when it addresses none.
    public var connectMethods: Set<String>? {
        guard isResourceRequest, apiGroup.isEmpty else { return nil }
        switch (resource, subresource) {
        case ("pods", "exec"), ("pods", "attach"), ("pods", "portforward"): return Self.streamingConnectMethods
        case ("pods", "proxy"), ("services", "proxy"), ("nodes", "proxy"): return Self.proxyConnectMethods
        default: return nil
        }
    }
}
