import Foundation
import KubeCore

/// One change seen by a ``Watcher``.
///
/// The events keep a consumer's view correct if applied in order: `added`/`modified` put the
/// object, `deleted` removes it. After a relist (start, or a resourceVersion that fell out of the
/// server's history) the watcher sends the *difference* between what it delivered before and the
/// fresh list, as ordinary `added`/`modified`/`deleted` events, then `synced`. A `deleted` from a
/// relist carries the last state the watcher delivered (the final state is unknown, as with
/// client-go's `DeletedFinalStateUnknown`).
public enum WatchEvent<Object: Sendable>: Sendable {
    case added(Object)
    case modified(Object)
    case deleted(Object)
    /// The server reached this resourceVersion; nothing to apply (the resume point moved).
    case bookmark(resourceVersion: String)
    /// Everything that existed at this resourceVersion has been delivered: after the initial list
    /// and after each relist. A cache is "synced" from the first one on.
    case synced(resourceVersion: String)

    /// The object of an added/modified/deleted event.
    public var object: Object? {
        switch self {
        case .added(let o), .modified(let o), .deleted(let o): return o
        case .bookmark, .synced: return nil
        }
    }

    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `SYNCED`.
    public var typeName: String {
        switch self {
        case .added: return "ADDED"
        case .modified: return "MODIFIED"
        case .deleted: return "DELETED"
        case .bookmark: return "BOOKMARK"
        case .synced: return "SYNCED"
        }
    }
}

/// How a ``Watcher`` starts, reconnects and selects.
public struct WatchOptions: Sendable {
    public enum InitialList: Sendable {
        /// A streaming list (`sendInitialEvents=true`); falls back to list+watch if the server refuses.
        case streaming
        /// A (paginated) list, then a watch from its resourceVersion.
        case listThenWatch
    }

    public var labelSelector: String?
    public var fieldSelector: String?
    /// Where to start: nil lists first (the view starts complete); a resourceVersion resumes a
    /// watch from there without listing (a 410 then relists).
    public var resourceVersion: String?
    public var initialList: InitialList = .streaming
    /// Page size of the list in list+watch mode and relists.
    public var listPageSize: Int? = 500
    public var backoff = WatchBackoff()
    public var clock: any WatchClock = SystemWatchClock()
    /// A number in [0, 1) for jitter (tests inject a constant).
    public var random: @Sendable () -> Double = { Double.random(in: 0..<1) }
    /// The server-side timeout of each watch request; nil picks 5–10 min at random, as client-go.
    public var timeoutSeconds: Int?
    /// Told of every failure the watcher recovers from (for logs and metrics).
    public var onError: (@Sendable (Error) -> Void)?
    /// Test hook: leave `resourceVersionMatch` out of the streaming-list request, which a
    /// conforming server refuses, to exercise the fallback.
    var omitResourceVersionMatchForTesting = false

    public init(labelSelector: String? = nil, fieldSelector: String? = nil, resourceVersion: String? = nil) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.resourceVersion = resourceVersion
    }
}

/// What a watcher did so far (tests and metrics).
public struct WatchStatistics: Sendable, Equatable {
    /// Watch requests that got a 2xx answer.
    public var connections = 0
    /// Lists (or streaming lists) completed, the first one included.
    public var lists = 0
    /// Relists caused by 410 Gone.
    public var relistsAfterGone = 0
    /// Whether the last initial list was streamed (`sendInitialEvents`).
    public var usedStreamingList = false
    /// Delays slept before reconnecting, in order.
    public var backoffDelays: [Duration] = []
    public init() {}
}
