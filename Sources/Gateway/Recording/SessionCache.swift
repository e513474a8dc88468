import Foundation
import SessionStore

/// Session ids the gateway already resolved, so the requests of one agent token cost two
/// store transactions (begin, complete) instead of three.
///
/// Contract:
/// - Only keys with a token key (`sid`/`jti`) are cached: for those the store maps a key to
///   one session forever, so the cached id is exactly what ``SessionStore/resolveSession``
///   would return. Keys without one split on idle gaps and always go to the store.
/// - `beginExchange` extends the session's `lastActivity`, so skipping `resolveSession`
///   loses nothing. When the session is gone (pruned by retention, here or on another
///   replica), `beginExchange` fails with `sessionNotFound`; the caller forgets the entry
///   and resolves again.
/// - Entries live at most ``ttl`` and the cache holds at most ``capacity`` of them (cleared
///   when full), so churned tokens cannot grow it without bound.
final class SessionCache: Sendable {
    let ttl: TimeInterval
    private let entries: ExpiringCache<SessionKey, SessionID>

    init(ttl: TimeInterval = 300, capacity: Int = 10_000) {
        self.ttl = ttl
        entries = ExpiringCache(capacity: capacity)
    }

    func sessionID(for key: SessionKey, at now: Date = Date()) -> SessionID? {
        guard key.tokenKey != nil else { return nil }
        return entries.value(for: key, at: now)
    }

    func remember(_ id: SessionID, for key: SessionKey, at now: Date = Date()) {
        guard key.tokenKey != nil else { return }
        entries.insert(id, for: key, expires: now.addingTimeInterval(ttl))
    }

    func forget(_ key: SessionKey) {
        entries.remove(key)
    }
}
