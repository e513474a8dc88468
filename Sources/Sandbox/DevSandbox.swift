import AgentGateAPI
import Foundation
import HTTPServing
import Gateway
import KubeClient
import KubeCore
import LocalCluster
import Logging
import Operator

/// The whole product on loopback, in one process: what `agentgate dev` runs.
///
/// Contract:
/// - ``start(_:progress:)`` brings up, in order, the embedded Kubernetes API server (AgentGate
///   CRDs installed, state kept in the data directory), the development OIDC issuer, the
///   gateway's own ServiceAccount and RBAC, the operator, the gateway (HTTPS with the sandbox
///   CA, SQLite store in the data directory, admin API and web page) and — on a first start,
///   unless `empty` — the demo scenario of `samples/scenario` with its connection's issuer
///   pointed at the sandbox issuer. It returns when the scenario's connection is served.
/// - Everything another process needs is written to the data directory: `admin.kubeconfig`,
///   `ca.crt`, `issuer-url` and the issuer keys (for `agentgate dev token`), `admin-address`
///   and `admin-token` (the break-glass token, for `agentgate sessions|approvals`),
///   `agent-client-secret` (0600).
/// - The admin API trusts the issuer's ``webClientID`` tokens and makes ``approverGroups``
///   admins, so the web page logs in (authorization code with PKCE) as the sandbox approver.
/// - The issuer has two OAuth2 clients: ``agentClientID`` (confidential, secret in
///   `agent-client-secret`, client_credentials) for the demo agent (`agent:claude-ops`, group
///   `agents`, audience `agentgate`), and ``webClientID`` (public, authorization code with
///   PKCE) for the web page, logged in as ``approverSubject`` with ``approverGroups``,
///   audiences `agentgate-web` (default) and `agentgate`, redirect URIs the admin page's
///   `http://127.0.0.1:PORT/` and `http://localhost:PORT/`.
/// - A port already in use fails with a message naming the flag that changes it.
public final class DevSandbox: @unchecked Sendable {
    public struct Options: Sendable {
        public var dataDirectory: URL
        public var apiPort = 16443
        public var gatewayPort = 18443
        /// Admin API and web page.
        public var adminPort = 18444
        public var issuerPort = 18445
        /// Skip the demo scenario.
        public var empty = false
        public init(dataDirectory: URL) { self.dataDirectory = dataDirectory }
    }

    public static let gatewayNamespace = "agentgate-system"
    public static let gatewayServiceAccount = "agentgate-gateway"
    /// The issuer the samples name; the sandbox swaps in its own.
    public static let sampleIssuer = "https://oidc.example.com"
    /// Identity of the sandbox's built-in approver (the web page acts as it).
    public static let approverSubject = "sandbox-approver"
    /// Its groups: the approver group of the scenario and the samples.
    public static let approverGroups = ["sre"]
    /// The issuer's client-credentials client for the demo agent.
    public static let agentClientID = "claude-ops-agent"
    /// The issuer's public PKCE client for the admin web page.
    public static let webClientID = "agentgate-web"

    public let options: Options
    public let cluster: LocalCluster
    public let issuer: DevOIDCIssuer
    public let issuerURL: String
    public let gateway: GatewayRunner
    private let agentOperator: AgentGateOperator
    private let operatorClient: KubernetesClient
    private let operatorTask: Task<Void, Error>

    public var adminKubeconfigPath: URL { options.dataDirectory.appendingPathComponent("admin.kubeconfig") }
    public var gatewayURL: String { "https://127.0.0.1:\(gateway.port)" }
    public var adminURL: String { "http://127.0.0.1:\(gateway.adminPort ?? options.adminPort)" }

    private init(options: Options, cluster: LocalCluster, issuer: DevOIDCIssuer, issuerURL: String, gateway: GatewayRunner,
                 agentOperator: AgentGateOperator, operatorClient: KubernetesClient, operatorTask: Task<Void, Error>) {
        self.options = options
        self.cluster = cluster
        self.issuer = issuer
        self.issuerURL = issuerURL
        self.gateway = gateway
        self.agentOperator = agentOperator
        self.operatorClient = operatorClient
        self.operatorTask = operatorTask
    }

    public static func start(_ options: Options, progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> DevSandbox {
        let directory = options.dataDirectory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let firstStart = !FileManager.default.fileExists(atPath: directory.appendingPathComponent("state.json").path)

        // Every port checked first, so a clash names its flag before anything has started.
        for (port, what, flag) in [(options.apiPort, "the Kubernetes API server", "--api-port"),
                                   (options.gatewayPort, "the gateway", "--gateway-port"),
                                   (options.adminPort, "the admin API and web page", "--admin-port"),
                                   (options.issuerPort, "the development OIDC issuer", "--issuer-port")] {
            if let problem = LoopbackPort.bindProblem(port) {
                throw SandboxError("cannot listen on 127.0.0.1:\(port) for \(what): \(problem); is another process (an earlier `agentgate dev`?) using it? Choose another port with \(flag)")
            }
        }
        if Set([options.apiPort, options.gatewayPort, options.adminPort, options.issuerPort]).count < 4 {
            throw SandboxError("--api-port, --gateway-port, --admin-port and --issuer-port must be four different ports")
        }

        progress("Starting the embedded Kubernetes API server on https://127.0.0.1:\(options.apiPort) ...")
        var configuration = LocalCluster.Configuration(dataDirectory: directory, port: options.apiPort, useTLS: true)
        configuration.customResourceDefinitions = AgentGateCRDs.all.map(\.yaml)
        configuration.persistState = true
        let cluster = try await LocalCluster.start(configuration)
        var started: [() async -> Void] = [{ await cluster.stop() }]
        func unwind() async { for stop in started.reversed() { await stop() } }
        do {
            try cluster.writeAdminKubeconfig(to: directory.appendingPathComponent("admin.kubeconfig"))
            guard let ca = cluster.certificateAuthority else { throw SandboxError("the embedded API server has no certificate authority") }
            try writePrivate(ca.caPEM, to: directory.appendingPathComponent("ca.crt"), mode: 0o644)
            try writePrivate(ca.serverCertificatePEM, to: directory.appendingPathComponent("gateway-tls.crt"), mode: 0o644)
            try writePrivate(ca.serverKeyPEM, to: directory.appendingPathComponent("gateway-tls.key"), mode: 0o600)

            progress("Starting the development OIDC issuer on http://127.0.0.1:\(options.issuerPort) ...")
            let issuer = try DevOIDCIssuer(directory: directory.appendingPathComponent("dev-issuer"))
            let issuerURL: String
            issuerURL = try await issuer.start(host: "127.0.0.1", port: options.issuerPort)
            started.append({ await issuer.shutdown() })
            try writePrivate(issuerURL + "\n", to: directory.appendingPathComponent("issuer-url"), mode: 0o644)
            let agentSecretFile = directory.appendingPathComponent("agent-client-secret")
            let savedSecret = (try? String(contentsOf: agentSecretFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            let agentSecret = savedSecret.flatMap { $0.isEmpty ? nil : $0 } ?? DevOIDCIssuer.randomSecret()
            try writePrivate(agentSecret + "\n", to: agentSecretFile, mode: 0o600)
            issuer.register(DevOIDCIssuer.Client(id: agentClientID, secret: agentSecret, subject: "agent:claude-ops",
                                                 groups: ["agents"], audiences: ["agentgate"]))

            progress("Starting the operator ...")
            let gatewayKubeconfig = try await provisionGatewayIdentity(cluster)
            // config/admission's policy: only who may use a ServiceAccount binds it to a connection
            // (admin.kubeconfig may use every one); without it the operator mints no token.
            for object in try JSONValue.parseYAMLDocuments(ServiceAccountBindingPolicy.yaml) {
                try await cluster.applyObject(object)
            }
            let gatewayKubeconfigPath = directory.appendingPathComponent("gateway.kubeconfig")
            try writePrivate(gatewayKubeconfig, to: gatewayKubeconfigPath, mode: 0o600)
            let operatorClient = try KubernetesClient(config: try KubeConfig.fromKubeconfig(yaml: cluster.adminKubeconfig()))
            var operatorLogger = Logger(label: "agentgate.operator")
            operatorLogger.logLevel = .warning  // the sandbox's terminal shows problems only
            var operatorOptions = OperatorOptions(gatewayNamespace: gatewayNamespace,
                                                  gatewayURL: "https://127.0.0.1:\(options.gatewayPort)")
            operatorOptions.logger = operatorLogger
            operatorOptions.identity = "agentgate-dev"
            let agentOperator = try AgentGateOperator(client: operatorClient, options: operatorOptions)
            let operatorTask = Task { try await agentOperator.run() }
            started.append({
                agentOperator.shutDown()
                _ = try? await operatorTask.value
                try? await operatorClient.shutdown()
            })

            progress("Starting the gateway on https://127.0.0.1:\(options.gatewayPort) (admin API and web page on http://127.0.0.1:\(options.adminPort)) ...")
            var gatewayOptions = GatewayRunner.Options()
            gatewayOptions.kubeconfig = gatewayKubeconfigPath.path
            gatewayOptions.listen = "127.0.0.1:\(options.gatewayPort)"
            gatewayOptions.adminListen = "127.0.0.1:\(options.adminPort)"
            gatewayOptions.tlsCertificateFile = directory.appendingPathComponent("gateway-tls.crt").path
            gatewayOptions.tlsKeyFile = directory.appendingPathComponent("gateway-tls.key").path
            gatewayOptions.dataDirectory = directory.path
            gatewayOptions.gatewayNamespace = gatewayNamespace
            // The web page logs in through the sandbox issuer (webClientID) as the sandbox
            // approver, whose groups make it admin here; agents' tokens (audience agentgate) are
            // not admin tokens.
            gatewayOptions.adminAuth = AdminAuthConfig(
                issuers: [AgentIdentity(issuer: issuerURL, audiences: [webClientID])],
                roles: [.admin: approverGroups],
                login: AdminAuthConfig.Login(issuer: issuerURL, clientID: webClientID))
            var gatewayLogger = Logger(label: "agentgate.gateway")
            gatewayLogger.logLevel = .warning
            let gateway = try await GatewayRunner.start(gatewayOptions, logger: gatewayLogger)
            started.append({ await gateway.stop() })
            let adminPort = gateway.adminPort ?? options.adminPort
            issuer.register(DevOIDCIssuer.Client(id: webClientID, subject: approverSubject, groups: approverGroups,
                                                 audiences: ["agentgate-web", "agentgate"],
                                                 redirectURIs: ["http://127.0.0.1:\(adminPort)/", "http://localhost:\(adminPort)/"]))

            let sandbox = DevSandbox(options: options, cluster: cluster, issuer: issuer, issuerURL: issuerURL, gateway: gateway,
                                     agentOperator: agentOperator, operatorClient: operatorClient, operatorTask: operatorTask)
            if firstStart && !options.empty {
                progress("Applying the demo scenario (samples/scenario, issuer \(issuerURL)) ...")
                for object in try SandboxScenario.objects(issuer: issuerURL) {
                    try await cluster.applyObject(object)
                }
                progress("Waiting for AgentConnection demo/claude-ops to be Ready and served ...")
                try await sandbox.waitUntilServed(namespace: "demo", name: "claude-ops", timeout: 30)
            }
            return sandbox
        } catch {
            await unwind()
            throw error
        }
    }

    /// Stops everything, newest first; the cluster saves its state.
    public func stop() async {
        await gateway.stop()
        agentOperator.shutDown()
        _ = try? await operatorTask.value
        try? await operatorClient.shutdown()
        await issuer.shutdown()
        await cluster.stop()
    }

    /// Waits until the gateway serves `namespace/name` (the operator compiled it and the
    /// gateway read the Secret).
    public func waitUntilServed(namespace: String, name: String, timeout: TimeInterval) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while gateway.gateway.registry.connection(namespace: namespace, name: name) == nil {
            if Date() > deadline {
                let status = await cluster.request(method: "GET", path: "/apis/agentgate.io/v1alpha1/namespaces/\(namespace)/agentconnections/\(name)", body: nil)
                let conditions = status.body[path: ["status", "conditions"]]?.serializedString() ?? "none"
                throw SandboxError("AgentConnection \(namespace)/\(name) was not served within \(Int(timeout)) s; its conditions: \(conditions)")
            }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
    }


    /// The gateway's ServiceAccount with the rights `config/rbac` gives it (those manifests,
    /// embedded: read the connection Secrets in its namespace; patch the kinds' status; record
    /// Events), and a kubeconfig holding its token (the gateway refuses an admin client
    /// certificate, and should).
    static func provisionGatewayIdentity(_ cluster: LocalCluster) async throws -> String {
        let ns = gatewayNamespace, sa = gatewayServiceAccount
        try await cluster.applyObject(["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(ns)]])
        var account: JSONValue = .null
        for file in GatewayRBACFiles.all {
            for object in try JSONValue.parseYAMLDocuments(file.text) {
                let applied = try await cluster.applyObject(object)
                if object["kind"]?.stringValue == "ServiceAccount", object[path: ["metadata", "name"]]?.stringValue == sa {
                    account = applied
                }
            }
        }
        guard let uid = account[path: ["metadata", "uid"]]?.stringValue else {
            throw SandboxError("config/rbac declares no ServiceAccount \(ns)/\(sa) for the gateway")
        }
        let token = try cluster.tokenIssuer.issue(namespace: ns, name: sa, uid: uid, expirationSeconds: 30 * 86_400).token
        return cluster.kubeconfig(user: sa, token: token, contextName: "agentgate-dev-gateway")
    }
}

func writePrivate(_ text: String, to url: URL, mode: Int) throws {
    try Data(text.utf8).write(to: url, options: .atomic)
    try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
}

public struct SandboxError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
