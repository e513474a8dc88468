/// Remembers ServiceAccount tokens whose signature, issuer and audience verified, so a
/// client that sends the same token on every request (the gateway, controllers) pays for
/// the ECDSA verification once per 10 s instead of once per request.
///
/// Contract (as kube-apiserver's cached token authenticator, `--token-success-cache-ttl`
/// 10 s, failures not cached):
/// - Only successful verifications are kept, for at most ``ttl`` and never past the token's
///   own expiry (plus the verifier's leeway): an expired token is refused on time.
/// - Entries are keyed by the SHA-256 of the token, so the cache holds no bearer token.
/// - What can change while a token is valid is not cached: the caller still checks that the
///   ServiceAccount (and any bound Pod or Secret) exists with the token's uid on every
///   request, so a revoked token is refused at once, well within the cache time.
/// - Bounded: past ``capacity`` entries, expired ones are dropped, then all.
import Crypto
import Foundation

final class TokenVerificationCache: @unchecked Sendable {
    /// How long a successful verification is trusted (kube-apiserver: 10 s).
    let ttl: TimeInterval
    let capacity: Int
    private let lock = NSLock()
    private var entries: [SHA256Digest: Entry] = [:]

    private struct Entry {
        var claims: ServiceAccountTokenClaims
        var validUntil: Date
    }

    init(ttl: TimeInterval = 10, capacity: Int = 4096) {
        self.ttl = ttl
        self.capacity = capacity
    }

    /// The claims of `token`: remembered if verified less than ``ttl`` ago and not expired,
    /// else from `verify` (remembered when it succeeds).
    func claims(for token: String, now: Date, leeway: TimeInterval,
                verify: () throws -> ServiceAccountTokenClaims) rethrows -> ServiceAccountTokenClaims {
        let key = SHA256.hash(data: Data(token.utf8))
        lock.lock()
        if let entry = entries[key], now < entry.validUntil {
            lock.unlock()
            return entry.claims
        }
        lock.unlock()
        let claims = try verify()
        let expiry = Date(timeIntervalSince1970: TimeInterval(claims.exp) + leeway)
        let entry = Entry(claims: claims, validUntil: min(now.addingTimeInterval(ttl), expiry))
        lock.lock()
        defer { lock.unlock() }
        if entries.count >= capacity {
            entries = entries.filter { now < $0.value.validUntil }
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        }
        entries[key] = entry
        return claims
    }
}
