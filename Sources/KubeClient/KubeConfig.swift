import Foundation
import KubeCore

/// Everything a client needs to reach one API server as one identity: the resolved form of a
/// kubeconfig context, or of the in-cluster service-account configuration.
///
/// Contract for ``load(kubeconfigPath:context:environment:homeDirectory:inClusterRoot:)``
/// (kubectl's precedence):
/// 1. `kubeconfigPath` (the `--kubeconfig` flag), when given: exactly that file, which must exist;
/// 2. else `KUBECONFIG`: its files (`:`-separated) merged, first file wins per cluster/user/context
///    name and for `current-context`; files that do not exist are skipped, as kubectl does;
/// 3. else `~/.kube/config`, when it exists;
/// 4. else in-cluster (`KUBERNETES_SERVICE_HOST`/`_PORT` and the service-account files).
///
/// `context` (the `--context` flag) overrides `current-context`. File references
/// (`certificate-authority`, `client-certificate`, `client-key`, `tokenFile`, an exec `command`
/// with a `/`) are resolved relative to the file that declares them, and read at load time,
/// except token files, which are re-read when they change. Every error names the file, the
/// context and the field at fault.
public struct KubeConfig: Sendable {
    /// How the client proves who it is, besides a client certificate.
    public enum Credentials: Sendable, Hashable {
        case none
        case token(String)
        /// A file holding a bearer token; re-read whenever it changes (projected SA tokens rotate).
        case tokenFile(String)
        case basic(username: String, password: String)
        /// A client-go credential plugin (`users[].user.exec`).
        case exec(ExecConfig)
    }

    /// `https://host:port` (a path prefix is kept: `https://gateway/c/ns/name`).
    public var server: String
    /// The namespace of the context (`default` when unset).
    public var namespace: String
    /// PEM of the CAs to trust; nil uses the system trust store.
    public var certificateAuthorityPEM: [UInt8]?
    public var insecureSkipTLSVerify: Bool
    /// SNI / verified name when it differs from the server's host (`tls-server-name`).
    public var tlsServerName: String?
    public var clientCertificatePEM: [UInt8]?
    public var clientKeyPEM: [UInt8]?
    public var credentials: Credentials
    /// The kubeconfig context this came from; nil for in-cluster or hand-built configs.
    public var contextName: String?
    /// Where this came from, for messages: `context "dev" in /home/me/.kube/config`, `in-cluster`.
    public var origin: String

    public init(server: String, namespace: String = "default", certificateAuthorityPEM: [UInt8]? = nil,
                insecureSkipTLSVerify: Bool = false, tlsServerName: String? = nil,
                clientCertificatePEM: [UInt8]? = nil, clientKeyPEM: [UInt8]? = nil,
                credentials: Credentials = .none, contextName: String? = nil, origin: String = "explicit configuration") {
        self.server = server
        self.namespace = namespace
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.tlsServerName = tlsServerName
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
        self.credentials = credentials
        self.contextName = contextName
        self.origin = origin
    }

    /// Resolves the configuration with kubectl's precedence (see the type's documentation).
    ///
    /// - Parameters:
    ///   - kubeconfigPath: the `--kubeconfig` flag; nil or empty when not given.
    ///   - context: the `--context` flag; nil or empty for the file's `current-context`.
    ///   - environment: where `KUBECONFIG`, `HOME` and `KUBERNETES_SERVICE_*` are read (tests inject).
    ///   - homeDirectory: overrides `$HOME` for `~/.kube/config`.
    ///   - inClusterRoot: the service-account directory (tests inject a temporary one).
    public static func load(kubeconfigPath: String?, context: String?,
                            environment: [String: String] = ProcessInfo.processInfo.environment,
                            homeDirectory: String? = nil,
                            inClusterRoot: String = InClusterConfig.defaultRoot) throws -> KubeConfig {
        let context = (context?.isEmpty ?? true) ? nil : context
        if let path = kubeconfigPath, !path.isEmpty {
            guard FileManager.default.fileExists(atPath: path) else {
                throw KubeConfigError("kubeconfig \(path) (from --kubeconfig) does not exist")
            }
            return try fromKubeconfigFiles([path], context: context)
        }
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            let files = list.split(separator: ":").map(String.init).filter { !$0.isEmpty }
            let existing = files.filter { FileManager.default.fileExists(atPath: $0) }
            if !existing.isEmpty { return try fromKubeconfigFiles(existing, context: context) }
        }
        let home = homeDirectory ?? environment["HOME"] ?? NSHomeDirectory()
        let defaultPath = (home as NSString).appendingPathComponent(".kube/config")
        if FileManager.default.fileExists(atPath: defaultPath) {
            return try fromKubeconfigFiles([defaultPath], context: context)
        }
        if environment["KUBERNETES_SERVICE_HOST"] != nil {
            return try InClusterConfig.load(environment: environment, root: inClusterRoot)
        }
        var tried: [String] = []
        if let list = environment["KUBECONFIG"], !list.isEmpty { tried.append("KUBECONFIG=\(list)") }
        tried.append(defaultPath)
        tried.append("in-cluster (KUBERNETES_SERVICE_HOST is not set)")
        throw KubeConfigError("no Kubernetes configuration found; tried \(tried.joined(separator: ", ")); pass --kubeconfig")
    }

    /// Merges kubeconfig files (first wins per name) and resolves `context` (or `current-context`).
    public static func fromKubeconfigFiles(_ paths: [String], context: String? = nil) throws -> KubeConfig {
        var merged = KubeconfigFile.empty
        for path in paths {
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw KubeConfigError("cannot read kubeconfig \(path): \(error.localizedDescription)")
            }
            merged.merge(try KubeconfigFile(yaml: text, path: path))
        }
        return try merged.resolve(context: context)
    }

    /// Parses one kubeconfig given as text; relative file references resolve against `directory`.
    public static func fromKubeconfig(yaml: String, context: String? = nil, source: String = "<inline kubeconfig>",
                                      directory: String = FileManager.default.currentDirectoryPath) throws -> KubeConfig {
        let file = try KubeconfigFile(yaml: yaml, path: source, directory: directory)
        return try file.resolve(context: context)
    }
}

/// A client-go credential plugin: run `command args...` with `env` added to our environment; it
/// prints an `ExecCredential` whose `status.token` is used until `status.expirationTimestamp`.
public struct ExecConfig: Sendable, Hashable {
    public var apiVersion: String
    public var command: String
    public var args: [String]
    public var env: [String: String]
    public var installHint: String?
    /// Where this was declared, for error messages.
    public var origin: String

    public init(apiVersion: String = "client.authentication.k8s.io/v1", command: String, args: [String] = [],
                env: [String: String] = [:], installHint: String? = nil, origin: String = "exec plugin") {
        self.apiVersion = apiVersion
        self.command = command
        self.args = args
        self.env = env
        self.installHint = installHint
        self.origin = origin
    }
}
