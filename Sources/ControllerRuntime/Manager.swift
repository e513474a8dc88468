import Foundation
import HTTPServing
import KubeClient
import Logging
import Prometheus
import ServiceLifecycle

/// Runs informers and controllers with leader election, metrics and probes
/// (controller-runtime's manager), as a swift-service-lifecycle `Service`.
///
/// Lifecycle of ``run()``:
/// 1. Serve `/metrics` on the metrics address and `/healthz`, `/readyz` on the health
///    address (either may be nil; both may be the same address).
/// 2. Start every informer, on every replica, and wait for their caches to sync; `/readyz`
///    answers 200 from then on (500 naming the unsynced kinds before).
/// 3. With leader election, wait for the Lease; only the leader runs controllers.
/// 4. Run the controllers. Graceful shutdown (SIGTERM through `ServiceGroup`, or
///    ``shutDown()``) stops the queues, waits for in-flight reconciles to finish, then
///    releases the Lease so a standby takes over at once, then stops informers and servers.
/// 5. Losing the Lease aborts in-flight reconciles and makes ``run()`` throw
///    ``LeaderElectionError/lost``; the process should exit (as controller-runtime's does)
///    and be restarted as a standby.
public final class Manager: Service, @unchecked Sendable {
    public struct Options: Sendable {
        /// Lease name (e.g. `agentgate-operator`) and namespace; nil disables leader election.
        public var leaderElection: LeaderElector.Configuration?
        public var metricsAddress: (host: String, port: Int)?
        public var healthAddress: (host: String, port: Int)?
        public var logger = Logger(label: "agentgate.manager")
        /// The build's version, exposed as `agentgate_build_info{version}`.
        public var version = "unknown"

        public init(leaderElection: LeaderElector.Configuration? = nil, metricsAddress: (host: String, port: Int)? = nil,
                    healthAddress: (host: String, port: Int)? = nil) {
            self.leaderElection = leaderElection
            self.metricsAddress = metricsAddress
            self.healthAddress = healthAddress
        }
    }

    public let client: KubernetesClient
    public let registry: PrometheusCollectorRegistry
    public let options: Options
    public let elector: LeaderElector?
    private let processMetrics: ProcessMetrics
    private let lock = NSLock()
    private var informers: [any InformerRunnable] = []
    private var controllers: [Controller] = []
    private var servers: [HTTPServer] = []
    private var boundPorts: (metrics: Int?, health: Int?) = (nil, nil)
    private var started = false
    private let stopSignal = StopSignal()
    private var logger: Logger { options.logger }

    public init(client: KubernetesClient, options: Options = Options(), registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) throws {
        self.client = client
        self.options = options
        self.registry = registry
        self.processMetrics = ProcessMetrics(registry: registry, version: options.version)
        self.elector = try options.leaderElection.map {
            try LeaderElector(configuration: $0, client: client, registry: registry, logger: options.logger)
        }
    }

    /// Registers an informer (before ``run()``).
    public func add<Object>(_ informer: Informer<Object>) {
        lock.withLock { informers.append(informer) }
    }

    /// Registers a controller (before ``run()``).
    public func add(_ controller: Controller) {
        lock.withLock { controllers.append(controller) }
    }

    /// Whether every informer has synced (what `/readyz` reports).
    public var cachesSynced: Bool { lock.withLock { informers }.allSatisfy(\.hasSynced) }

    /// Ports the metrics and health servers bound (useful with port 0), once ``run()`` started them.
    public var metricsPort: Int? { lock.withLock { boundPorts.metrics } }
    public var healthPort: Int? { lock.withLock { boundPorts.health } }

    /// Begins a graceful shutdown (what SIGTERM does through `ServiceGroup`).
    public func shutDown() {
        stopSignal.stop()
        for controller in lock.withLock({ controllers }) { controller.shutDown() }
    }

    public func run() async throws {
        let (informers, controllers): ([any InformerRunnable], [Controller]) = lock.withLock {
            precondition(!started, "a manager runs once")
            started = true
            return (self.informers, self.controllers)
        }
        try await startServers()
        do {
            try await runInformersAndControllers(informers, controllers)
        } catch {
            await stopServers()
            throw error
        }
        await stopServers()
    }

    /// Closes the metrics and probe listeners before ``run()`` returns, so their ports are free.
    private func stopServers() async {
        let servers: [HTTPServer] = lock.withLock {
            defer { self.servers.removeAll() }
            return self.servers
        }
        for server in servers { await server.shutdown() }
    }

    private func runInformersAndControllers(_ informers: [any InformerRunnable], _ controllers: [Controller]) async throws {
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                // Informers run until this group is cancelled, on every replica.
                let informerTask = Task {
                    await withTaskGroup(of: Void.self) { informerGroup in
                        for informer in informers { informerGroup.addTask { await informer.run() } }
                    }
                }
                defer { informerTask.cancel() }

                logger.info("waiting for caches to sync", metadata: ["informers": "\(informers.map(\.resourceName))"])
                await withTaskGroup(of: Void.self) { syncGroup in
                    syncGroup.addTask {
                        await withTaskGroup(of: Void.self) { each in
                            for informer in informers { each.addTask { await informer.waitForSync() } }
                        }
                    }
                    syncGroup.addTask { await self.stopSignal.wait() }
                    await syncGroup.next()
                    syncGroup.cancelAll()
                }
                if stopSignal.isStopped { return }
                logger.info("caches synced")

                // Renewal goes on while in-flight reconciles drain, so no one else leads meanwhile.
                let drained = StopSignal()
                if let elector {
                    guard await elector.acquire(until: stopSignal) else { return }
                    group.addTask { try await elector.renew(until: drained) }
                }
                group.addTask {
                    await withTaskGroup(of: Void.self) { controllerGroup in
                        for controller in controllers { controllerGroup.addTask { await controller.run() } }
                    }
                    // Controllers return only after shutdown drained them: stop renewing, then release.
                    drained.stop()
                }
                do {
                    try await group.waitForAll()
                } catch {
                    // Lost leadership: abort in-flight reconciles.
                    for controller in controllers { controller.shutDown() }
                    group.cancelAll()
                    throw error
                }
                await elector?.release()
                logger.info("manager stopped")
            }
        } onGracefulShutdown: {
            self.logger.info("graceful shutdown: draining workers")
            self.shutDown()
        }
    }

    // MARK: Probes and metrics

    private var clientCounters: [RequestStatistics.Outcome: (counter: Counter, reported: Int)] = [:]

    /// `rest_client_requests_total{code,method,resource}` (client-go's name and labels, by
    /// resource instead of host; `code` is `<error>` when no answer came) from the client's
    /// own counts, brought up to date at each scrape.
    private func updateClientMetrics() {
        let outcomes = client.statistics.byOutcome
        lock.withLock {
            for (outcome, count) in outcomes {
                var entry = clientCounters[outcome] ?? (registry.makeCounter(
                    descriptor: WorkQueueMetrics.descriptor("rest_client_requests_total",
                                                            "Number of HTTP requests, partitioned by status code, method, and resource."),
                    labels: [("code", outcome.code), ("method", outcome.method), ("resource", outcome.resource)]), 0)
                if count > entry.reported {
                    entry.counter.increment(by: Int64(count - entry.reported))
                    entry.reported = count
                }
                clientCounters[outcome] = entry
            }
        }
    }

    private func startServers() async throws {
        let metricsAddress = options.metricsAddress
        let healthAddress = options.healthAddress
        if let metricsAddress, let healthAddress, metricsAddress.host == healthAddress.host, metricsAddress.port == healthAddress.port {
            let port = try await serve(metricsAddress, metrics: true, health: true)
            lock.withLock { boundPorts = (port, port) }
            return
        }
        if let metricsAddress {
            let port = try await serve(metricsAddress, metrics: true, health: false)
            lock.withLock { boundPorts.metrics = port }
        }
        if let healthAddress {
            let port = try await serve(healthAddress, metrics: false, health: true)
            lock.withLock { boundPorts.health = port }
        }
    }

    private func serve(_ address: (host: String, port: Int), metrics: Bool, health: Bool) async throws -> Int {
        let server = HTTPServer()
        let port: Int
        do {
            port = try await server.start(host: address.host, port: address.port, tls: nil) { [weak self] request in
                guard let self else { return HTTPResponse(status: 503) }
                return self.probe(request, metrics: metrics, health: health)
            }
        } catch {
            throw ManagerError.cannotListen(address: "\(address.host):\(address.port)", reason: "\(error)")
        }
        lock.withLock { servers.append(server) }
        logger.info("serving", metadata: ["address": "\(address.host):\(port)", "metrics": "\(metrics)", "probes": "\(health)"])
        return port
    }

    private func probe(_ request: HTTPRequest, metrics: Bool, health: Bool) -> HTTPResponse {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        let text = [("Content-Type", "text/plain; charset=utf-8")]
        switch path {
        case "/metrics" where metrics:
            updateClientMetrics()
            processMetrics.update()
            return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                                body: .bytes(registry.emitToBuffer()))
        case "/healthz" where health, "/livez" where health:
            return HTTPResponse(status: 200, headers: text, body: .bytes(Array("ok".utf8)))
        case "/readyz" where health:
            let unsynced = lock.withLock { informers }.filter { !$0.hasSynced }.map(\.resourceName)
            if stopSignal.isStopped {
                return HTTPResponse(status: 500, headers: text, body: .bytes(Array("[-]shutdown: shutting down\n".utf8)))
            }
            guard unsynced.isEmpty else {
                let body = unsynced.map { "[-]informer-sync: \($0) not synced\n" }.joined()
                return HTTPResponse(status: 500, headers: text, body: .bytes(Array(body.utf8)))
            }
            return HTTPResponse(status: 200, headers: text, body: .bytes(Array("ok".utf8)))
        default:
            return HTTPResponse(status: 404, headers: text, body: .bytes(Array("404 page not found\n".utf8)))
        }
    }
}

public enum ManagerError: Error, CustomStringConvertible {
    case cannotListen(address: String, reason: String)

    public var description: String {
        switch self {
        case .cannotListen(let address, let reason):
            return "cannot listen on \(address): \(reason) (choose another address with --metrics-address / --health-address)"
        }
    }
}

/// What the manager needs of an informer, whatever its kind.
protocol InformerRunnable: Sendable {
    var resourceName: String { get }
    var hasSynced: Bool { get }
    func run() async
    func waitForSync() async
}

extension Informer: InformerRunnable {}
