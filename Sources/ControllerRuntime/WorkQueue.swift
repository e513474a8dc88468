import Foundation

/// A rate-limited work queue of keys, with client-go's guarantees.
///
/// Contract:
/// - **Dedup**: a key added while it waits is queued once (`dirty`).
/// - **One at a time**: a key handed out by ``get()`` is not handed out again until
///   ``done(_:)``; a key added while it is being processed is queued again when it is done,
///   so a change that arrives mid-reconcile is never lost.
/// - **Delays**: ``addAfter(_:_:)`` keeps the earliest deadline per key;
///   ``addRateLimited(_:)`` waits per ``ExponentialBackoff`` (5 ms doubling to 1000 s by
///   default) counted per key until ``forget(_:)``.
/// - **Shutdown**: ``shutDown()`` wakes every waiting ``get()`` with nil and ignores later
///   adds; keys being processed still finish (the caller calls ``done(_:)``).
public final class WorkQueue<Key: Hashable & Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var queue: [Key] = []
    private var head = 0
    private var dirty: Set<Key> = []
    private var processing: Set<Key> = []
    private var enqueuedAt: [Key: ContinuousClock.Instant] = [:]
    private var waiters: [(id: Int, continuation: CheckedContinuation<Key?, Never>)] = []
    private var nextWaiterID = 0
    private var delayed: [Key: (deadline: ContinuousClock.Instant, task: Task<Void, Never>)] = [:]
    private var failures: [Key: Int] = [:]
    private var shuttingDown = false
    private let backoff: ExponentialBackoff
    let metrics: WorkQueueMetrics?

    public init(backoff: ExponentialBackoff = ExponentialBackoff(), metrics: WorkQueueMetrics? = nil) {
        self.backoff = backoff
        self.metrics = metrics
    }

    /// Keys waiting to be handed out (not counting those being processed or delayed).
    public var depth: Int { lock.withLock { queue.count - head } }
    public var isShuttingDown: Bool { lock.withLock { shuttingDown } }

    /// Queues `key` unless it is already waiting.
    public func add(_ key: Key) {
        let handoff: Handoff? = lock.withLock {
            guard !shuttingDown, !dirty.contains(key) else { return nil }
            dirty.insert(key)
            metrics?.adds.increment()
            guard !processing.contains(key) else { return nil }
            enqueueLocked(key)
            return handoffLocked()
        }
        handoff?.resume()
    }

    /// Queues `key` after `delay`; an earlier pending deadline for the same key wins.
    public func addAfter(_ key: Key, _ delay: Duration) {
        guard delay > .zero else { return add(key) }
        let deadline = ContinuousClock.now + delay
        lock.withLock {
            guard !shuttingDown else { return }
            if let existing = delayed[key], existing.deadline <= deadline { return }
            delayed[key]?.task.cancel()
            let task = Task { [weak self] in
                try? await Task.sleep(until: deadline, clock: .continuous)
                guard !Task.isCancelled else { return }
                self?.fireDelayed(key, deadline: deadline)
            }
            delayed[key] = (deadline, task)
        }
    }

    /// Queues `key` after its next backoff delay (failures are counted per key).
    public func addRateLimited(_ key: Key) {
        let delay: Duration = lock.withLock {
            let count = failures[key, default: 0]
            failures[key] = count + 1
            return backoff.delay(afterFailures: count)
        }
        metrics?.retries.increment()
        addAfter(key, delay)
    }

    /// Resets the backoff of `key` (after a success).
    public func forget(_ key: Key) {
        lock.withLock { _ = failures.removeValue(forKey: key) }
    }

    /// Failures counted for `key` since the last ``forget(_:)``.
    public func numRequeues(_ key: Key) -> Int {
        lock.withLock { failures[key, default: 0] }
    }

    /// The next key to process; nil once the queue is shutting down.
    public func get() async -> Key? {
        let id: Int = lock.withLock {
            nextWaiterID += 1
            return nextWaiterID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Key?, Never>) in
                var immediate: Key??
                lock.withLock {
                    if let key = takeLocked() {
                        immediate = .some(key)
                    } else if shuttingDown || Task.isCancelled {
                        immediate = .some(nil)
                    } else {
                        waiters.append((id, continuation))
                    }
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter: CheckedContinuation<Key?, Never>? = lock.withLock {
                guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return waiters.remove(at: index).continuation
            }
            waiter?.resume(returning: nil)
        }
    }

    /// Marks `key` processed; if it was added meanwhile, it is queued again.
    public func done(_ key: Key) {
        let handoff: Handoff? = lock.withLock {
            processing.remove(key)
            guard dirty.contains(key), !shuttingDown else { return nil }
            enqueueLocked(key)
            return handoffLocked()
        }
        handoff?.resume()
    }

    /// Stops handing out keys: waiting ``get()`` calls return nil, later adds are ignored.
    public func shutDown() {
        let woken: [CheckedContinuation<Key?, Never>] = lock.withLock {
            shuttingDown = true
            for (_, entry) in delayed { entry.task.cancel() }
            delayed.removeAll()
            let all = waiters.map(\.continuation)
            waiters.removeAll()
            return all
        }
        for waiter in woken { waiter.resume(returning: nil) }
    }

    // MARK: Internals (called with the lock held, suffix `Locked`)

    private func enqueueLocked(_ key: Key) {
        queue.append(key)
        enqueuedAt[key] = ContinuousClock.now
        metrics?.depth.set(Double(queue.count - head))
    }

    private func takeLocked() -> Key? {
        guard head < queue.count else { return nil }
        let key = queue[head]
        head += 1
        if head > 1024, head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
        dirty.remove(key)
        processing.insert(key)
        if let since = enqueuedAt.removeValue(forKey: key) {
            metrics?.queueDuration.record(ContinuousClock.now - since)
        }
        metrics?.depth.set(Double(queue.count - head))
        return key
    }

    /// A key taken for a parked ``get()``, resumed once the lock is released.
    private struct Handoff {
        let waiter: CheckedContinuation<Key?, Never>
        let key: Key
        func resume() { waiter.resume(returning: key) }
    }

    private func handoffLocked() -> Handoff? {
        guard !waiters.isEmpty, let key = takeLocked() else { return nil }
        return Handoff(waiter: waiters.removeFirst().continuation, key: key)
    }

    private func fireDelayed(_ key: Key, deadline: ContinuousClock.Instant) {
        let current: Bool = lock.withLock {
            guard let entry = delayed[key], entry.deadline == deadline else { return false }
            delayed.removeValue(forKey: key)
            return true
        }
        if current { add(key) }
    }
}

/// Per-key exponential backoff: `base * 2^failures`, capped (client-go's
/// `ItemExponentialFailureRateLimiter`, 5 ms to 1000 s by default).
public struct ExponentialBackoff: Sendable {
    public var base: Duration
    public var maximum: Duration

    public init(base: Duration = .milliseconds(5), maximum: Duration = .seconds(1000)) {
        self.base = base
        self.maximum = maximum
    }

    /// The delay before the retry that follows `failures` earlier failures.
    public func delay(afterFailures failures: Int) -> Duration {
        guard failures < 62 else { return maximum }
        let factor = Double(UInt64(1) << UInt64(failures))
        let seconds = Double(base.components.seconds) + Double(base.components.attoseconds) / 1e18
        let delay = seconds * factor
        let maxSeconds = Double(maximum.components.seconds) + Double(maximum.components.attoseconds) / 1e18
        return delay >= maxSeconds ? maximum : .nanoseconds(Int64(delay * 1e9))
    }
}
