import AgentGateAPI
import Foundation
import Logging
import ServiceLifecycle
import SessionStore

/// Deletes recorded sessions once they are older than their RecordingPolicy's `retention`.
///
/// Contract:
/// - Every `interval` (10 minutes by default) each served connection's sessions whose last
///   activity is older than that connection's retention (`spec.retention`, default 720h) are
///   deleted with their exchanges and stream chunks.
/// - Sessions of connections this gateway no longer serves are kept until they are older
///   than the longest retention in force (never shorter than the default), so a connection
///   whose Secret is briefly missing does not lose history, and a deleted connection's
///   history still expires.
/// - A retention that is not a duration is never treated as zero: that connection is skipped
///   and the error logged (the operator reports the spec as InvalidSpec).
/// - With several replicas on one PostgreSQL store each prunes; deletes are idempotent.
public final class RetentionPruner: Service, @unchecked Sendable {
    public static let defaultInterval: Duration = .seconds(600)

    private let registry: ConnectionRegistry
    private let store: any SessionStore
    private let interval: Duration
    private let logger: Logger
    private var task: Task<Void, Never>?

    public init(registry: ConnectionRegistry, store: any SessionStore, interval: Duration = RetentionPruner.defaultInterval,
                logger: Logger = Logger(label: "agentgate.gateway.retention")) {
        self.registry = registry
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    /// Prunes every `interval` until graceful shutdown (in a `ServiceGroup`) or cancellation.
    public func run() async {
        await cancelWhenGracefulShutdown { [self] in
            while !Task.isCancelled {
                _ = await pruneOnce()
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// ``run()`` in a task of its own, until ``stop()``.
    public func start() {
        task = Task { await self.run() }
    }

    public func stop() {
        task?.cancel()
    }

    /// One pass; returns what was deleted in total.
    @discardableResult
    public func pruneOnce(at now: Date = Date()) async -> PruneResult {
        var total = PruneResult()
        var longest = RecordingPolicySpec().retentionSeconds ?? 720 * 3600
        for connection in registry.all {
            let ref = ConnectionRef(namespace: connection.config.namespace, name: connection.config.name)
            guard let retention = connection.config.recording.retentionSeconds, retention > 0 else {
                logger.error("connection \(ref): retention \"\(connection.config.recording.retention ?? "")\" is not a duration; its sessions are not pruned")
                continue
            }
            longest = max(longest, retention)
            do {
                total.add(try await store.prune(olderThan: now.addingTimeInterval(-retention), connection: ref))
            } catch {
                if !Task.isCancelled { logger.warning("pruning sessions of \(ref) failed: \(error)") }
            }
        }
        do {
            total.add(try await store.prune(olderThan: now.addingTimeInterval(-longest), connection: nil))
        } catch {
            if !Task.isCancelled { logger.warning("pruning sessions of connections no longer served failed: \(error)") }
        }
        if total.sessions > 0 {
            logger.info("retention deleted \(total.sessions) session(s), \(total.exchanges) exchange(s), \(total.bytes) bytes")
        }
        return total
    }
}

extension PruneResult {
    mutating func add(_ other: PruneResult) {
        sessions += other.sessions
        exchanges += other.exchanges
        streamChunks += other.streamChunks
        bytes += other.bytes
    }
}
