import AgentGateAPI
import Crypto
import Foundation

/// Tokens that already verified, so an agent's requests pay for the signature check once
/// instead of on every request (an RS256 verification and two JSON parses).
///
/// Contract:
/// - Keyed by the SHA-256 of the token and the connection's identity block (issuer,
///   audiences, claim names): a token verified for one identity proves nothing for another.
///   The token itself is not kept.
/// - An entry is only written after a full verification succeeded, and is served until the
///   token's `exp` plus ``OIDCVerifier/leeway`` — exactly as long as the full check would
///   accept it — and at most ``maxAge``, so expired tokens are still refused.
/// - Authorization (allowed subjects and groups) is not cached: it is re-checked on every
///   request against the connection's current configuration.
/// - At most ``capacity`` entries (cleared when full), so a flood of distinct tokens cannot
///   grow it without bound; forged tokens never enter it.
final class VerifiedTokenCache: Sendable {
    struct Key: Hashable {
        var digest: SHA256.Digest
        var identity: AgentIdentity
    }

    let maxAge: TimeInterval
    private let entries: ExpiringCache<Key, VerifiedAgent>

    init(capacity: Int = 10_000, maxAge: TimeInterval = 600) {
        self.maxAge = maxAge
        entries = ExpiringCache(capacity: capacity)
    }

    static func key(token: String, identity: AgentIdentity) -> Key {
        Key(digest: SHA256.hash(data: Array(token.utf8)), identity: identity)
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
