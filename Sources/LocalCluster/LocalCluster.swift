import HTTPServing
import Foundation
import KubeCore
import KubeMachinery
import Logging
import NIOHTTP1
import NIOSSL

/// An embedded, in-memory Kubernetes API server on loopback: what the tests and
/// `agentgate dev` run against. Start it, point kubectl at ``adminKubeconfig()``, stop it.
///
/// With a data directory, the CA, the ServiceAccount signing key and the admin token are
/// kept there (so kubeconfigs stay valid across restarts) and objects are snapshotted to
/// `state.json` on stop and restored on start.
public final class LocalCluster: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var dataDirectory: URL?
        public var host: String = "127.0.0.1"
        /// 0 picks a free port.
        public var port: Int = 16443
        /// HTTPS with a generated CA; plain HTTP when false (loopback only).
        public var useTLS: Bool = true
        /// Watch history kept for resuming (older resourceVersions get 410 Gone).
        public var watchHistory: Int = 10_000
        /// CRD manifests (YAML) created at start.
        public var customResourceDefinitions: [String] = []
        /// Restore and save objects in `<dataDirectory>/state.json`.
        public var persistState: Bool = false
        public var bookmarkInterval: Duration = .seconds(30)
        /// Run workloads kwok-style: a Node, and the controllers and kubelet that turn
        /// Deployments, StatefulSets and Jobs into running pods (``WorkloadControllers``).
        public var runsWorkloads: Bool = true

        public init(dataDirectory: URL? = nil, port: Int = 16443, useTLS: Bool = true) {
            self.dataDirectory = dataDirectory
            self.port = port
            self.useTLS = useTLS
        }
    }

    public let configuration: Configuration
    public let apiServer: APIServer
    public let adminToken: String
    public let certificateAuthority: ClusterCertificateAuthority?
    public let tokenIssuer: ServiceAccountTokenIssuer
    private let httpServer = HTTPServer()
    private let stopped = OnceFlag()
    private var workloads: WorkloadControllers?
    public private(set) var port: Int = 0

    private init(configuration: Configuration, apiServer: APIServer, adminToken: String,
                 certificateAuthority: ClusterCertificateAuthority?, tokenIssuer: ServiceAccountTokenIssuer) {
        self.configuration = configuration
        self.apiServer = apiServer
        self.adminToken = adminToken
        self.certificateAuthority = certificateAuthority
        self.tokenIssuer = tokenIssuer
    }

    /// Creates the server, installs the CRDs, restores state and starts listening.
    public static func start(_ configuration: Configuration, logger: Logger = Logger(label: "agentgate.localcluster")) async throws -> LocalCluster {
        let directory = configuration.dataDirectory
        let ca = configuration.useTLS ? try ClusterCertificateAuthority.loadOrCreate(in: directory) : nil
        let issuer = try ServiceAccountTokenIssuer.loadOrCreate(in: directory)
        let adminToken = try Authenticator.loadOrCreateAdminToken(in: directory)
        let store = ObjectStore(historyLimit: configuration.watchHistory)
        let registry = ResourceRegistry(ruleEvaluator: CELRuleEvaluator())
        let saKey = ResourceKey(group: "", resource: "serviceaccounts")
        let authenticator = Authenticator(adminToken: adminToken, tokenIssuer: issuer, serviceAccountUID: { namespace, name in
            store.get(saKey, namespace: namespace, name: name)?.value()[path: ["metadata", "uid"]]?.stringValue
        }, boundObjectUID: { kind, namespace, name in
            let key = ResourceKey(group: "", resource: kind == "Pod" ? "pods" : "secrets")
            return store.get(key, namespace: namespace, name: name)?.value()[path: ["metadata", "uid"]]?.stringValue
        })
        let authorizer = RBACAuthorizer(snapshot: { APIServer.rbacSnapshot(of: store) })
        let apiServer = APIServer(registry: registry, store: store, authenticator: authenticator, authorizer: authorizer,
                                  tokenIssuer: issuer, logger: logger)
        apiServer.bookmarkInterval = configuration.bookmarkInterval
        let cluster = LocalCluster(configuration: configuration, apiServer: apiServer, adminToken: adminToken,
                                   certificateAuthority: ca, tokenIssuer: issuer)
        try await cluster.bootstrap()
        if configuration.runsWorkloads {
            let workloads = WorkloadControllers(server: apiServer, token: adminToken, logger: logger)
            try workloads.start()
            cluster.workloads = workloads
        }
        let tls = try ca.map { try NIOSSLContext(configuration: $0.serverTLSConfiguration()) }
        do {
            cluster.port = try await cluster.httpServer.start(host: configuration.host, port: configuration.port, tls: tls,
                                                               webSocket: apiServer.webSocketService,
                                                               byteStreams: apiServer.byteStreamServices) { request in
                await apiServer.handle(request)
            }
        } catch {
            throw LocalClusterError.cannotListen(host: configuration.host, port: configuration.port, underlying: "\(error)")
        }
        apiServer.serverAddress = "\(configuration.host):\(cluster.port)"
        return cluster
    }

    /// Default namespaces, restored state, then the configured CRDs.
    private func bootstrap() async throws {
        if configuration.persistState, let directory = configuration.dataDirectory {
            try StateSnapshot.restore(into: apiServer, from: directory.appendingPathComponent("state.json"))
        }
        for namespace in ["default", "kube-system", "kube-public", "agentgate-system"] {
            _ = try? await applyObject(["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(namespace)]])
        }
        if configuration.runsWorkloads {
            _ = try await applyObject(ClusterNode.object())
        }
        for manifest in configuration.customResourceDefinitions {
            for document in try JSONValue.parseYAMLDocuments(manifest) {
                _ = try await applyObject(document)
            }
        }
    }

    /// Creates an object as the admin would, or replaces an existing one's spec (idempotent).
    @discardableResult
    public func applyObject(_ object: JSONValue) async throws -> JSONValue {
        let path = try resourcePath(for: object)
        let create = await request(method: "POST", path: path.collection, body: object)
        if create.status == 201 { return create.body }
        if create.status == 409 {
            var current = await request(method: "GET", path: path.item, body: nil).body
            for key in object.objectValue?.keys ?? [:].keys where key != "metadata" && key != "status" {
                current[key] = object[key]
            }
            current.set(object[path: ["metadata", "labels"]], at: ["metadata", "labels"])
            let update = await request(method: "PUT", path: path.item, body: current)
            if update.status == 200 { return update.body }
            throw LocalClusterError.requestFailed(update.body["message"]?.stringValue ?? "update failed")
        }
        throw LocalClusterError.requestFailed(create.body["message"]?.stringValue ?? "create failed with \(create.status)")
    }

    /// Sends a request straight to the API handlers as the admin (no network).
    public func request(method: String, path: String, body: JSONValue?, contentType: String = "application/json") async -> (status: Int, body: JSONValue) {
        await InProcessClient(server: apiServer, token: adminToken).send(method, path, body: body, contentType: contentType)
    }

    private func resourcePath(for object: JSONValue) throws -> (collection: String, item: String) {
        let apiVersion = object["apiVersion"]?.stringValue ?? ""
        let kind = object["kind"]?.stringValue ?? ""
        let parts = apiVersion.split(separator: "/").map(String.init)
        let (group, version) = parts.count == 2 ? (parts[0], parts[1]) : ("", parts.first ?? "")
        guard let definition = apiServer.registry.all().first(where: { $0.group == group && $0.version == version && $0.kind == kind }) else {
            throw LocalClusterError.requestFailed("no resource for \(apiVersion) \(kind)")
        }
        let prefix = group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)"
        let namespace = object[path: ["metadata", "namespace"]]?.stringValue ?? "default"
        let collection = definition.namespaced ? "\(prefix)/namespaces/\(namespace)/\(definition.resource)" : "\(prefix)/\(definition.resource)"
        let name = object[path: ["metadata", "name"]]?.stringValue ?? ""
        return (collection, "\(collection)/\(name)")
    }

    public var url: String { "\(configuration.useTLS ? "https" : "http")://\(configuration.host):\(port)" }

    /// A kubeconfig for the admin (context `agentgate-dev`).
    public func adminKubeconfig(contextName: String = "agentgate-dev") -> String {
        kubeconfig(user: "admin", token: adminToken, contextName: contextName)
    }

    /// A kubeconfig for any bearer token against this server.
    public func kubeconfig(user: String, token: String, contextName: String = "agentgate-dev", namespace: String? = nil) -> String {
        var cluster: JSONValue = ["server": .string(url)]
        if let ca = certificateAuthority {
            cluster["certificate-authority-data"] = .string(Data(ca.caPEM.utf8).base64EncodedString())
        }
        var context: JSONValue = ["cluster": .string(contextName), "user": .string(user)]
        if let namespace { context["namespace"] = .string(namespace) }
        let config: JSONValue = [
            "apiVersion": "v1", "kind": "Config", "current-context": .string(contextName),
            "clusters": [["name": .string(contextName), "cluster": cluster]],
            "contexts": [["name": .string(contextName), "context": context]],
            "users": [["name": .string(user), "user": ["token": .string(token)]]],
            "preferences": [:],
        ]
        return config.yamlString()
    }

    /// Writes the admin kubeconfig with owner-only permissions.
    public func writeAdminKubeconfig(to file: URL) throws {
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(adminKubeconfig().utf8).write(to: file, options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
    }

    /// Stops serving: ends watches, closes the listener, saves state if configured.
    public func stop() async {
        guard !stopped.swap() else { return }
        await workloads?.stop()
        apiServer.store.closeAllWatches()
        await httpServer.shutdown()
        if configuration.persistState, let directory = configuration.dataDirectory {
            try? StateSnapshot.save(apiServer, to: directory.appendingPathComponent("state.json"))
        }
    }
}

public enum LocalClusterError: Error, CustomStringConvertible {
    case cannotListen(host: String, port: Int, underlying: String)
    case requestFailed(String)

    public var description: String {
        switch self {
        case .cannotListen(let host, let port, let underlying):
            return "cannot listen on \(host):\(port) (\(underlying)); is another server using the port? Choose another with --api-port"
        case .requestFailed(let message):
            return message
        }
    }
}

/// Saves and restores every object (CRDs first, so their resources exist on restore).
enum StateSnapshot {
    static func save(_ server: APIServer, to file: URL) throws {
        var entries: [JSONValue] = []
        for (key, objects) in server.store.dump() {
            for object in objects {
                entries.append(["group": .string(key.group), "resource": .string(key.resource), "object": object.value()])
            }
        }
        let state: JSONValue = ["resourceVersion": .string(String(server.store.currentResourceVersion)), "objects": .array(entries)]
        try Data(state.serialized()).write(to: file, options: .atomic)
    }

    static func restore(into server: APIServer, from file: URL) throws {
        guard let data = try? Data(contentsOf: file) else { return }
        let state = try JSONValue(parsing: data)
        let entries = state["objects"]?.arrayValue ?? []
        if let revision = Int64(state["resourceVersion"]?.stringValue ?? "") {
            server.store.advanceRevision(to: revision)
        }
        let crdKey = ResourceKey(group: "apiextensions.k8s.io", resource: "customresourcedefinitions")
        let sorted = entries.sorted { a, _ in a["resource"]?.stringValue == crdKey.resource }
        for entry in sorted {
            let key = ResourceKey(group: entry["group"]?.stringValue ?? "", resource: entry["resource"]?.stringValue ?? "")
            guard let object = entry["object"] else { continue }
            server.store.restore(key, value: object)
            if key == crdKey { try? server.registry.install(crd: object) }
        }
    }
}

/// A flag that flips once; `swap()` returns the previous value.
final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false
    func swap() -> Bool { lock.lock(); defer { lock.unlock() }; let previous = set; set = true; return previous }
}
