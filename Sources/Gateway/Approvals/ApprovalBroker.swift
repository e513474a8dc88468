import AgentGateAPI
import ControllerRuntime
import Foundation
import KubeCore
import Logging
import ServiceLifecycle
import SessionStore

/// The gateway's registry of held requests, and the one place decisions are made.
///
/// Flow: the pipeline stores a `pending` approval, announces it and calls ``hold(_:)``, which
/// returns the approval once it is final. A held request is released by
/// - a decision through ``decide(_:_:)`` on this gateway (the admin API), at once;
/// - a decision on another replica: the store's ``SessionStore/approvalDecisions()`` stream
///   (PostgreSQL LISTEN/NOTIFY) wakes the waiter, which re-reads the approval;
/// - the timeout: the waiter itself decides `expired`;
/// - ``shutdown()``: the approval becomes `abandoned` (the agent gets 503);
/// - the agent hanging up (its task is cancelled): `abandoned` too.
///
/// As a `Service` (``run()``, in the gateway's `ServiceGroup`) it listens for decisions made
/// on other replicas until graceful shutdown.
///
/// Guarantees: every decision is the store's conditional update, so exactly one of the
/// racing outcomes wins and the held request acts on that one. Waiters also re-read their
/// approval every ``pollInterval``, so a notification lost while LISTEN reconnects delays a
/// release, never loses it.
public final class ApprovalBroker: Service, @unchecked Sendable {
    enum Wake: Sendable { case check, shutdown }

    public static let pollInterval: Duration = .seconds(10)

    let store: any SessionStore
    let logger: Logger
    private let lock = NSLock()
    private var waiters: [ApprovalID: AsyncStream<Wake>.Continuation] = [:]
    /// Fired when the last held request lets go after ``shutdown()`` released it.
    private let released = StopSignal()
    private var stopping = false
    /// Announces each approval that became final here or was found final.
    private let announcer: ApprovalAnnouncer

    init(store: any SessionStore, announcer: ApprovalAnnouncer, logger: Logger) {
        self.store = store
        self.announcer = announcer
        self.logger = logger
    }

    /// Listens for decisions made on other replicas (PostgreSQL NOTIFY) until graceful
    /// shutdown or cancellation. Without it, held requests still see such decisions at their
    /// next poll (``pollInterval``).
    public func run() async {
        let decisions = store.approvalDecisions()
        await cancelWhenGracefulShutdown {
            for await id in decisions { self.wake(id, .check) }
        }
    }

    /// Requests held right now (for tests and metrics).
    public var heldCount: Int { lock.withLock { waiters.count } }

    /// Holds until `approval` (already stored as pending) is final; returns it as decided.
    func hold(_ approval: ApprovalRecord) async -> ApprovalRecord {
        let (wakes, continuation) = AsyncStream<Wake>.makeStream(bufferingPolicy: .bufferingNewest(8))
        let alreadyStopping = lock.withLock { () -> Bool in
            if !stopping { waiters[approval.id] = continuation }
            return stopping
        }
        defer {
            let last = lock.withLock { () -> Bool in
                waiters[approval.id] = nil
                return stopping && waiters.isEmpty
            }
            if last { released.stop() }
        }
        if alreadyStopping { return await finish(approval, .abandoned, "the gateway is shutting down") }
        // A decision may have landed between storing the approval and registering here.
        continuation.yield(.check)
        let ticker = Task {
            while !Task.isCancelled {
                let remaining = approval.expiresAt.timeIntervalSinceNow
                try? await Task.sleep(for: min(Self.pollInterval, .milliseconds(Int64(max(0, remaining) * 1000) + 10)))
                continuation.yield(.check)
            }
        }
        defer { ticker.cancel() }
        for await wake in wakes {
            if wake == .shutdown { return await finish(approval, .abandoned, "the gateway shut down while the request was held") }
            if let current = try? await store.approval(id: approval.id), current.state.isFinal { return current }
            if approval.expiresAt.timeIntervalSinceNow <= 0 {
                return await finish(approval, .expired, nil)
            }
        }
        // The stream ends only when this task is cancelled: the agent went away.
        return await finish(approval, .abandoned, "the agent disconnected before a decision")
    }

    /// Records a decision and releases the request wherever it is held.
    func decide(_ id: ApprovalID, _ decision: ApprovalDecision) async throws -> ApprovalRecord {
        let decided = try await store.decideApproval(id, decision)
        wake(id, .check)
        await announcer.finished(decided)
        return decided
    }

    /// Answers every held request (the agents get 503) and waits briefly for them to finish;
    /// returns how many were held.
    @discardableResult
    func shutdown() async -> Int {
        let held = lock.withLock { () -> [AsyncStream<Wake>.Continuation] in
            stopping = true
            return Array(waiters.values)
        }
        if held.isEmpty { released.stop() }
        for continuation in held { continuation.yield(.shutdown) }
        await released.sleep(.seconds(5))
        return held.count
    }

    private func wake(_ id: ApprovalID, _ wake: Wake) {
        _ = lock.withLock { waiters[id] }?.yield(wake)
    }

    /// Decides `state` unless someone decided first; returns the approval as it ends. When
    /// the store fails, the request is treated as abandoned: it must not go through on a
    /// decision nobody recorded.
    private func finish(_ approval: ApprovalRecord, _ state: ApprovalState, _ reason: String?) async -> ApprovalRecord {
        // A fresh task: a cancelled request (the agent left) must still record its outcome.
        let store = self.store
        let result = await Task { () -> Result<ApprovalRecord, any Error> in
            do {
                return .success(try await store.decideApproval(approval.id, ApprovalDecision(state: state, reason: reason)))
            } catch SessionStoreError.approvalAlreadyDecided(let current) {
                return .success(current)
            } catch {
                return .failure(error)
            }
        }.value
        switch result {
        case .success(let decided):
            if decided.state == state { await announcer.finished(decided) }
            return decided
        case .failure(let error):
            logger.error("recording approval \(approval.id) as \(state.rawValue) failed: \(error)")
            var abandoned = approval
            abandoned.state = .abandoned
            abandoned.reason = "the session store failed: \(error)"
            return abandoned
        }
    }
}
