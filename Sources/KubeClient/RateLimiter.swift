import Foundation

/// A client-side token bucket, as client-go's `flowcontrol.NewTokenBucketRateLimiter`: up to
/// `burst` requests at once, refilled at `qps` per second. Off unless
/// ``KubernetesClient/Options/rateLimit`` is set; watches are long-lived and take one token
/// per (re)connection, not per event.
///
/// Contract: ``acquire()`` returns at once while tokens are left, otherwise sleeps until the
/// next token is due; waiters are served in arrival order (each reserves its slot under the
/// lock, so no waiter is starved); a cancelled waiter throws `CancellationError`.
public final class RateLimiter: @unchecked Sendable {
    public let qps: Double
    public let burst: Int
    private let lock = NSLock()
    private var tokens: Double
    private var last: ContinuousClock.Instant
    private let clock = ContinuousClock()

    /// `qps` > 0; `burst` >= 1 (values out of range are clamped).
    public init(qps: Double, burst: Int) {
        self.qps = max(qps, 0.001)
        self.burst = max(burst, 1)
        self.tokens = Double(max(burst, 1))
        self.last = clock.now
    }

    /// Takes one token, waiting for it if none is left.
    public func acquire() async throws {
        let wait = reserve()
        if wait > .zero { try await Task.sleep(for: wait) }
    }

    /// Takes a token now (possibly going negative) and returns how long the caller must wait
    /// for it to be due.
    func reserve() -> Duration {
        lock.lock()
        defer { lock.unlock() }
        let now = clock.now
        let elapsed = now - last
        last = now
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        tokens = min(Double(burst), tokens + seconds * qps)
        tokens -= 1
        if tokens >= 0 { return .zero }
        return .milliseconds(Int64((-tokens / qps * 1000).rounded(.up)))
    }
}
