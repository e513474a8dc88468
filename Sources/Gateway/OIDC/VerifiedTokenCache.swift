import AgentGateAPI
import Crypto
import Foundation

/// Tokens that already verified, so an agent's requests pay for the signature check once
/// instead of on every request (an RS256 verification and two JSON parses).
///
/// Contract:
/// - Keyed by the SHA-256 of the token and of the bytes of the identity fields the check
///   reads (issuer, audiences, claim names): a token verified for one identity proves nothing
///   for another, including one whose issuer or audience only looks the same (`é` and
///   `e` + U+0301 are equal to Swift's `==` and to `AgentIdentity`'s `Hashable`, not to the
///   check). The token itself is not kept.
/// - An entry is only written after a full verification succeeded, and is served until the
///   token's `exp` plus ``OIDCVerifier/leeway`` or the end of the verifying key's cache time,
///   whichever is first — no longer than the full check would accept it — and at most
///   ``maxAge``, so expired tokens are still refused.
/// - Authorization (allowed subjects and groups) is not cached: it is re-checked on every
///   request against the connection's current configuration.
/// - At most ``capacity`` entries (cleared when full), so a flood of distinct tokens cannot
///   grow it without bound; forged tokens never enter it.
final class VerifiedTokenCache: Sendable {
    struct Key: Hashable {
        var digest: SHA256.Digest
    }

    let maxAge: TimeInterval
    private let entries: ExpiringCache<Key, VerifiedAgent>

    init(capacity: Int = 10_000, maxAge: TimeInterval = 600) {
        self.maxAge = maxAge
        entries = ExpiringCache(capacity: capacity)
    }

    static func key(token: String, identity: AgentIdentity) -> Key {
        var hash = SHA256()
        // Each field length-prefixed, so no two different field lists hash the same bytes.
        func add(_ text: String) {
            let bytes = Array(text.utf8)
            withUnsafeBytes(of: UInt64(bytes.count).bigEndian) { hash.update(bufferPointer: $0) }
            hash.update(data: bytes)
        }
        add(token)
        add(identity.issuer)
        add(String(identity.audiences.count))
        identity.audiences.forEach(add)
        for claim in [identity.subjectClaim, identity.groupsClaim, identity.modelClaim] { add(claim.map { "=" + $0 } ?? "") }
        return Key(digest: hash.finalize())
    }

    func agent(for key: Key, at now: Date) -> VerifiedAgent? {
        entries.value(for: key, at: now)
    }

    /// `validUntil`: the last instant the full check would accept the token.
    func remember(_ agent: VerifiedAgent, for key: Key, validUntil: Date, at now: Date) {
        let until = min(validUntil, now.addingTimeInterval(maxAge))
        guard until > now else { return }
        entries.insert(agent, for: key, expires: until)
    }
}
