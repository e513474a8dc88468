import Foundation

/// The result of whichever of several racing tasks finishes first (a piece of work and its
/// deadline), handed to the one caller waiting in ``value()``; later results are refused, so
/// the loser can clean up what it made (close a store opened too late).
///
/// Used where a wait must end even if the work never does: the PostgreSQL driver's bound on
/// an unanswered statement, and the gateway's `--store-timeout` on opening the store.
public final class FirstOutcome<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<T, any Error>?
    private var waiter: CheckedContinuation<T, any Error>?

    public init() {}

    /// Sets the result unless one is set already; true when this call set it.
    @discardableResult
    public func finish(_ result: Result<T, any Error>) -> Bool {
        let (first, waiter) = lock.withLock { () -> (Bool, CheckedContinuation<T, any Error>?) in
            guard self.result == nil else { return (false, nil) }
            self.result = result
            defer { self.waiter = nil }
            return (true, self.waiter)
        }
        waiter?.resume(with: result)
        return first
    }

    public var isFinished: Bool { lock.withLock { result != nil } }

    /// The first result, now if it is set, or once it is. One caller only.
    public func value() async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let ready = lock.withLock { () -> Result<T, any Error>? in
                if let result { return result }
                waiter = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}
