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
final class VerifiedTokenCache: @unchecked Sendable {   // state behind `lock`
    struct Key: Hashable {
        var digest: SHA256.Digest
        var identity: AgentIdentity
    }

    let capacity: Int
    let maxAge: TimeInterval
    private let lock = NSLock()
    private var entries: [Key: (agent: VerifiedAgent, validUntil: Date)] = [:]

    init(capacity: Int = 10_000, maxAge: TimeInterval = 600) {
        self.capacity = capacity
        self.maxAge = maxAge
    }

    static func key(token: String, identity: AgentIdentity) -> Key {
        Key(digest: SHA256.hash(data: Array(token.utf8)), identity: identity)
    }

    func agent(for key: Key, at now: Date) -> VerifiedAgent? {
        lock.withLock {
            guard let entry = entries[key] else { return nil }
            guard now <= entry.validUntil else {
                entries[key] = nil
                return nil
            }
            return entry.agent
        }
    }

    /// `validUntil`: the last instant the full check would accept the token.
    func remember(_ agent: VerifiedAgent, for key: Key, validUntil: Date, at now: Date) {
        let until = min(validUntil, now.addingTimeInterval(maxAge))
        guard until > now else { return }
        lock.withLock {
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = (agent, until)
        }
    }
}
