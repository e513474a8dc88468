import ControllerRuntime
import Foundation
import HTTPServing
import KubeClient
import Logging
import NIOSSL
import ServiceLifecycle
import SessionStore

/// Everything `agentgate gateway` runs, wired together: the session store (recovered, with
/// heartbeats), the connection Secrets watcher, the gateway listener (its TLS pair reloaded
/// when the files change), the admin API, the metrics listener, the AgentConnection
/// `status.sessions` reporter, retention pruning and the alert rules' Events.
///
/// Contract: ``start(_:)`` returns once every listener is bound and the first list of
/// connection Secrets was applied; interrupted exchanges of dead gateway processes are marked
/// incomplete before the first request is served. Everything that runs on its own runs as a
/// `Service` of one `ServiceGroup` (the connection Secrets' informer, the approval broker, heartbeats,
/// the TLS and masking key reloads, retention pruning, the status reporter, the listeners). ``stop()``
/// is its graceful shutdown: the listeners stop accepting, exchanges in flight finish and are
/// recorded (up to ``Options/drainTimeout``), then the other services end and the store closes.
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
        /// How long ``GatewayRunner/stop()`` lets exchanges in flight finish before it closes
        /// their connections.
        public var drainTimeout: Duration = .seconds(10)
        /// SIGTERM and SIGINT start the graceful shutdown of the service group (`agentgate
        /// gateway`); ``GatewayRunner/waitUntilStopped()`` returns once it is done.
        public var stopsOnSignals = false
        public init() {}
    }

    public let gateway: Gateway
    public let store: any SessionStore
    public private(set) var port = 0
    public private(set) var adminPort: Int?
    public private(set) var metricsPort: Int?
    /// The break-glass admin token; nil when it is off.
    public let adminToken: String?
    private let client: KubernetesClient
    private let listeners: GatewayListeners
    private let lock = NSLock()
    private var group: Task<Void, Never>?
    private var shutdown: ServiceGroup?
    private var stopped = false
    public private(set) var servingCertificate: ServingCertificate?
    public private(set) var adminServingCertificate: ServingCertificate?
    public private(set) var maskingKeyFile: MaskingKeyFile?
    /// What `/readyz` on the probe listener (`--metrics-address`) answers.
    public let readiness: GatewayReadiness

    private init(gateway: Gateway, store: any SessionStore, client: KubernetesClient, adminToken: String?,
                 readiness: GatewayReadiness, drain: Duration) {
        self.gateway = gateway
        self.store = store
        self.client = client
        self.adminToken = adminToken
        self.readiness = readiness
        self.listeners = GatewayListeners(gateway: gateway, readiness: readiness, drain: drain)
    }

    public static func start(_ options: Options, logger: Logger = Logger(label: "agentgate.gateway")) async throws -> GatewayRunner {
        let config = try KubeConfig.load(kubeconfigPath: options.kubeconfig, context: options.context)
        let dataDirectory = URL(fileURLWithPath: options.dataDirectory, isDirectory: true)
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        let storeURL = options.store ?? "sqlite:\(dataDirectory.appendingPathComponent("sessions.db").path)"
        // Counted by the gateway, read by the store (SQLite writes the only request's record inline).
        let load = RequestLoad()
        let store = try await Self.openStore(storeURL, load: load, within: options.storeTimeout, logger: logger)
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
        let reporter = SessionStatusReporter(client: client, registry: registry, store: store, interval: options.statusInterval,
                                             logger: logger)
        // Alerts and approvals become Events on the AgentConnection.
        let events = EventRecorder(configuration: .init(controller: "agentgate.io/gateway", instance: store.instanceID),
                                   client: client, logger: logger)
        let gateway: Gateway
        do {
            gateway = try Gateway(upstream: config, registry: registry, store: store,
                                  announcements: GatewayAnnouncements(events: events, statusReporter: reporter), load: load,
                                  logger: logger)
        } catch {
            // Nothing may be left holding connections: an HTTP client's deinit traps.
            try? await client.shutdown()
            try? await store.close()
            throw error
        }

        let readiness = GatewayReadiness(configSynced: { watcher.hasSynced })
        let runner = GatewayRunner(gateway: gateway, store: store, client: client, adminToken: adminToken, readiness: readiness,
                                   drain: options.drainTimeout)
        do {
            var services: [any Service] = [watcher, gateway.approvals, GatewayTask {
                await store.runHeartbeats(interval: options.heartbeatInterval, onSuccess: { readiness.storeReachable(true) }, onError: {
                    readiness.storeReachable(false)
                    logger.warning("the session store cannot be reached, so this gateway reports not ready: \($0)")
                })
            }]
            if let maskingKeyFile {
                runner.maskingKeyFile = maskingKeyFile
                services.append(GatewayTask { await maskingKeyFile.run(interval: options.maskingKeyInterval) })
            }
            var tls: NIOSSLContext?
            switch (options.tlsCertificateFile, options.tlsKeyFile) {
            case let (cert?, key?):
                let certificate = try ServingCertificate(certificateFile: cert, keyFile: key, logger: logger)
                tls = try certificate.makeContext()
                runner.servingCertificate = certificate
                services.append(GatewayTask { await certificate.run(interval: options.tlsReloadInterval) })
            case (nil, nil):
                let (host, _) = try parseAddress(options.listen, flag: "--listen")
                guard ["127.0.0.1", "localhost", "::1"].contains(host) else {
                    throw GatewayConfigError("--listen \(options.listen): plain HTTP is only served on loopback; give --tls-cert and --tls-key")
                }
            default:
                throw GatewayConfigError("--tls-cert and --tls-key go together")
            }
            var adminTLS: NIOSSLContext?
            if options.adminListen != nil, let cert = options.adminTLSCertificateFile, let key = options.adminTLSKeyFile {
                let certificate = try ServingCertificate(certificateFile: cert, keyFile: key, logger: logger)
                adminTLS = try certificate.makeContext()
                runner.adminServingCertificate = certificate
                services.append(GatewayTask { await certificate.run(interval: options.tlsReloadInterval) })
            }
            let pruner = RetentionPruner(registry: registry, store: store, interval: options.pruneInterval, logger: logger)
            // Shut down in reverse: the listeners drain first, while everything else still runs.
            services += [pruner, reporter, runner.listeners]
            let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) },
                                                          gracefulShutdownSignals: options.stopsOnSignals ? [.sigterm, .sigint] : [],
                                                          logger: logger))
            runner.lock.withLock {
                runner.shutdown = group
                runner.group = Task {
                    do { try await group.run() } catch { logger.error("the gateway's services stopped: \(error)") }
                }
            }
            await watcher.waitUntilSynced()

            let (host, port) = try parseAddress(options.listen, flag: "--listen")
            runner.port = try await gateway.start(host: host, port: port, tls: tls)
            let admin = AdminAPI(store: store, token: adminToken, authorization: adminAuth, gateway: gateway, logger: logger)
            if adminToken == nil && adminAuth == nil {
                logger.warning("the admin API has no admin issuer (--admin-auth-file) and its break-glass token is off: only connection approvers can use it")
            }
            if let address = options.adminListen {
                let (h, p) = try parseAddress(address, flag: "--admin-listen")
                let server = HTTPServer()
                runner.listeners.add(server)
                let bound = try await server.start(host: h, port: p, tls: adminTLS) { await admin.handle($0) }
                runner.adminPort = bound
                // `agentgate sessions --data-dir DIR` finds the admin API here.
                let shown = h == "0.0.0.0" ? "127.0.0.1" : (h.contains(":") ? "[\(h)]" : h)
                try "\(adminTLS == nil ? "http" : "https")://\(shown):\(bound)\n".write(
                    to: dataDirectory.appendingPathComponent("admin-address"), atomically: true, encoding: .utf8)
            }
            if let address = options.metricsAddress {
                let (h, p) = try parseAddress(address, flag: "--metrics-address")
                let server = HTTPServer()
                runner.listeners.add(server)
                let metrics = gateway.metrics
                runner.metricsPort = try await server.start(host: h, port: p, tls: nil) {
                    ProbeEndpoint.answer($0, metrics: metrics, readiness: readiness)
                }
            }
        } catch {
            // A listener that cannot bind, a TLS pair that cannot load: close what was opened.
            await runner.stop()
            throw error
        }
        return runner
    }

    /// Returns once the service group has ended: after a graceful shutdown (SIGTERM or SIGINT
    /// with ``Options/stopsOnSignals``, or ``stop()``) drained the listeners and stopped every
    /// service. Call ``stop()`` then to close the store and the Kubernetes client.
    public func waitUntilStopped() async {
        let task = lock.withLock { group }
        await task?.value
    }

    /// Graceful shutdown: the listeners drain (see ``Options/drainTimeout``), every service
    /// ends, then the store and the Kubernetes client close. Idempotent.
    public func stop() async {
        let (group, task, first): (ServiceGroup?, Task<Void, Never>?, Bool) = lock.withLock {
            defer { stopped = true }
            return (shutdown, self.group, !stopped)
        }
        guard first else { return }
        if let group, let task {
            await group.triggerGracefulShutdown()
            await task.value
        }
        // Before the group ran, or should its run have ended early.
        await listeners.close()
        try? await store.close()
        try? await client.shutdown()
    }

    /// Opens (and migrates) the store, or fails once `bound` has passed: PostgreSQL's pool
    /// retries an unreachable server for ever, which left a gateway waiting with nothing but
    /// the driver's info lines. While it waits, a warning every 10 s says what it waits for.
    static func openStore(_ url: String, load: RequestLoad, within bound: Duration, logger: Logger) async throws -> any SessionStore {
        let shown = StoreURL.redacted(url)
        let outcome = FirstOutcome<any SessionStore>()
        Task {
            do {
                var options = SessionStoreOptions()
                options.requestLoad = load
                let store = try await SessionStores.open(url: url, options: options, logger: logger)
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
        return try await outcome.value()
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
