import Foundation
import KubeClient
import KubeCore

/// The informer's view of one kind: one writer (the ``Informer``), many readers (reconcilers).
///
/// Objects are indexed by key (`namespace/name`), by namespace and by label key/value, so a
/// reconciler's "the MaskingRules in this namespace matching this selector" does not scan the
/// whole cache. Reads return values (Swift copies), so a reader never sees a half-applied
/// event and never mutates the cache.
public final class ObjectCache<Object: KubernetesResource>: @unchecked Sendable {
    private let lock = NSLock()
    private var objects: [ReconcileRequest: Object] = [:]
    private var byNamespace: [String: Set<ReconcileRequest>] = [:]
    /// label key → value → keys.
    private var byLabel: [String: [String: Set<ReconcileRequest>]] = [:]

    public init() {}

    public var count: Int { lock.withLock { objects.count } }

    public func get(namespace: String?, name: String) -> Object? {
        lock.withLock { objects[ReconcileRequest(namespace: namespace ?? "", name: name)] }
    }

    public func get(_ request: ReconcileRequest) -> Object? {
        lock.withLock { objects[request] }
    }

    /// Objects in `namespace` (nil: all) matching `selector`, sorted by key.
    public func list(namespace: String? = nil, selector: Labels.Selector = .everything) -> [Object] {
        lock.withLock {
            if selector.isNothing { return [] }
            var candidates: Set<ReconcileRequest>?
            if let namespace { candidates = byNamespace[namespace] ?? [] }
            // Narrow by the first exact-match requirement through the label index.
            for requirement in selector.requirements {
                guard let value = selector.requiresExactMatch(requirement.key) else { continue }
                let matching = byLabel[requirement.key]?[value] ?? []
                candidates = candidates.map { $0.intersection(matching) } ?? matching
                break
            }
            let keys = candidates.map { Array($0) } ?? Array(objects.keys)
            return keys.sorted().compactMap { key in
                guard let object = objects[key] else { return nil }
                return selector.matches(object.metadata.labels ?? [:]) ? object : nil
            }
        }
    }

    /// Every key in the cache, sorted.
    public func keys() -> [ReconcileRequest] {
        lock.withLock { objects.keys.sorted() }
    }

    // MARK: Writes (the informer only)

    /// Stores `object`; returns the previous version.
    @discardableResult
    func put(_ object: Object) -> Object? {
        let key = Self.key(object)
        return lock.withLock {
            let old = objects.updateValue(object, forKey: key)
            if let old { unindexLocked(old, key: key) }
            indexLocked(object, key: key)
            return old
        }
    }

    /// Removes the object with `object`'s key; returns what was stored.
    @discardableResult
    func remove(_ object: Object) -> Object? {
        let key = Self.key(object)
        return lock.withLock {
            guard let old = objects.removeValue(forKey: key) else { return nil }
            unindexLocked(old, key: key)
            return old
        }
    }

    static func key(_ object: Object) -> ReconcileRequest {
        ReconcileRequest(namespace: object.metadata.namespace ?? "", name: object.metadata.name ?? "")
    }

    private func indexLocked(_ object: Object, key: ReconcileRequest) {
        byNamespace[key.namespace, default: []].insert(key)
        for (label, value) in object.metadata.labels ?? [:] {
            byLabel[label, default: [:]][value, default: []].insert(key)
        }
    }

    private func unindexLocked(_ object: Object, key: ReconcileRequest) {
        byNamespace[key.namespace]?.remove(key)
        if byNamespace[key.namespace]?.isEmpty == true { byNamespace.removeValue(forKey: key.namespace) }
        for (label, value) in object.metadata.labels ?? [:] {
            byLabel[label]?[value]?.remove(key)
            if byLabel[label]?[value]?.isEmpty == true { byLabel[label]?.removeValue(forKey: value) }
            if byLabel[label]?.isEmpty == true { byLabel.removeValue(forKey: label) }
        }
    }
}
