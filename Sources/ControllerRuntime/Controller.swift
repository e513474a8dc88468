import Foundation
import Logging
import Prometheus

/// Runs a ``Reconciler`` over the keys of a ``WorkQueue`` with N workers.
///
/// Contract:
/// - Keys come from event handlers (``Informer/addHandler(_:)`` with ``EventHandler``s) or
///   from ``enqueue(_:)``; the queue dedups them and never hands one key to two workers at
///   once, so a burst of changes to one object collapses into a few reconciles.
/// - `done` forgets the key's backoff; `requeueAfter(d)` forgets it and queues after `d`;
///   `requeue` and thrown errors queue after the key's next backoff delay (5 ms doubling to
///   1000 s); a ``TerminalError`` is not retried.
/// - ``run()`` returns once the queue is shut down (``shutDown()``) and every worker has
///   finished the reconcile it was running: shutdown drains, it does not abort. Cancelling
///   the task that runs it aborts in-flight reconciles instead (lost leadership).
public final class Controller: Sendable {
    public let name: String
    public let queue: WorkQueue<ReconcileRequest>
    public let workers: Int
    let reconciler: any Reconciler
    let metrics: ControllerMetrics
    let logger: Logger

    public init(name: String, reconciler: any Reconciler, workers: Int = 1, backoff: ExponentialBackoff = ExponentialBackoff(),
                registry: PrometheusCollectorRegistry, logger: Logger = Logger(label: "agentgate.controller")) {
        precondition(workers > 0, "a controller needs at least one worker")
        self.name = name
        self.reconciler = reconciler
        self.workers = workers
        self.queue = WorkQueue(backoff: backoff, metrics: WorkQueueMetrics(registry: registry, name: name))
        self.metrics = ControllerMetrics(registry: registry, controller: name)
        var logger = logger
        logger[metadataKey: "controller"] = "\(name)"
        self.logger = logger
        metrics.maxConcurrent.set(Double(workers))
    }

    /// Queues a reconcile of `request`.
    public func enqueue(_ request: ReconcileRequest) { queue.add(request) }

    /// Stops taking keys; ``run()`` returns once in-flight reconciles finish.
    public func shutDown() { queue.shutDown() }

    /// Runs the workers until the queue is shut down.
    public func run() async {
        logger.info("starting workers", metadata: ["workers": "\(workers)"])
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<workers {
                group.addTask { await self.work() }
            }
        }
        logger.info("all workers finished")
    }

    private func work() async {
        while let request = await queue.get() {
            await process(request)
            queue.done(request)
        }
    }

    private func process(_ request: ReconcileRequest) async {
        metrics.activeWorkers.increment()
        defer { metrics.activeWorkers.decrement() }
        let started = ContinuousClock.now
        let outcome: Result<ReconcileResult, Error>
        do {
            outcome = .success(try await reconciler.reconcile(request))
        } catch {
            outcome = .failure(error)
        }
        let elapsed = ContinuousClock.now - started
        metrics.time.record(elapsed)
        queue.metrics?.workDuration.record(elapsed)

        switch outcome {
        case .success(.done):
            queue.forget(request)
            metrics.success.increment()
        case .success(.requeueAfter(let delay)):
            queue.forget(request)
            queue.addAfter(request, delay)
            metrics.requeueAfter.increment()
        case .success(.requeue):
            queue.addRateLimited(request)
            metrics.requeue.increment()
        case .failure(let error as TerminalError):
            queue.forget(request)
            metrics.error.increment()
            metrics.errors.increment()
            metrics.terminalErrors.increment()
            logger.error("reconcile failed; not retrying", metadata: ["request": "\(request)", "error": "\(error.message)"])
        case .failure(let error):
            if error is CancellationError || Task.isCancelled {
                // Aborted (lost leadership): the next leader reconciles it.
                return
            }
            queue.addRateLimited(request)
            metrics.error.increment()
            metrics.errors.increment()
            logger.warning("reconcile failed; will retry", metadata: [
                "request": "\(request)", "error": "\(error)", "retries": "\(queue.numRequeues(request))",
            ])
        }
    }
}
