import Foundation
import HTTPServing
import Logging
import ServiceLifecycle
import SessionStore

/// The pieces of ``GatewayRunner``'s `ServiceGroup` that are not types of their own: the
/// listeners (drained on graceful shutdown), the probe listener's answers and the readiness
/// they report.
///
/// Contract: every service's `run()` ends on graceful shutdown or cancellation. The group
/// shuts services down in reverse order, so ``GatewayListeners`` (last) drains the exchanges
/// in flight while the connection configuration, heartbeats, status reporter and pruner still run.

/// A service whose body is a closure (heartbeats, file reloads with their interval).
struct GatewayTask: Service {
    let body: @Sendable () async -> Void

    func run() async {
        await cancelWhenGracefulShutdown { await body() }
    }
}

/// The gateway listener, the admin API and the probe listener. Bound by ``GatewayRunner``
/// after the configuration synced; ``run()`` waits for graceful shutdown, then stops
/// accepting, lets the exchanges in flight finish and be recorded (up to `drain`) and
/// closes every listener, the probe listener last so it answers "shutting down" meanwhile.
final class GatewayListeners: Service, @unchecked Sendable {
    private let gateway: Gateway
    private let readiness: GatewayReadiness
    private let drain: Duration
    private let lock = NSLock()
    private var servers: [HTTPServer] = []
    private var closed = false

    init(gateway: Gateway, readiness: GatewayReadiness, drain: Duration) {
        self.gateway = gateway
        self.readiness = readiness
        self.drain = drain
    }

    /// Adds a listener closed after the gateway's (admin, probes).
    func add(_ server: HTTPServer) { lock.withLock { servers.append(server) } }

    func run() async {
        try? await gracefulShutdown()
        await close()
    }

    /// Drains and closes everything, once.
    func close() async {
        let servers: [HTTPServer]? = lock.withLock {
            if closed { return nil }
            closed = true
            return self.servers
        }
        guard let servers else { return }
        readiness.shuttingDown()
        await gateway.shutdown(drain: drain)
        for server in servers { await server.shutdown() }
    }
}

/// The gateway's readiness: ready once the connection configuration was synced (the first
/// full list of connection Secrets applied, so no agent gets 404 for a connection not yet
/// read) and while the session store answers its heartbeats (a replica that cannot record
/// would refuse every request under FailClosed, so traffic goes to the others); not ready
/// once shutting down.
public final class GatewayReadiness: @unchecked Sendable {
    private let lock = NSLock()
    private let configSynced: @Sendable () -> Bool
    private var storeUp = true
    private var stopping = false

    init(configSynced: @escaping @Sendable () -> Bool) { self.configSynced = configSynced }

    func storeReachable(_ reachable: Bool) { lock.withLock { storeUp = reachable } }
    func shuttingDown() { lock.withLock { stopping = true } }

    /// Why the gateway is not ready, or nil when it is.
    public var problem: String? {
        if !configSynced() { return "the connection configuration is not synced yet" }
        return lock.withLock {
            if stopping { return "the gateway is shutting down" }
            if !storeUp { return "the session store cannot be reached" }
            return nil
        }
    }
}

/// The probe listener (`--metrics-address`): `/metrics`, `/healthz` (`/livez`) and `/readyz`.
enum ProbeEndpoint {
    static func answer(_ request: HTTPRequest, metrics: GatewayMetrics, readiness: GatewayReadiness) -> HTTPResponse {
        let text = [("Content-Type", "text/plain")]
        switch request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "" {
        case "/metrics":
            return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4")], body: .bytes(Array(metrics.render().utf8)))
        case "/healthz", "/livez":
            return HTTPResponse(status: 200, headers: text, body: .bytes(Array("ok".utf8)))
        case "/readyz":
            let problem = readiness.problem
            return HTTPResponse(status: problem == nil ? 200 : 503, headers: text, body: .bytes(Array((problem ?? "ok").utf8)))
        default:
            return HTTPResponse(status: 404, headers: text,
                                body: .bytes(Array("not found: this listener serves /metrics, /healthz and /readyz".utf8)))
        }
    }
}
