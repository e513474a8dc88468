import Foundation

/// Time as the watcher sees it, injectable so tests can run backoff schedules instantly.
///
/// `now()` is a monotonic reading (any origin); `sleep(for:)` waits, throwing
/// `CancellationError` when the waiting task is cancelled.
public protocol WatchClock: Sendable {
    func now() -> Duration
    func sleep(for duration: Duration) async throws
}

/// The real clock (`ContinuousClock`).
public struct SystemWatchClock: WatchClock {
    private static let origin = ContinuousClock.now
    public init() {}
    public func now() -> Duration { ContinuousClock.now - Self.origin }
    public func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }
}

/// Reconnect delays of a watch, as client-go's reflector backs off.
///
/// Contract: the first failure waits `initial` (0.8 s), each further failure doubles the base up
/// to `maximum` (30 s); a failure that comes `resetAfter` (2 min) or more after the previous one
/// (the watch was healthy meanwhile) starts again from `initial`. Jitter adds up to
/// `jitter × base` on top (0.2 → 0.8–0.96 s, ..., 30–36 s) so that many clients cut off by the
/// same server restart do not reconnect in lockstep.
public struct WatchBackoff: Sendable {
    public var initial: Duration
    public var maximum: Duration
    public var resetAfter: Duration
    public var jitter: Double
    private var base: Duration?
    private var lastFailure: Duration?

    public init(initial: Duration = .milliseconds(800), maximum: Duration = .seconds(30),
                resetAfter: Duration = .seconds(120), jitter: Double = 0.2) {
        self.initial = initial
        self.maximum = maximum
        self.resetAfter = resetAfter
        self.jitter = max(0, jitter)
    }

    /// The wait before the next attempt after a failure at `now`; `random` is in [0, 1).
    public mutating func nextDelay(now: Duration, random: Double) -> Duration {
        if let lastFailure, now - lastFailure >= resetAfter { base = nil }
        let next: Duration
        if let base {
            next = min(base * 2, maximum)
        } else {
            next = min(initial, maximum)
        }
        base = next
        lastFailure = now
        let extra = next * (jitter * min(max(random, 0), 1))
        return next + extra
    }

    /// Forgets past failures (the next failure waits `initial` again).
    public mutating func reset() {
        base = nil
        lastFailure = nil
    }
}
