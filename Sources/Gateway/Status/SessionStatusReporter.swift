import AgentGateAPI
import Foundation
import KubeClient
import KubeCore
import Logging
import ServiceLifecycle
import SessionStore

/// Reports `status.sessions` (active, total, lastActivity, lastSessionID) and
/// `status.pendingApprovals` of every AgentConnection the gateway serves, from the session
/// store.
///
/// Contract:
/// - Written with server-side apply on the `/status` subresource as field manager
///   ``fieldManager`` (`agentgate-gateway`). The applied object holds `status.sessions` and
///   `status.pendingApprovals` only,
///   so the operator's status fields (endpoint, credential, conditions, owned by
///   `agentgate-operator`) are never removed or taken over, and `spec` is never written.
/// - One pass per `interval` (5 s by default), or sooner when ``reportSoon()`` is called (an
///   approval was requested or decided); a connection is applied only when its figures differ
///   from the last apply that succeeded, or that apply is older than ``resyncInterval`` (1 min):
///   an idle gateway writes once a minute per connection at most.
/// - Applies are forced: `status.sessions` belongs to the gateway. Several replicas on one
///   PostgreSQL store compute the same figures under the same manager, so they agree. Two
///   replicas can still race (one reads, the other reads newer figures and applies, the first
///   applies what it read); the first corrects it on its next pass, and should it stop before
///   that, the resync lets any other replica correct it within a minute, though its own
///   figures did not change.
/// - A connection whose AgentConnection is gone (404) is skipped; other errors are logged and
///   retried on the next tick. Reporting never blocks or fails a request.
public final class SessionStatusReporter: Service, @unchecked Sendable {
    public static let fieldManager = "agentgate-gateway"
    public static let defaultInterval: Duration = .seconds(5)
    public static let defaultResyncInterval: Duration = .seconds(60)

    private let client: KubernetesClient
    private let registry: ConnectionRegistry
    private let store: any SessionStore
    private let interval: Duration
    /// How long an apply is trusted to still be on the object (see the contract).
    public let resyncInterval: Duration
    private let logger: Logger
    private let lock = NSLock()
    /// Last figures applied per connection (`namespace/name`), and when.
    private var applied: [String: (figures: Figures, at: Date)] = [:]
    private var applies = 0
    private var task: Task<Void, Never>?
    /// The loop's pause between passes, and whether a pass was asked for during a pass.
    private var pause: CheckedContinuation<Void, Never>?
    private var poked = false

    struct Figures: Equatable {
        var sessions: AgentGateAPI.SessionStats
        var pendingApprovals: Int32
    }

    public init(client: KubernetesClient, registry: ConnectionRegistry, store: any SessionStore,
                interval: Duration = SessionStatusReporter.defaultInterval,
                resyncInterval: Duration = SessionStatusReporter.defaultResyncInterval,
                logger: Logger = Logger(label: "agentgate.gateway.status")) {
        self.client = client
        self.registry = registry
        self.store = store
        self.interval = interval
        self.resyncInterval = resyncInterval
        self.logger = logger
    }

    /// Asks for a pass now rather than at the next tick (passes never overlap).
    public func reportSoon() {
        let waiting = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            defer { pause = nil }
            if pause == nil { poked = true }
            return pause
        }
        waiting?.resume()
    }

    /// Returns after `interval`, or sooner on ``reportSoon()``.
    private func waitForNextPass() async {
        let interval = self.interval
        let timer = Task { [weak self] in
            guard (try? await Task.sleep(for: interval)) != nil else { return }
            self?.reportSoon()
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = lock.withLock { () -> Bool in
                if poked {
                    poked = false
                    return true
                }
                pause = continuation
                return false
            }
            if now { continuation.resume() }
        }
        timer.cancel()
    }

    /// Number of status applies sent so far (for tests and metrics).
    public var applyCount: Int { lock.withLock { applies } }

    /// Reports every `interval` (sooner when poked) until graceful shutdown (in a
    /// `ServiceGroup`) or cancellation.
    public func run() async {
        await cancelWhenGracefulShutdown { [self] in
            await withTaskCancellationHandler {
                while !Task.isCancelled {
                    await reportOnce()
                    await waitForNextPass()
                }
            } onCancel: {
                self.reportSoon()
            }
        }
    }

    /// ``run()`` in a task of its own, until ``stop()``.
    public func start() {
        task = Task { await self.run() }
    }

    public func stop() {
        task?.cancel()
        reportSoon()
    }

    /// One pass at `now`: reads the store's figures and applies those that changed or are due
    /// for a resync.
    public func reportOnce(at now: Date = Date()) async {
        let all: [ConnectionRef: RecordedSessionStats]
        var pending: [ConnectionRef: Int32] = [:]
        do {
            all = try await store.stats(at: now)
            for approval in try await store.listApprovals(ApprovalFilter(state: .pending, limit: 10_000)) {
                pending[approval.connection, default: 0] += 1
            }
        } catch {
            logger.warning("reading session figures for AgentConnection status failed: \(error)")
            return
        }
        for connection in registry.all {
            let ref = ConnectionRef(namespace: connection.config.namespace, name: connection.config.name)
            let figures = Figures(sessions: Self.status(all[ref] ?? RecordedSessionStats()), pendingApprovals: pending[ref] ?? 0)
            let key = "\(ref.namespace)/\(ref.name)"
            if let last = lock.withLock({ applied[key] }), last.figures == figures,
               now.timeIntervalSince(last.at) < Double(resyncInterval.components.seconds) {
                continue
            }
            do {
                try await apply(figures, namespace: ref.namespace, name: ref.name)
                lock.withLock {
                    applied[key] = (figures, now)
                    applies += 1
                }
            } catch KubeError.notFound {
                logger.debug("AgentConnection \(key) is gone; its session status is not reported")
            } catch {
                if !Task.isCancelled { logger.warning("applying status.sessions and pendingApprovals to AgentConnection \(key) failed: \(error)") }
            }
        }
    }

    static func status(_ stats: RecordedSessionStats) -> AgentGateAPI.SessionStats {
        AgentGateAPI.SessionStats(active: Int32(clamping: stats.active), total: stats.total,
                                  lastActivity: stats.lastActivity.map(KubeTime.format), lastSessionID: stats.lastSessionID)
    }

    private func apply(_ figures: Figures, namespace: String, name: String) async throws {
        let sessions = try JSONValue(parsing: JSONEncoder().encode(figures.sessions))
        let object: JSONValue = [
            "apiVersion": .string(AgentConnection.resourceType.apiVersion), "kind": .string(AgentConnection.kind),
            "metadata": ["name": .string(name), "namespace": .string(namespace)],
            "status": ["sessions": sessions, "pendingApprovals": .int(Int64(figures.pendingApprovals))],
        ]
        _ = try await client.apply(AgentConnection.resourceType, object, namespace: namespace,
                                   fieldManager: Self.fieldManager, force: true, subresource: "status")
    }
}
