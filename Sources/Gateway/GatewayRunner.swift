import ControllerRuntime
import Foundation
import HTTPServing
import KubeClient
import Logging
import NIOSSL
import ControllerRuntime
import SessionStore

/// Everything `agentgate gateway` runs, wired together: the session store (recovered, with
/// heartbeats), the connection Secrets watcher, the gateway listener (its TLS pair reloaded
/// when the files change), the admin API, the metrics listener, the AgentConnection
/// `status.sessions` reporter, retention pruning and the alert rules' Events.
///
/// Contract: ``start(_:)`` returns once every listener is bound and the first list of
/// connection Secrets was applied; interrupted exchanges of dead gateway processes are marked
/// incomplete before the first request is served.
public final class GatewayRunner: @unchecked Sendable {
    public struct Options: Sendable {
        public var kubeconfig: String?
        public var context: String?
        /// `HOST:PORT` of the agent-facing listener.
        public var listen = "127.0.0.1:8443"
        public var adminListen: String? = "127.0.0.1:8444"
        public var metricsAddress: String?
        public var tlsCertificateFile: String?
        public var tlsKeyFile: String?
        /// `sqlite:PATH` or `postgres://...`; default `sqlite:<dataDir>/sessions.db`.
        public var store: String?
        public var gatewayNamespace = "agentgate-system"
        /// Where the admin token and the default SQLite file live.
        public var dataDirectory = ".agentgate"
        /// How often `status.sessions` may be applied to each AgentConnection.
        public var statusInterval = SessionStatusReporter.defaultInterval
        /// How often sessions past their retention are deleted.
        public var pruneInterval = RetentionPruner.defaultInterval
        /// How often the TLS files are checked for a new pair.
        public var tlsReloadInterval = ServingCertificate.defaultInterval
        /// A file holding the masking key every replica shares (see ``MaskingKeyFile``); without
        /// it, a key kept in the data directory (stable for this replica only).
        public var maskingKeyFile: String?
        /// A file holding the admin API's break-glass token, shared by every replica; without
        /// it, one made in the data directory.
        public var adminTokenFile: String?
        /// The break-glass token is off: only the admin issuers' people get in.
        public var adminTokenDisabled = false
        /// The admin issuers and the groups of each role (``AdminAuthConfig``, `--admin-auth-file`).
        public var adminAuthFile: String?
        /// The same, given in code (the sandbox); the file wins when both are given.
        public var adminAuth: AdminAuthConfig?
        /// TLS pair of the admin listener; without it, plain HTTP, on loopback only unless
        /// ``adminPlainHTTPAllowed``.
        public var adminTLSCertificateFile: String?
        public var adminTLSKeyFile: String?
        /// Plain HTTP on a non-loopback admin address (`--admin-insecure-http`), e.g. behind a
        /// TLS-terminating sidecar.
        public var adminPlainHTTPAllowed = false
        /// How often the masking key file is checked for a rotated key.
        public var maskingKeyInterval = MaskingKeyFile.defaultInterval
        /// How long start-up waits for the session store to answer before it gives up.
        public var storeTimeout: Duration = .seconds(120)
        /// How often the store is written to as this replica's heartbeat (readiness follows it).
        public var heartbeatInterval: Duration = .seconds(10)
        public init() {}
    }

    public let gateway: Gateway
    public let store: any SessionStore
    public private(set) var port = 0
    public private(set) var adminPort: Int?
    public private(set) var metricsPort: Int?
    /// The break-glass admin token; nil when it is off.
    public let adminToken: String?
    private let watcher: ConnectionConfigWatcher
    private let client: KubernetesClient
    private var servers: [HTTPServer] = []
    private var heartbeats: Task<Void, Never>?
    private var statusReporter: SessionStatusReporter?
    private var pruner: RetentionPruner?
    public private(set) var servingCertificate: ServingCertificate?
    public private(set) var adminServingCertificate: ServingCertificate?
    public private(set) var maskingKeyFile: MaskingKeyFile?
    /// What `/readyz` on the metrics listener answers.
    public let readiness = GatewayReadiness()

    private init(gateway: Gateway, store: any SessionStore, watcher: ConnectionConfigWatcher, client: KubernetesClient,
                 adminToken: String?) {
        self.gateway = gateway
        self.store = store
        self.watcher = watcher
        self.client = client
        self.adminToken = adminToken
    }

    public static func start(_ options: Options, logger: Logger = Logger(label: "agentgate.gateway")) async throws -> GatewayRunner {
        let config = try KubeConfig.load(kubeconfigPath: options.kubeconfig, context: options.context)
        let dataDirectory = URL(fileURLWithPath: options.dataDirectory, isDirectory: true)
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        let storeURL = options.store ?? "sqlite:\(dataDirectory.appendingPathComponent("sessions.db").path)"
        let store = try await Self.openStore(storeURL, within: options.storeTimeout, logger: logger)
        let recovered = try await store.recoverInterrupted()
        if recovered > 0 { logger.notice("marked \(recovered) interrupted exchange(s) incomplete") }
        // The keyed-hash masking key outlives restarts, so an auditor comparing hashes across
        // sessions sees the same value hash the same (a random 256-bit secret, owner-only).
        let registry: ConnectionRegistry
        var maskingKeyFile: MaskingKeyFile?
        if let path = options.maskingKeyFile {
            registry = ConnectionRegistry()
            maskingKeyFile = try MaskingKeyFile(path: path, registry: registry, logger: logger)
        } else {
            let maskingKey = try AdminAPI.loadOrCreateToken(at: dataDirectory.appendingPathComponent("masking-key"))
            registry = ConnectionRegistry(hashKey: Array(maskingKey.utf8))
        }
        // Every setting read from a file is read before anything that holds connections opens.
        let adminToken: String?
        if options.adminTokenDisabled {
            if options.adminTokenFile != nil { throw GatewayConfigError("--admin-token-file and --no-admin-token contradict each other; give one") }
            adminToken = nil
            // A token left from before is no key any more: remove it so nobody relies on it.
            try? FileManager.default.removeItem(at: dataDirectory.appendingPathComponent("admin-token"))
        } else if let file = options.adminTokenFile {
            adminToken = try SecretFile.read(file, flag: "--admin-token-file", minimumBytes: MaskingKeyFile.minimumBytes)
        } else {
            adminToken = try AdminAPI.loadOrCreateToken(at: dataDirectory.appendingPathComponent("admin-token"))
        }
        let adminAuth = try options.adminAuthFile.map { try AdminAuthConfig.load(path: $0) } ?? options.adminAuth
        if let address = options.adminListen {
            let (host, _) = try parseAddress(address, flag: "--admin-listen")
            switch (options.adminTLSCertificateFile, options.adminTLSKeyFile) {
            case (_?, _?): break
            case (nil, nil):
                guard ListenAddress.isLoopback(host) || options.adminPlainHTTPAllowed else {
                    throw GatewayConfigError("--admin-listen \(address): plain HTTP is only served on loopback; give --admin-tls-cert and --admin-tls-key (or --admin-insecure-http behind a TLS proxy)")
                }
            default:
                throw GatewayConfigError("--admin-tls-cert and --admin-tls-key go together")
            }
        }
        let client = try KubernetesClient(config: config)
        let watcher = ConnectionConfigWatcher(client: client, namespace: options.gatewayNamespace, registry: registry, logger: logger)
        let gateway: Gateway
        do {
            gateway = try Gateway(upstream: config, registry: registry, store: store, logger: logger)
        } catch {
            // Nothing may be left holding connections: an HTTP client's deinit traps.
            try? await client.shutdown()
            try? await store.close()
            throw error
        }

        // Alerts become Warning Events on the AgentConnection.
        gateway.alerts.events = EventRecorder(configuration: .init(controller: "agentgate.io/gateway",
                                                                   instance: ProcessInfo.processInfo.hostName),
                                              client: client, logger: logger)
        let runner = GatewayRunner(gateway: gateway, store: store, watcher: watcher, client: client, adminToken: adminToken)
        do {
            maskingKeyFile?.start(interval: options.maskingKeyInterval)
            runner.maskingKeyFile = maskingKeyFile
            let readiness = runner.readiness
            runner.heartbeats = Task {
                await store.runHeartbeats(interval: options.heartbeatInterval, onSuccess: { readiness.storeReachable(true) }, onError: {
                    readiness.storeReachable(false)
                    logger.warning("the session store cannot be reached, so this gateway reports not ready: \($0)")
                })
            }
            watcher.start()
            await watcher.waitUntilSynced()
            readiness.synced()

            var tls: NIOSSLContext?
            switch (options.tlsCertificateFile, options.tlsKeyFile) {
            case let (cert?, key?):
                let certificate = try ServingCertificate(certificateFile: cert, keyFile: key, logger: logger)
                tls = try certificate.makeContext()
                certificate.start(interval: options.tlsReloadInterval)
                runner.servingCertificate = certificate
            case (nil, nil):
                let (host, _) = try parseAddress(options.listen, flag: "--listen")
                guard ["127.0.0.1", "localhost", "::1"].contains(host) else {
                    throw GatewayConfigError("--listen \(options.listen): plain HTTP is only served on loopback; give --tls-cert and --tls-key")
                }
            default:
                throw GatewayConfigError("--tls-cert and --tls-key go together")
            }
            let (host, port) = try parseAddress(options.listen, flag: "--listen")
            runner.port = try await gateway.start(host: host, port: port, tls: tls)
            let admin = AdminAPI(store: store, token: adminToken, authorization: adminAuth, metrics: gateway.metrics, gateway: gateway,
                                 logger: logger)
            if adminToken == nil && adminAuth == nil {
                logger.warning("the admin API has no admin issuer (--admin-auth-file) and its break-glass token is off: only connection approvers can use it")
            }
            if let address = options.adminListen {
                let (h, p) = try parseAddress(address, flag: "--admin-listen")
                var adminTLS: NIOSSLContext?
                if let cert = options.adminTLSCertificateFile, let key = options.adminTLSKeyFile {
                    let certificate = try ServingCertificate(certificateFile: cert, keyFile: key, logger: logger)
                    adminTLS = try certificate.makeContext()
                    certificate.start(interval: options.tlsReloadInterval)
                    runner.adminServingCertificate = certificate
                }
                let server = HTTPServer()
                let bound = try await server.start(host: h, port: p, tls: adminTLS) { await admin.handle($0) }
                runner.adminPort = bound
                runner.servers.append(server)
                // `agentgate sessions --data-dir DIR` finds the admin API here.
                let shown = h == "0.0.0.0" ? "127.0.0.1" : (h.contains(":") ? "[\(h)]" : h)
                try "\(adminTLS == nil ? "http" : "https")://\(shown):\(bound)\n".write(
                    to: dataDirectory.appendingPathComponent("admin-address"), atomically: true, encoding: .utf8)
            }
            if let address = options.metricsAddress {
                let (h, p) = try parseAddress(address, flag: "--metrics-address")
                let server = HTTPServer()
                let metrics = gateway.metrics
                runner.metricsPort = try await server.start(host: h, port: p, tls: nil) { request in
                    switch request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "" {
                    case "/metrics":
                        return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4")], body: .bytes(Array(metrics.render().utf8)))
                    case "/healthz", "/livez":
                        return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain")], body: .bytes(Array("ok".utf8)))
                    case "/readyz":
                        let problem = readiness.problem
                        return HTTPResponse(status: problem == nil ? 200 : 503, headers: [("Content-Type", "text/plain")],
                                            body: .bytes(Array((problem ?? "ok").utf8)))
                    default:
                        return HTTPResponse(status: 404, headers: [("Content-Type", "text/plain")],
                                            body: .bytes(Array("not found: this listener serves /metrics, /healthz and /readyz".utf8)))
                    }
                }
                runner.servers.append(server)
            }
            let reporter = SessionStatusReporter(client: client, registry: registry, store: store, interval: options.statusInterval,
                                                 logger: logger)
            reporter.start()
            runner.statusReporter = reporter
            let events = EventRecorder(configuration: .init(controller: "agentgate.io/gateway", instance: store.instanceID),
                                       client: client, logger: logger)
            gateway.configureAnnouncements(events: events, statusReporter: reporter)
            let pruner = RetentionPruner(registry: registry, store: store, interval: options.pruneInterval, logger: logger)
            pruner.start()
            runner.pruner = pruner
        } catch {
            // A listener that cannot bind, a TLS pair that cannot load: close what was opened.
            await runner.stop()
            throw error
        }
        return runner
    }

    public func stop() async {
        statusReporter?.stop()
        pruner?.stop()
        servingCertificate?.stop()
        adminServingCertificate?.stop()
        maskingKeyFile?.stop()
        watcher.stop()
        heartbeats?.cancel()
        for server in servers { await server.shutdown() }
        await gateway.shutdown()
        try? await store.close()
        try? await client.shutdown()
    }

    /// Opens (and migrates) the store, or fails once `bound` has passed: PostgreSQL's pool
    /// retries an unreachable server for ever, which left a gateway waiting with nothing but
    /// the driver's info lines. While it waits, a warning every 10 s says what it waits for.
    static func openStore(_ url: String, within bound: Duration, logger: Logger) async throws -> any SessionStore {
        let shown = StoreURL.redacted(url)
        let outcome = OpenOutcome()
        return try await withCheckedThrowingContinuation { continuation in
            outcome.set(continuation)
            Task {
                do {
                    let store = try await SessionStores.open(url: url, logger: logger)
                    if !outcome.finish(.success(store)) { try? await store.close() }
                } catch {
                    outcome.finish(.failure(error))
                }
            }
            Task {
                let started = ContinuousClock.now
                while ContinuousClock.now - started < bound {
                    try? await Task.sleep(for: min(.seconds(10), bound - (ContinuousClock.now - started)))
                    if outcome.isFinished { return }
                    if ContinuousClock.now - started < bound {
                        logger.warning("the session store \(shown) does not answer yet; waiting up to \(bound) in all (--store-timeout)")
                    }
                }
                outcome.finish(.failure(GatewayConfigError("the session store \(shown) did not answer within \(bound) (--store-timeout); check that it runs and that the URL, network policy and credentials let this gateway reach it")))
            }
        }
    }

    /// The first of the store's opening and its deadline to finish.
    private final class OpenOutcome: @unchecked Sendable {
        private let lock = NSLock()
        private var continuation: CheckedContinuation<any SessionStore, any Error>?
        private var finished = false

        func set(_ continuation: CheckedContinuation<any SessionStore, any Error>) { lock.withLock { self.continuation = continuation } }
        var isFinished: Bool { lock.withLock { finished } }

        /// Resumes the waiter with `result` if nothing did yet; false when too late.
        @discardableResult
        func finish(_ result: Result<any SessionStore, any Error>) -> Bool {
            let waiter = lock.withLock { () -> CheckedContinuation<any SessionStore, any Error>? in
                guard !finished else { return nil }
                finished = true
                defer { continuation = nil }
                return continuation
            }
            waiter?.resume(with: result)
            return waiter != nil
        }
    }

    /// `HOST:PORT` (`[::1]:PORT` for IPv6); see ``ListenAddress``.
    public static func parseAddress(_ text: String, flag: String) throws -> (String, Int) {
        do {
            let address = try ListenAddress.parse(text, flag: flag)
            return (address.host, address.port)
        } catch {
            throw GatewayConfigError("\(error)")
        }
    }
}

/// The gateway's readiness: ready once the connection configuration was synced (the first
/// full list of connection Secrets applied, so no agent gets 404 for a connection not yet
/// read) and while the session store answers its heartbeats (a replica that cannot record
/// would refuse every request under FailClosed, so traffic goes to the others).
public final class GatewayReadiness: @unchecked Sendable {
    private let lock = NSLock()
    private var configSynced = false
    private var storeUp = true

    func synced() { lock.withLock { configSynced = true } }
    func storeReachable(_ reachable: Bool) { lock.withLock { storeUp = reachable } }

    /// Why the gateway is not ready, or nil when it is.
    public var problem: String? {
        lock.withLock {
            if !configSynced { return "the connection configuration is not synced yet" }
            if !storeUp { return "the session store cannot be reached" }
            return nil
        }
    }
}
