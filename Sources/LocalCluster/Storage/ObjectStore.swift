import Foundation
import KubeCore

/// One stored object: its serialized JSON (what GET returns) and the fields that lists and
/// watches filter on, so reads never re-encode and memory stays near the JSON size.
public struct StoredObject: Sendable {
    public let bytes: [UInt8]
    public let namespace: String
    public let name: String
    public let labels: [String: String]
    public let resourceVersion: Int64

    /// The parsed object (parsed on demand; objects are stored as bytes).
    public func value() -> JSONValue {
        (try? JSONValue(parsing: bytes)) ?? .object([:])
    }
}

/// A change, as watchers receive it. `previous` lets a watcher with a selector turn a change
/// that moves an object out of (or into) its selection into DELETED (or ADDED).
public struct StoreEvent: Sendable {
    public enum Kind: String, Sendable { case added = "ADDED", modified = "MODIFIED", deleted = "DELETED" }
    public let kind: Kind
    public let resource: ResourceKey
    public let object: StoredObject
    public let previous: StoredObject?
    public var resourceVersion: Int64 { object.resourceVersion }
}

/// What a watch receives from the store: a change, or a progress notification saying every
/// change up to that revision has been delivered (what a BOOKMARK may promise).
public enum StoreWatchItem: Sendable {
    case event(StoreEvent)
    case progress(Int64)
}

/// A running watch on the store.
public struct StoreWatch: Sendable {
    public let items: AsyncStream<StoreWatchItem>
    /// The revision the watch starts after.
    public let startRevision: Int64
    let id: Int
}

/// The outcome a mutation closure asks for.
public enum StoreMutation: Sendable {
    case put(JSONValue)
    case delete
    case unchanged
}

/// Why a watch cannot start.
public enum WatchStartError: Error, Sendable {
    /// The requested resourceVersion is older than the kept history (HTTP 410).
    case expired(requested: Int64, oldest: Int64)
}

/// In-memory object storage with one global, monotonically increasing resourceVersion
/// (as etcd's revision), a bounded event history for resuming watches, and fan-out to
/// watchers. All mutations go through ``mutate(_:namespace:name:_:)``, which runs the
/// caller's read-modify-write closure under the store lock, so checks such as
/// resourceVersion preconditions are atomic with the write.
public final class ObjectStore: @unchecked Sendable {
    private let lock = NSLock()
    private var revision: Int64
    private var buckets: [ResourceKey: [String: StoredObject]] = [:]
    private var history: [StoreEvent] = []
    private var historyStart = 0
    private let historyLimit: Int
    private var watchers: [Int: Watcher] = [:]
    private var nextWatcherID = 0

    struct Watcher {
        let resource: ResourceKey
        let continuation: AsyncStream<StoreWatchItem>.Continuation
    }

    /// `historyLimit`: how many events are kept for resuming watches; older resourceVersions get 410.
    public init(historyLimit: Int = 10_000, initialRevision: Int64 = 1) {
        self.historyLimit = max(1, historyLimit)
        self.revision = initialRevision
    }

    public var currentResourceVersion: Int64 {
        lock.lock()
        defer { lock.unlock() }
        return revision
    }

    public func get(_ resource: ResourceKey, namespace: String, name: String) -> StoredObject? {
        lock.lock()
        defer { lock.unlock() }
        return buckets[resource]?[Self.key(namespace, name)]
    }

    /// Objects of a resource (in one namespace, or all when `namespace` is nil), sorted by
    /// namespace then name, and the revision they were read at.
    public func list(_ resource: ResourceKey, namespace: String?) -> (objects: [StoredObject], resourceVersion: Int64) {
        lock.lock()
        let bucket = buckets[resource] ?? [:]
        let rv = revision
        lock.unlock()
        var objects = namespace.map { ns in bucket.values.filter { $0.namespace == ns } } ?? Array(bucket.values)
        objects.sort { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
        return (objects, rv)
    }

    /// Counts objects of a resource in a namespace (used to decide namespace deletion).
    public func count(_ resource: ResourceKey, namespace: String) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return buckets[resource]?.values.filter { $0.namespace == namespace }.count ?? 0
    }

    /// Resources that have at least one object.
    public func populatedResources() -> [ResourceKey] {
        lock.lock()
        defer { lock.unlock() }
        return buckets.filter { !$0.value.isEmpty }.map(\.key)
    }

    /// Atomically reads, transforms and writes one object. The closure sees the current
    /// object (or nil) and its resourceVersion, and returns what to do; a `put` whose bytes
    /// equal the stored ones is a no-op (no new resourceVersion, no event). The stored
    /// object gets `metadata.resourceVersion` set to the new revision.
    @discardableResult
    public func mutate(_ resource: ResourceKey, namespace: String, name: String,
                       _ body: (StoredObject?) throws -> StoreMutation) throws -> (object: StoredObject?, event: StoreEvent?) {
        lock.lock()
        defer { lock.unlock() }
        let key = Self.key(namespace, name)
        let current = buckets[resource]?[key]
        switch try body(current) {
        case .unchanged:
            return (current, nil)
        case .delete:
            guard let current else { return (nil, nil) }
            revision += 1
            var value = current.value()
            value.set(.string(String(revision)), at: ["metadata", "resourceVersion"])
            let tombstone = Self.stored(value, namespace: namespace, name: name, rv: revision)
            buckets[resource]?[key] = nil
            let event = StoreEvent(kind: .deleted, resource: resource, object: tombstone, previous: current)
            record(event)
            return (tombstone, event)
        case .put(var value):
            if let current {
                // A write that changes nothing keeps the resourceVersion and sends no event.
                var probe = value
                probe.set(.string(String(current.resourceVersion)), at: ["metadata", "resourceVersion"])
                if probe.serialized() == current.bytes { return (current, nil) }
            }
            revision += 1
            value.set(.string(String(revision)), at: ["metadata", "resourceVersion"])
            let stored = Self.stored(value, namespace: namespace, name: name, rv: revision)
            buckets[resource, default: [:]][key] = stored
            let event = StoreEvent(kind: current == nil ? .added : .modified, resource: resource,
                                   object: stored, previous: current)
            record(event)
            return (stored, event)
        }
    }

    /// Loads an object as is (snapshot restore): keeps its resourceVersion, sends no event.
    public func restore(_ resource: ResourceKey, value: JSONValue) {
        let namespace = value[path: ["metadata", "namespace"]]?.stringValue ?? ""
        let name = value[path: ["metadata", "name"]]?.stringValue ?? ""
        let rv = Int64(value[path: ["metadata", "resourceVersion"]]?.stringValue ?? "") ?? 0
        lock.lock()
        defer { lock.unlock() }
        revision = max(revision, rv)
        buckets[resource, default: [:]][Self.key(namespace, name)] = Self.stored(value, namespace: namespace, name: name, rv: rv)
    }

    /// Moves the revision forward (snapshot restore), so resourceVersions are never reused.
    public func advanceRevision(to value: Int64) {
        lock.lock()
        defer { lock.unlock() }
        revision = max(revision, value)
    }

    /// Every object of every resource (snapshots).
    public func dump() -> [(ResourceKey, [StoredObject])] {
        lock.lock()
        defer { lock.unlock() }
        return buckets.map { ($0.key, Array($0.value.values)) }
    }

    /// Starts a watch on one resource. Events after `resourceVersion` that are still in history
    /// are replayed first; `nil` starts at the current revision. The stream ends when the
    /// consumer stops iterating (the registration is then removed).
    public func watch(_ resource: ResourceKey, after resourceVersion: Int64?) throws -> StoreWatch {
        let (stream, continuation) = AsyncStream<StoreWatchItem>.makeStream(bufferingPolicy: .unbounded)
        lock.lock()
        defer { lock.unlock() }
        let start = resourceVersion ?? revision
        if start < revision {
            let oldestKept = history.isEmpty ? revision : history[historyStart].resourceVersion
            // Events with rv > start must all be in history: the oldest kept must be <= start + 1.
            if oldestKept > start + 1 {
                throw WatchStartError.expired(requested: start, oldest: oldestKept)
            }
            for event in orderedHistory() where event.resourceVersion > start && event.resource == resource {
                continuation.yield(.event(event))
            }
        }
        let id = nextWatcherID
        nextWatcherID += 1
        watchers[id] = Watcher(resource: resource, continuation: continuation)
        continuation.onTermination = { [weak self] _ in
            self?.removeWatcher(id)
        }
        return StoreWatch(items: stream, startRevision: revision, id: id)
    }

    /// Queues a progress notification (the current revision) behind every event already
    /// queued for this watch, so a bookmark built from it never runs ahead of an event.
    public func requestProgress(_ watch: StoreWatch) {
        lock.lock()
        defer { lock.unlock() }
        watchers[watch.id]?.continuation.yield(.progress(revision))
    }

    public var watcherCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return watchers.count
    }

    /// Ends every watch (server shutdown).
    public func closeAllWatches() {
        lock.lock()
        let all = watchers.values
        watchers.removeAll()
        lock.unlock()
        for watcher in all { watcher.continuation.finish() }
    }

    private func removeWatcher(_ id: Int) {
        lock.lock()
        defer { lock.unlock() }
        watchers[id] = nil
    }

    private func orderedHistory() -> [StoreEvent] {
        Array(history[historyStart...] + history[..<historyStart])
    }

    private func record(_ event: StoreEvent) {
        if history.count < historyLimit {
            history.append(event)
        } else {
            history[historyStart] = event
            historyStart = (historyStart + 1) % historyLimit
        }
        for watcher in watchers.values where watcher.resource == event.resource {
            watcher.continuation.yield(.event(event))
        }
    }

    private static func key(_ namespace: String, _ name: String) -> String { namespace + "/" + name }

    private static func stored(_ value: JSONValue, namespace: String, name: String, rv: Int64) -> StoredObject {
        var labels: [String: String] = [:]
        for (k, v) in value[path: ["metadata", "labels"]]?.objectValue ?? [:] {
            if let s = v.stringValue { labels[k] = s }
        }
        return StoredObject(bytes: value.serialized(), namespace: namespace, name: name, labels: labels, resourceVersion: rv)
    }
}
