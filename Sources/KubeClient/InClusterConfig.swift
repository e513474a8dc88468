import Foundation

/// The configuration of a pod talking to its own cluster.
///
/// Contract: the server is `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT` (IPv6
/// hosts bracketed); the CA is `<root>/ca.crt`; the namespace is `<root>/namespace` (else
/// `default`); the credential is the token file `<root>/token`, re-read whenever it changes
/// (kubelet rotates projected tokens). `root` defaults to the kubelet's mount point and is
/// injectable for tests.
public enum InClusterConfig {
    public static let defaultRoot = "/var/run/secrets/kubernetes.io/serviceaccount"

    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment,
                            root: String = defaultRoot) throws -> KubeConfig {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty else {
            throw KubeConfigError("in-cluster configuration needs KUBERNETES_SERVICE_HOST, which is not set")
        }
        guard let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty else {
            throw KubeConfigError("in-cluster configuration needs KUBERNETES_SERVICE_PORT, which is not set")
        }
        guard Int(port) != nil else {
            throw KubeConfigError("KUBERNETES_SERVICE_PORT \"\(port)\" is not a port number")
        }
        let tokenPath = (root as NSString).appendingPathComponent("token")
        guard FileManager.default.fileExists(atPath: tokenPath) else {
            throw KubeConfigError("in-cluster configuration: service-account token \(tokenPath) does not exist (is automountServiceAccountToken off?)")
        }
        let caPath = (root as NSString).appendingPathComponent("ca.crt")
        guard let ca = FileManager.default.contents(atPath: caPath) else {
            throw KubeConfigError("in-cluster configuration: CA file \(caPath) cannot be read")
        }
        let namespacePath = (root as NSString).appendingPathComponent("namespace")
        let namespace = FileManager.default.contents(atPath: namespacePath)
            .map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
            .flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return KubeConfig(server: "https://\(hostPart):\(port)", namespace: namespace,
                          certificateAuthorityPEM: Array(ca), credentials: .tokenFile(tokenPath),
                          contextName: nil, origin: "in-cluster (\(root))")
    }
}
