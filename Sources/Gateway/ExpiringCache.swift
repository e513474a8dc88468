import Foundation

/// A thread-safe dictionary whose entries expire, bounded by clearing it when full (so churned
/// keys cannot grow it without bound). The gateway's caches — resolved sessions, verified
/// tokens — are this plus their own key and lifetime rules.
///
/// Contract: an entry is served while `now <= expires`; an expired entry is dropped when it is
/// looked up.
final class ExpiringCache<Key: Hashable, Value>: @unchecked Sendable {   // state behind `lock`
    let capacity: Int
    private let lock = NSLock()
    private var entries: [Key: (value: Value, expires: Date)] = [:]

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// The live value for `key`.
    func value(for key: Key, at now: Date) -> Value? {
        lock.withLock {
            guard let entry = entries[key] else { return nil }
            guard now <= entry.expires else {
                entries[key] = nil
                return nil
            }
            return entry.value
        }
    }

    func insert(_ value: Value, for key: Key, expires: Date) {
        lock.withLock {
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = (value, expires)
        }
    }

    func remove(_ key: Key) {
        lock.withLock { entries[key] = nil }
    }
}
