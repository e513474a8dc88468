import KubeCore

/// The 405 of a method kube-apiserver has no route for on a connect subresource (the table is
/// ``RequestInfo/connectMethods``, shared with the gateway).
enum ConnectMethods {
    /// Throws the 405 kube-apiserver answers for a method with no route on a connect subresource.
    static func check(_ method: String, info: RequestInfo) throws {
        guard let allowed = info.connectMethods, !allowed.contains(method.uppercased()) else { return }
        throw APIError(.methodNotAllowed("the server does not allow this method on the requested resource"))
    }
}
