import Foundation
import KubeClient
import KubeCore
import Logging

/// Keeps an ``ObjectCache`` of one kind in step with the API server and tells handlers what
/// changed (client-go's shared informer, kube-rs's reflector).
///
/// Contract:
/// - Built on ``Watcher``: streaming list (or list+watch), resume from the last
///   resourceVersion, relist on 410 with a diff, backoff. So a dropped watch resumes without
///   a missed change and a change is never delivered twice as new.
/// - The cache is updated *before* handlers run, so a reconciler started by a handler reads
///   at least that state.
/// - ``hasSynced`` turns true after the first complete list has been applied (and stays true);
///   ``waitForSync()`` waits for it. Controllers should not start before their informers sync.
/// - Handlers run in the informer's task, in event order; they should only enqueue keys.
/// - Several namespaces (controller-runtime's `DefaultNamespaces`): one watch per namespace
///   into the one cache, synced once every namespace has listed; events of one namespace keep
///   their order, events of different namespaces may reach handlers concurrently.
/// - An update whose resourceVersion did not change (a relist that found the same object) is
///   not delivered to handlers.
public final class Informer<Object: KubernetesResource>: @unchecked Sendable {
    public let cache = ObjectCache<Object>()
    /// The namespaces watched; empty: all namespaces.
    public let namespaces: [String]
    /// The one namespace watched, or nil when the informer watches all namespaces or several.
    public var namespace: String? { namespaces.count == 1 ? namespaces[0] : nil }
    public let labelSelector: String?
    private let client: KubernetesClient
    private let lock = NSLock()
    private var handlers: [@Sendable (InformerEvent<Object>) -> Void] = []
    private var synced = false
    /// Namespaces whose first list has been applied (while several are watched).
    private var syncedNamespaces: Set<String> = []
    private var syncWaiters: [CheckedContinuation<Void, Never>] = []
    private let logger: Logger
    private var resourceVersionSeen: String?
    /// The resourceVersion of the last list, event or bookmark applied.
    public var lastResourceVersion: String? { lock.withLock { resourceVersionSeen } }

    public convenience init(client: KubernetesClient, namespace: String? = nil, labelSelector: String? = nil,
                            logger: Logger = Logger(label: "agentgate.informer")) {
        self.init(client: client, namespaces: namespace.map { [$0] } ?? [], labelSelector: labelSelector, logger: logger)
    }

    /// An informer over `namespaces` (empty: all namespaces).
    public init(client: KubernetesClient, namespaces: [String], labelSelector: String? = nil,
                logger: Logger = Logger(label: "agentgate.informer")) {
        self.client = client
        // A cluster-scoped kind has no namespaces to choose from.
        self.namespaces = Object.resourceType.namespaced ? Array(Set(namespaces)).sorted() : []
        self.labelSelector = labelSelector
        var logger = logger
        logger[metadataKey: "resource"] = "\(Object.resourceType)"
        self.logger = logger
    }

    /// The kind's resource name (`agentconnections.agentgate.io`), for logs and probes.
    public var resourceName: String { Object.resourceType.description }

    /// Registers a handler for every later event. Register before ``run()`` to see the initial list.
    public func addHandler(_ handler: @escaping @Sendable (InformerEvent<Object>) -> Void) {
        lock.withLock { handlers.append(handler) }
    }

    public var hasSynced: Bool { lock.withLock { synced } }

    /// Returns once the first list has been applied, or when the calling task is cancelled.
    public func waitForSync() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready: Bool = lock.withLock {
                    if synced || Task.isCancelled { return true }
                    syncWaiters.append(continuation)
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            let waiters: [CheckedContinuation<Void, Never>] = lock.withLock {
                defer { syncWaiters.removeAll() }
                return syncWaiters
            }
            for waiter in waiters { waiter.resume() }
        }
    }

    /// Watches until the calling task is cancelled.
    public func run() async {
        var options = WatchOptions(labelSelector: labelSelector)
        let logger = self.logger
        options.onError = { error in logger.warning("watch interrupted; resuming", metadata: ["error": "\(error)"]) }
        guard namespaces.count > 1 else {
            for await event in client.watch(Object.self, namespace: namespaces.first, options: options) {
                apply(event, namespace: namespaces.first)
            }
            return
        }
        await withTaskGroup(of: Void.self) { group in
            for namespace in namespaces {
                group.addTask { [client] in
                    for await event in client.watch(Object.self, namespace: namespace, options: options) {
                        self.apply(event, namespace: namespace)
                    }
                }
            }
        }
    }

    private func apply(_ event: WatchEvent<Object>, namespace: String?) {
        switch event {
        case .added(let object), .modified(let object):
            record(object.metadata.resourceVersion)
            let old = cache.put(object)
            if let old {
                if old.metadata.resourceVersion == object.metadata.resourceVersion { return }
                notify(.updated(old: old, new: object))
            } else {
                notify(.added(object))
            }
        case .deleted(let object):
            record(object.metadata.resourceVersion)
            let old = cache.remove(object)
            notify(.deleted(old ?? object))
        case .bookmark(let resourceVersion):
            record(resourceVersion)
        case .synced(let resourceVersion):
            record(resourceVersion)
            let waiters: [CheckedContinuation<Void, Never>] = lock.withLock {
                if let namespace, namespaces.count > 1 {
                    syncedNamespaces.insert(namespace)
                    guard syncedNamespaces.count == namespaces.count else { return [] }
                }
                if !synced { logger.info("cache synced", metadata: ["objects": "\(cache.count)"]) }
                synced = true
                defer { syncWaiters.removeAll() }
                return syncWaiters
            }
            for waiter in waiters { waiter.resume() }
        }
    }

    private func record(_ resourceVersion: String?) {
        lock.withLock { resourceVersionSeen = resourceVersion }
    }

    private func notify(_ event: InformerEvent<Object>) {
        let current = lock.withLock { handlers }
        for handler in current { handler(event) }
    }
}

/// A change applied to an informer's cache.
public enum InformerEvent<Object: Sendable>: Sendable {
    case added(Object)
    case updated(old: Object, new: Object)
    case deleted(Object)

    /// The object as it is now (the last known state for a deletion).
    public var object: Object {
        switch self {
        case .added(let object), .deleted(let object): return object
        case .updated(_, let new): return new
        }
    }
}

/// Ready-made handlers that turn informer events into reconcile requests (controller-runtime's
/// `handler.EnqueueRequestForObject` and `handler.EnqueueRequestsFromMapFunc`).
public enum EventHandler {
    /// Enqueues the changed object itself.
    public static func enqueueObject<Object: KubernetesResource>(_ controller: Controller) -> @Sendable (InformerEvent<Object>) -> Void {
        { event in
            let meta = event.object.metadata
            controller.enqueue(ReconcileRequest(namespace: meta.namespace ?? "", name: meta.name ?? ""))
        }
    }

    /// Enqueues what `map` returns for the changed object; on an update, for both the old and
    /// the new state (a rule whose labels no longer match must requeue the connections it left).
    public static func enqueueMapped<Object: KubernetesResource>(
        _ controller: Controller, _ map: @escaping @Sendable (Object) -> [ReconcileRequest]
    ) -> @Sendable (InformerEvent<Object>) -> Void {
        { event in
            var requests = Set(map(event.object))
            if case .updated(let old, _) = event { requests.formUnion(map(old)) }
            for request in requests.sorted() { controller.enqueue(request) }
        }
    }
}
