import AgentGateAPI
import AsyncHTTPClient
import ControllerRuntime
import Foundation
import Gateway
import HTTPServing
import KubeClient
import KubeCore
import LocalCluster
import NIOCore
import NIOHTTP1
import NIOSSL
import Sandbox
import SessionStore
import TestSupport
import XCTest

/// One gateway in front of one embedded API server, with the dev OIDC issuer, a session
/// store on `backend` (a fresh SQLite file or PostgreSQL schema) and a connection `default/conn` whose ServiceAccount (`default/agent`) is
/// bound to cluster-admin. Everything is real and on loopback.
final class GatewayHarness {
    static let audience = "agentgate-test"
    let directory: URL
    let cluster: LocalCluster
    let issuer: DevOIDCIssuer
    let store: any SessionStore
    let gateway: Gateway
    let registry = ConnectionRegistry()
    let saToken: String
    let port: Int
    /// The HTTPS listener kubectl uses (kubectl sends no bearer token over plain HTTP).
    let tlsPort: Int
    let certificateAuthority: ClusterCertificateAuthority
    let backend: GatewayStoreBackend
    /// The `--store` URL of ``store`` (open it again to play a restart or a second replica).
    let storeURL: String
    /// The SQLite file, for tests that read it raw (nil on PostgreSQL).
    var storePath: String? { storeURL.hasPrefix("sqlite:") ? String(storeURL.dropFirst("sqlite:".count)) : nil }
    var config: GatewayConnectionConfig

    var base: String { "http://127.0.0.1:\(port)" }
    var connectionURL: String { "\(base)/c/default/conn" }

    /// The admin API (sessions, approvals) on loopback HTTP, with token ``adminToken``.
    let admin: AdminAPI
    let adminServer = HTTPServer()
    let adminPort: Int
    let adminToken = "test-admin-token"
    var adminURL: String { "http://127.0.0.1:\(adminPort)" }

    /// With `announce`: the admin client to the cluster, and the status reporter the gateway
    /// asks for prompt `status.pendingApprovals` passes (Events go through `clusterClient`).
    private(set) var clusterClient: KubernetesClient?
    private(set) var reporter: SessionStatusReporter?
    /// The approval broker's service (decisions from other replicas), as GatewayRunner runs it.
    private var broker: Task<Void, Never>?

    /// - Parameters:
    ///   - upstreamTLS: the API server serves HTTPS and the gateway trusts its CA, as in a real cluster.
    ///   - announce: the gateway announces alerts and approvals as Events and through a
    ///     `SessionStatusReporter` (``clusterClient``, ``reporter``), as `agentgate gateway` does.
    init(backend: GatewayStoreBackend = .sqlite, access: AccessPolicy? = nil, approval: ApprovalPolicy? = nil,
         failureMode: FailureMode? = nil, upstreamOverride: String? = nil, upstreamTLS: Bool = false,
         announce: Bool = false) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentgate-gw-\(UUID().uuidString)")
        self.backend = backend
        storeURL = try backend.freshURL(in: directory)  // before anything exists: a skip leaves nothing behind
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var configuration = LocalCluster.Configuration(dataDirectory: directory.appendingPathComponent("cluster"), port: 0, useTLS: upstreamTLS)
        configuration.customResourceDefinitions = AgentGateCRDs.all.map(\.yaml)
        cluster = try await LocalCluster.start(configuration)
        let sa = try await cluster.applyObject(["apiVersion": "v1", "kind": "ServiceAccount",
                                                "metadata": ["name": "agent", "namespace": "default"]])
        try await cluster.applyObject([
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": ["name": "agent-admin"],
            "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"],
            "subjects": [["kind": "ServiceAccount", "name": "agent", "namespace": "default"]],
        ])
        saToken = try cluster.tokenIssuer.issue(namespace: "default", name: "agent",
                                                uid: sa[path: ["metadata", "uid"]]?.stringValue ?? "").token
        issuer = try DevOIDCIssuer()
        let issuerURL = try await issuer.start()
        store = try await SessionStores.open(url: storeURL)
        config = GatewayConnectionConfig(
            namespace: "default", name: "conn", generation: 1, uid: "uid-1", serviceAccountName: "agent", endpoint: nil,
            identity: AgentIdentity(issuer: issuerURL, audiences: [Self.audience], allowedSubjects: ["agent-1"], allowedGroups: ["agents"]),
            approval: approval, access: access, recording: RecordingPolicySpec(failureMode: failureMode),
            recordingPolicyName: nil, maskingRules: [], credentialExpiresAt: nil)
        registry.put(config, token: saToken)
        var announcements = GatewayAnnouncements()
        if announce {
            let client = try KubernetesClient(config: KubeConfig(server: cluster.url,
                                                                 certificateAuthorityPEM: cluster.certificateAuthority.map { Array($0.caPEM.utf8) },
                                                                 credentials: .token(cluster.adminToken)))
            let reporter = SessionStatusReporter(client: client, registry: registry, store: store, interval: .seconds(60))
            reporter.start()
            clusterClient = client
            self.reporter = reporter
            announcements = GatewayAnnouncements(
                events: EventRecorder(configuration: .init(controller: "agentgate.io/gateway", instance: "test"), client: client),
                statusReporter: reporter)
        }
        gateway = try Gateway(upstream: KubeConfig(server: upstreamOverride ?? cluster.url,
                                                   certificateAuthorityPEM: cluster.certificateAuthority.map { Array($0.caPEM.utf8) }),
                              registry: registry, store: store, announcements: announcements)
        let approvals = gateway.approvals
        broker = Task { await approvals.run() }
        port = try await gateway.start(host: "127.0.0.1", port: 0, tls: nil)
        certificateAuthority = try ClusterCertificateAuthority.loadOrCreate(in: directory.appendingPathComponent("gateway-tls"))
        tlsPort = try await gateway.start(host: "127.0.0.1", port: 0,
                                          tls: NIOSSLContext(configuration: certificateAuthority.serverTLSConfiguration()))
        let admin = AdminAPI(store: store, token: adminToken, gateway: gateway)
        self.admin = admin
        adminPort = try await adminServer.start(host: "127.0.0.1", port: 0, tls: nil) { await admin.handle($0) }
    }

    /// Gateway processes the test started (``startGatewayBinary`` registers its own); `stop`
    /// kills those still running first.
    private let startedProcesses = LockedProcesses()

    /// Has ``stop()`` kill `process` (SIGKILL) if it still runs then.
    func terminateOnStop(_ process: Process) { startedProcesses.append(process) }

    func stop() async {
        startedProcesses.killRunning()
        await adminServer.shutdown()
        await gateway.shutdown()
        broker?.cancel()
        reporter?.stop()
        try? await clusterClient?.shutdown()
        try? await store.close()
        await issuer.shutdown()
        await cluster.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    func token(subject: String = "agent-1", groups: [String] = [], model: String? = "claude-test",
               _ adjust: (inout DevOIDCIssuer.TokenRequest) -> Void = { _ in }) async throws -> String {
        var request = DevOIDCIssuer.TokenRequest(subject: subject, audience: Self.audience, groups: groups, model: model)
        adjust(&request)
        return try await issuer.token(request)
    }

    /// Writes a kubeconfig for kubectl pointing at the connection with `token`.
    func kubeconfig(token: String) throws -> String {
        let yaml = """
            apiVersion: v1
            kind: Config
            clusters:
            - name: gw
              cluster:
                server: https://127.0.0.1:\(tlsPort)/c/default/conn
                certificate-authority-data: \(Data(certificateAuthority.caPEM.utf8).base64EncodedString())
            users:
            - name: agent
              user:
                token: \(token)
            contexts:
            - name: gw
              context: {cluster: gw, user: agent, namespace: default}
            current-context: gw
            """
        let url = directory.appendingPathComponent("agent-\(UUID().uuidString).kubeconfig")
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// Runs kubectl as the agent.
    @discardableResult
    func kubectl(_ args: [String], token: String, input: String? = nil, environment: [String: String] = [:],
                 timeout: Double = 60) throws -> ProcessResult {
        try ProcessRunner.run("kubectl", ["--kubeconfig", try kubeconfig(token: token), "--request-timeout=20s"] + args,
                              environment: environment, input: input, timeout: timeout)
    }

    /// kubectl's environment that makes exec, attach and port-forward use SPDY/3.1 instead of WebSocket.
    static let spdyOnly = ["KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false", "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"]

    /// A raw request to the gateway.
    static func send(_ method: HTTPMethod = .GET, _ url: String, headers: [(String, String)] = [], body: String? = nil) async throws
        -> (status: Int, body: String, headers: HTTPHeaders) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return (Int(response.status.code), String(buffer: bytes), response.headers)
    }

    /// All sessions and their exchanges, oldest exchange first.
    func exchanges() async throws -> [ExchangeRecord] {
        var all: [ExchangeRecord] = []
        for session in try await store.listSessions(SessionFilter(limit: 1000)) {
            all += try await store.exchanges(sessionID: session.id)
        }
        return all.sorted { $0.time < $1.time }
    }
}

/// The processes a harness kills when it stops.
final class LockedProcesses: @unchecked Sendable {
    private let lock = NSLock()
    private var processes: [Process] = []

    func append(_ process: Process) { lock.withLock { processes.append(process) } }

    func killRunning() {
        for process in lock.withLock({ processes }) where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
