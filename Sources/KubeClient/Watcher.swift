import AsyncHTTPClient
import Foundation
import KubeCore
import NIOCore

/// A watch that survives failure, as an `AsyncSequence` of ``WatchEvent``s.
///
/// Contract:
/// - **Start**: with no `resourceVersion`, a streaming list (`sendInitialEvents=true`,
///   `resourceVersionMatch=NotOlderThan`, `allowWatchBookmarks=true`); if the server refuses
///   it (a 4xx answer or an ERROR event before the initial-events-end bookmark), a paginated
///   list then a watch from the list's resourceVersion, and streaming is not tried again.
/// - **Resume**: the last resourceVersion seen (events and bookmarks) is remembered; when a
///   stream ends or breaks, the watch resumes from it, so nothing is missed and nothing is
///   replayed. The watcher also tracks the objects it delivered (key → resourceVersion), so a
///   replayed event the consumer already has is dropped, never delivered twice as new.
/// - **410 Gone** (the resume point fell out of history): relist at once and deliver the
///   difference against what was delivered before (see ``WatchEvent``), then `synced`.
/// - **Backoff**: failures (connection refused, 5xx, broken streams) wait per ``WatchBackoff``
///   (0.8 s doubling to 30 s, jitter, reset after 2 min healthy) on the injectable
///   ``WatchClock``; a stream that ends cleanly after delivering something reconnects at once.
/// - **Backpressure**: pull-based. The HTTP body is read only when the consumer asks for the
///   next event, so a slow consumer slows the TCP stream; the only queue is the events of one
///   relist diff.
/// - **Cancellation**: cancelling the consuming task (or dropping the iterator) ends the
///   request; `next()` then returns nil. Failures never end the sequence.
public struct Watcher<Object: Decodable & Sendable>: AsyncSequence, Sendable {
    public typealias Element = WatchEvent<Object>
    let client: KubernetesClient
    let type: ResourceType
    let namespace: String?
    let options: WatchOptions

    public func makeAsyncIterator() -> Iterator {
        Iterator(client: client, type: type, namespace: namespace, options: options)
    }

    public final class Iterator: AsyncIteratorProtocol {
        struct Tracked {
            var resourceVersion: String
            var uid: String?
            var object: Object
        }

        let client: KubernetesClient
        let type: ResourceType
        let namespace: String?
        let options: WatchOptions
        public private(set) var statistics = WatchStatistics()
        /// The resume point: the last resourceVersion seen. nil means a list is needed.
        public private(set) var resourceVersion: String?
        private var tracked: [String: Tracked] = [:]
        private var pending: [WatchEvent<Object>] = []
        private var pendingIndex = 0
        private var backoff: WatchBackoff
        private var streamingSupported = true
        private var reader: WatchLineReader?
        private var collecting: [JSONValue]?
        private var linesOnThisStream = 0

        init(client: KubernetesClient, type: ResourceType, namespace: String?, options: WatchOptions) {
            self.client = client
            self.type = type
            self.namespace = type.namespaced ? namespace : nil
            self.options = options
            self.backoff = options.backoff
            self.resourceVersion = options.resourceVersion.flatMap { $0.isEmpty || $0 == "0" ? nil : $0 }
            if options.initialList == .listThenWatch { streamingSupported = false }
        }

        /// The next event; nil only when the consuming task is cancelled.
        public func next() async -> WatchEvent<Object>? {
            while true {
                if Task.isCancelled {
                    reader = nil
                    return nil
                }
                if pendingIndex < pending.count {
                    let event = pending[pendingIndex]
                    pendingIndex += 1
                    if pendingIndex == pending.count {
                        pending.removeAll(keepingCapacity: true)
                        pendingIndex = 0
                    }
                    return event
                }
                do {
                    if reader == nil {
                        try await connect()
                        continue
                    }
                    guard let line = try await reader?.nextLine() else {
                        // A clean end (server timeout or shutdown): resume at once if it was useful.
                        reader = nil
                        collecting = nil
                        if linesOnThisStream == 0 { try await sleepAfterFailure(nil) }
                        continue
                    }
                    linesOnThisStream += 1
                    try handle(line)
                } catch is CancellationError {
                    reader = nil
                    return nil
                } catch {
                    if Task.isCancelled { return nil }
                    reader = nil
                    collecting = nil
                    do { try await sleepAfterFailure(error) } catch { return nil }
                }
            }
        }

        private func sleepAfterFailure(_ error: Error?) async throws {
            if let error { options.onError?(error) }
            let delay = backoff.nextDelay(now: options.clock.now(), random: options.random())
            statistics.backoffDelays.append(delay)
            if statistics.backoffDelays.count > 64 { statistics.backoffDelays.removeFirst() }
            try await options.clock.sleep(for: delay)
        }

        // MARK: Connecting

        private func watchQuery() -> [(String, String)] {
            var query: [(String, String)] = [("watch", "true"), ("allowWatchBookmarks", "true")]
            if let selector = options.labelSelector, !selector.isEmpty { query.append(("labelSelector", selector)) }
            if let selector = options.fieldSelector, !selector.isEmpty { query.append(("fieldSelector", selector)) }
            let timeout = options.timeoutSeconds ?? Int.random(in: 300..<600)
            query.append(("timeoutSeconds", String(timeout)))
            return query
        }

        private func connect() async throws {
            let path = type.collectionPath(namespace: namespace)
            linesOnThisStream = 0
            if resourceVersion == nil, streamingSupported {
                var query = watchQuery()
                query.append(("sendInitialEvents", "true"))
                if !options.omitResourceVersionMatchForTesting { query.append(("resourceVersionMatch", "NotOlderThan")) }
                do {
                    let response = try await client.openStream(path, query: query)
                    reader = WatchLineReader(response.body)
                    collecting = []
                    statistics.connections += 1
                    return
                } catch let error as KubeError {
                    guard Self.refusesStreaming(error) else { throw error }
                    options.onError?(error)
                    streamingSupported = false
                }
            }
            if resourceVersion == nil {
                var listOptions = ListOptions(labelSelector: options.labelSelector, fieldSelector: options.fieldSelector)
                listOptions.limit = options.listPageSize
                let list = try await client.list(type, namespace: namespace, options: listOptions)
                finishList(list.items, resourceVersion: list.resourceVersion)
                statistics.usedStreamingList = false
            }
            var query = watchQuery()
            query.append(("resourceVersion", resourceVersion ?? ""))
            let response = try await client.openStream(path, query: query)
            reader = WatchLineReader(response.body)
            statistics.connections += 1
        }

        /// A server without streaming lists answers 400/422 (or 403/404/405 from a proxy in front).
        private static func refusesStreaming(_ error: KubeError) -> Bool {
            switch error {
            case .badRequest, .invalid, .unexpected: return true
            default: return false
            }
        }

        // MARK: Events

        private func handle(_ line: [UInt8]) throws {
            let event: JSONValue
            do {
                event = try JSONValue(parsing: line)
            } catch {
                throw KubeError.decoding("watch \(type): an event is not JSON: \(error)")
            }
            let object = event["object"] ?? .null
            let rv = object[path: ["metadata", "resourceVersion"]]?.stringValue
            switch event["type"]?.stringValue ?? "" {
            case "ERROR":
                let status = (try? object.decode(Status.self)) ?? Status(message: "watch error event", code: 500)
                reader = nil
                if collecting != nil, status.code != 410 {
                    // The server accepted the request but cannot stream the list: list+watch instead.
                    collecting = nil
                    streamingSupported = false
                    options.onError?(KubeError.fromStatus(status))
                    return
                }
                collecting = nil
                if status.code == 410 {
                    // Too old: relist now (no backoff), keeping what was delivered to diff against.
                    statistics.relistsAfterGone += 1
                    options.onError?(KubeError.fromStatus(status))
                    resourceVersion = nil
                    return
                }
                throw KubeError.fromStatus(status)
            case "BOOKMARK":
                guard let rv, !rv.isEmpty else { return }
                if collecting != nil {
                    if object[path: ["metadata", "annotations", "k8s.io/initial-events-end"]]?.stringValue == "true" {
                        finishList(collecting ?? [], resourceVersion: rv)
                        collecting = nil
                        statistics.usedStreamingList = true
                    }
                    return
                }
                resourceVersion = rv
                pending.append(.bookmark(resourceVersion: rv))
            case "ADDED", "MODIFIED":
                if collecting != nil {
                    collecting?.append(object)
                    return
                }
                if let rv { resourceVersion = rv }
                let key = Self.key(object)
                if let known = tracked[key], known.resourceVersion == rv { return }  // replayed: already delivered
                guard let decoded = decode(object) else { return }
                // With a complete view (after a list) the tracked set decides; when resuming from a
                // caller's resourceVersion without a list, the server's word is all we have.
                let isNew = tracked[key] == nil && (completeView || event["type"]?.stringValue == "ADDED")
                tracked[key] = Tracked(resourceVersion: rv ?? "", uid: Self.uid(object), object: decoded)
                pending.append(isNew ? .added(decoded) : .modified(decoded))
            case "DELETED":
                if collecting != nil { return }
                if let rv { resourceVersion = rv }
                let key = Self.key(object)
                guard tracked.removeValue(forKey: key) != nil || !completeView, let decoded = decode(object) else { return }
                pending.append(.deleted(decoded))
            default:
                throw KubeError.decoding("watch \(type): unknown event type \(event["type"]?.serializedString() ?? "(none)")")
            }
        }

        /// Delivers the difference between the tracked objects and a fresh list, then `synced`.
        private func finishList(_ items: [JSONValue], resourceVersion listRV: String) {
            var seen = Set<String>()
            var added: [(String, JSONValue)] = []
            for item in items {
                let key = Self.key(item)
                seen.insert(key)
                added.append((key, item))
            }
            for key in tracked.keys.sorted() where !seen.contains(key) {
                if let gone = tracked.removeValue(forKey: key) { pending.append(.deleted(gone.object)) }
            }
            for (key, item) in added.sorted(by: { $0.0 < $1.0 }) {
                let rv = item[path: ["metadata", "resourceVersion"]]?.stringValue ?? ""
                let uid = Self.uid(item)
                if let known = tracked[key] {
                    if known.uid != nil, uid != nil, known.uid != uid {
                        // Deleted and re-created while we were away: the consumer must see both.
                        guard let decoded = decode(item) else { continue }
                        pending.append(.deleted(known.object))
                        pending.append(.added(decoded))
                        tracked[key] = Tracked(resourceVersion: rv, uid: uid, object: decoded)
                    } else if known.resourceVersion != rv {
                        guard let decoded = decode(item) else { continue }
                        pending.append(.modified(decoded))
                        tracked[key] = Tracked(resourceVersion: rv, uid: uid, object: decoded)
                    }
                } else {
                    guard let decoded = decode(item) else { continue }
                    pending.append(.added(decoded))
                    tracked[key] = Tracked(resourceVersion: rv, uid: uid, object: decoded)
                }
            }
            resourceVersion = listRV
            statistics.lists += 1
            pending.append(.synced(resourceVersion: listRV))
        }

        private var completeView: Bool { statistics.lists > 0 }

        private func decode(_ object: JSONValue) -> Object? {
            if let same = object as? Object { return same }
            do {
                return try object.decode(Object.self)
            } catch {
                options.onError?(KubeError.decoding("watch \(type): cannot decode \(Self.key(object)) as \(Object.self): \(error)"))
                return nil
            }
        }

        private static func key(_ object: JSONValue) -> String {
            let ns = object[path: ["metadata", "namespace"]]?.stringValue ?? ""
            let name = object[path: ["metadata", "name"]]?.stringValue ?? ""
            return ns.isEmpty ? name : "\(ns)/\(name)"
        }

        private static func uid(_ object: JSONValue) -> String? {
            object[path: ["metadata", "uid"]]?.stringValue
        }
    }
}

extension KubernetesClient {
    /// Watches objects of `type` (in `namespace`, or all namespaces when nil), untyped.
    public func watch(_ type: ResourceType, namespace: String? = nil, options: WatchOptions = WatchOptions()) -> Watcher<JSONValue> {
        Watcher(client: self, type: type, namespace: namespace, options: options)
    }

    /// Watches typed objects (in `namespace`, or all namespaces when nil).
    public func watch<T: KubernetesResource>(_ type: T.Type, namespace: String? = nil,
                                             options: WatchOptions = WatchOptions()) -> Watcher<T> {
        Watcher(client: self, type: T.resourceType, namespace: namespace, options: options)
    }
}
