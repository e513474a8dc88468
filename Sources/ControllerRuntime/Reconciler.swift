/// What a controller reconciles: the namespace and name of one object (controller-runtime's
/// `reconcile.Request`). The reconciler reads the object from a cache, never from the event.
public struct ReconcileRequest: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// Empty for cluster-scoped objects.
    public var namespace: String
    public var name: String

    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }

    /// `namespace/name` (or `name` when cluster-scoped).
    public var description: String { namespace.isEmpty ? name : "\(namespace)/\(name)" }

    public static func < (lhs: ReconcileRequest, rhs: ReconcileRequest) -> Bool {
        (lhs.namespace, lhs.name) < (rhs.namespace, rhs.name)
    }
}

/// How a reconcile ended, besides throwing.
public enum ReconcileResult: Sendable, Equatable {
    /// The object is where it should be; nothing more until it (or a watched object) changes.
    case done
    /// Run again after the key's backoff delay (counts as a retry).
    case requeue
    /// Run again after this delay (a token to rotate, a timeout to enforce); resets backoff.
    case requeueAfter(Duration)
}

/// Brings one object to its desired state. Must be idempotent: it may run again at any time
/// for the same request, and never runs twice at once for it.
///
/// Throwing retries the request with per-key exponential backoff, unless the error is a
/// ``TerminalError`` (a spec that cannot work until someone changes it): that is counted and
/// logged but not retried, since retrying cannot help.
public protocol Reconciler: Sendable {
    func reconcile(_ request: ReconcileRequest) async throws -> ReconcileResult
}

/// An error that retrying will not fix (controller-runtime's `reconcile.TerminalError`).
public struct TerminalError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "terminal error: \(message)" }
}

/// A reconciler from a closure (tests and small controllers).
public struct ReconcilerFunction: Reconciler {
    let body: @Sendable (ReconcileRequest) async throws -> ReconcileResult
    public init(_ body: @escaping @Sendable (ReconcileRequest) async throws -> ReconcileResult) { self.body = body }
    public func reconcile(_ request: ReconcileRequest) async throws -> ReconcileResult { try await body(request) }
}
