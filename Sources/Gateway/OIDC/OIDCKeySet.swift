import AsyncHTTPClient
import Foundation
import JWTKit
import KubeCore
import NIOCore
import OIDC

/// The signing keys of one OIDC issuer: discovery (`<issuer>/.well-known/openid-configuration`
/// → `jwks_uri`), then the JWKS (both fetched by ``OIDCDiscovery``, shared with the
/// operator), cached.
///
/// Contract:
/// - Keys are looked up by `kid`, in this issuer's JWKS only: one key set per issuer
///   (``OIDCVerifier``), so a `kid` another issuer published is unknown here.
/// - The keys of one fetch are used for the JWKS's cache time: `Cache-Control: max-age`
///   (less `Age`), else ``defaultCacheTime`` (1 h), never more than ``maxCacheTime`` (24 h)
///   and never less than ``minRefetchInterval``. While the issuer is down, cached keys keep
///   verifying until then; after it, tokens are refused (401, naming the issuer and why the
///   fetch failed) until a fetch succeeds. A failed fetch keeps the keys it would have
///   replaced.
/// - Fetches happen on demand — an unknown `kid`, or keys past their cache time — and at most
///   once per ``minRefetchInterval`` (10 s), failed or not, so a flood of forged `kid`s or a
///   down issuer cannot make the gateway hammer it; within that window such a token is
///   refused. Requests that arrive while a fetch is under way wait for it (one fetch).
/// - Key rotation needs no restart: a new key is picked up by the first token that names it
///   (or by the next fetch after the cache time), and a key the JWKS no longer lists is
///   dropped at that fetch. No token fails across a rotation in which the issuer publishes
///   the new key at least ``minRefetchInterval`` before signing with it, and removes the old
///   one only once the tokens it signed expired — which is how issuers rotate.
/// - Only RSA (RS256), EC P-256 (ES256) and OKP Ed25519 (EdDSA) keys are kept; a JWK that
///   declares an `alg` is only used for that algorithm.
/// - Discovery must name the same issuer it was fetched for (OIDC Discovery §4.3); it is
///   read again after a failed JWKS fetch, in case `jwks_uri` moved.
public actor OIDCKeySet {
    public static let minRefetchInterval: TimeInterval = 10
    /// Cache time of a JWKS whose response has no `Cache-Control` freshness.
    public static let defaultCacheTime: TimeInterval = 3600
    /// The longest a JWKS is used without asking the issuer again, whatever it says.
    public static let maxCacheTime: TimeInterval = 24 * 3600

    public let issuer: String
    private let http: HTTPClient
    private var jwksURI: String?
    private var keys: [String: Key] = [:]
    /// End of the current keys' cache time.
    private var keysExpire = Date.distantPast
    /// Start of the last fetch, failed or not: the refetch limit counts from it.
    private var lastFetch: Date?
    /// Why the last fetch failed, if it did.
    private var lastFailure: String?
    private var inFlight: Task<Void, Error>?
    /// How many JWKS fetches happened (tests check the rate limit).
    public private(set) var fetchCount = 0

    struct Key {
        var algorithm: String
        var collection: JWTKeyCollection
    }

    /// A verifier for one `kid`, and until when it may be used.
    struct CachedKey {
        var collection: JWTKeyCollection
        var validUntil: Date
    }

    public init(issuer: String, http: HTTPClient) {
        self.issuer = issuer
        self.http = http
    }

    /// The cache time of a JWKS whose response allowed `maxAge` seconds (nil: it said nothing).
    public static func cacheTime(maxAge: TimeInterval?) -> TimeInterval {
        min(max(maxAge ?? defaultCacheTime, minRefetchInterval), maxCacheTime)
    }

    /// The verifier for `kid` and `alg`, fetching or re-fetching the JWKS when allowed.
    func key(kid: String, alg: String, now: Date = Date()) async throws -> CachedKey {
        if now < keysExpire, let key = keys[kid] { return try usable(key, kid: kid, alg: alg) }
        var failure: String?
        if let inFlight {
            // A fetch under way may bring the key: wait for it before the refetch limit applies
            // (a fresh replica's first burst of requests all wait for its first fetch).
            do { try await inFlight.value } catch { failure = (error as? OIDCError)?.message ?? "\(error)" }
        } else if let lastFetch, now.timeIntervalSince(lastFetch) < Self.minRefetchInterval {
            failure = lastFailure
        } else {
            do { try await refresh(now: now) } catch { failure = (error as? OIDCError)?.message ?? "\(error)" }
        }
        guard now < keysExpire else {
            throw OIDCError("the signing keys of issuer \(issuer) are past their cache time and could not be fetched again"
                + (failure.map { ": \($0)" } ?? " yet (the next attempt is at most \(Int(Self.minRefetchInterval)) s away)"))
        }
        guard let key = keys[kid] else {
            throw OIDCError("unknown signing key id \(kid) for issuer \(issuer)" + (failure.map { " (fetching its keys failed: \($0))" } ?? ""))
        }
        return try usable(key, kid: kid, alg: alg)
    }

    private func usable(_ key: Key, kid: String, alg: String) throws -> CachedKey {
        guard key.algorithm == alg else { throw OIDCError("key \(kid) is for \(key.algorithm), the token says \(alg)") }
        return CachedKey(collection: key.collection, validUntil: keysExpire)
    }

    private func refresh(now: Date) async throws {
        lastFetch = now
        let task = Task { try await self.fetch(now: now) }
        inFlight = task
        defer { inFlight = nil }
        do {
            try await task.value
            lastFailure = nil
        } catch {
            lastFailure = (error as? OIDCError)?.message ?? "\(error)"
            throw error
        }
    }

    private func fetch(now: Date) async throws {
        fetchCount += 1
        let discovery = OIDCDiscovery(http: http)
        let jwks: OIDCDiscovery.JWKS
        do {
            let uri: String
            if let jwksURI { uri = jwksURI } else { uri = try await discovery.jwksURI(of: issuer) }
            jwksURI = uri
            jwks = try await discovery.jwks(at: uri)
        } catch {
            jwksURI = nil
            throw OIDCError(error.message)
        }
        var fresh: [String: Key] = [:]
        for entry in jwks.keys {
            guard let kid = entry["kid"]?.stringValue, let alg = OIDCDiscovery.algorithm(of: entry) else { continue }
            var withAlg = entry
            withAlg.set(.string(alg), at: ["alg"])
            guard let jwk = try? JSONDecoder().decode(JWK.self, from: Data(withAlg.serialized())) else { continue }
            let collection = JWTKeyCollection()
            do {
                try await collection.add(jwk: jwk)
            } catch {
                continue
            }
            fresh[kid] = Key(algorithm: alg, collection: collection)
        }
        keys = fresh
        keysExpire = now.addingTimeInterval(Self.cacheTime(maxAge: jwks.maxAge))
    }
}
