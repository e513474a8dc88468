import Foundation

/// How many requests a gateway process is serving right now: counted by the gateway (each
/// request, and each streamed answer until it is recorded), read by the store to choose how
/// to run a write, and waited on by a graceful shutdown.
///
/// Given to the store at construction (``SessionStoreOptions/requestLoad``) and to the
/// gateway, so the store's choice is an explicit collaborator, not a value carried down the
/// call stack. Without one, the store assumes concurrency (it queues every write).
public final class RequestLoad: @unchecked Sendable {   // `count` and `idleWaiters` behind `lock`
    private let lock = NSLock()
    private var count = 0
    private var idleWaiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    private var nextWaiter: UInt64 = 0

    public init() {}

    /// Requests in flight now.
    public var current: Int { lock.withLock { count } }

    /// Counts one more request in flight.
    public func enter() {
        lock.withLock { count += 1 }
    }

    /// Counts one request done; wakes the ``idle(within:)`` waiters when it was the last.
    public func leave() {
        let woken = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            count -= 1
            guard count == 0 else { return [] }
            defer { idleWaiters.removeAll() }
            return Array(idleWaiters.values)
        }
        for waiter in woken { waiter.resume() }
    }

    /// Returns once no request is in flight, or after `limit`, whichever comes first.
    public func idle(within limit: Duration) async {
        let id = lock.withLock { () -> UInt64 in
            nextWaiter += 1
            return nextWaiter
        }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: limit)
            self?.release(id)
        }
        defer { timer.cancel() }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waiting = lock.withLock { () -> Bool in
                guard count > 0 else { return false }
                idleWaiters[id] = continuation
                return true
            }
            if !waiting { continuation.resume() }
        }
    }

    private func release(_ id: UInt64) {
        lock.withLock { idleWaiters.removeValue(forKey: id) }?.resume()
    }
}
