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
/// - Keys are looked up by `kid`. An unknown `kid` triggers a re-fetch of the JWKS, but at
///   most once per ``minRefetchInterval`` (10 s), so a flood of forged `kid`s cannot make the
///   gateway hammer the issuer; within that window the token is simply refused.
/// - Only RSA (RS256), EC P-256 (ES256) and OKP Ed25519 (EdDSA) keys are kept; a JWK that
///   declares an `alg` is only used for that algorithm.
/// - Discovery must name the same issuer it was fetched for (OIDC Discovery §4.3).
public actor OIDCKeySet {
    public static let minRefetchInterval: TimeInterval = 10

    public let issuer: String
    private let http: HTTPClient
    private var jwksURI: String?
    /// kid → (key type description, verifier collection holding only that key)
    private var keys: [String: Key] = [:]
    private var lastFetch: Date?
    private var inFlight: Task<Void, Error>?
    /// How many JWKS fetches happened (tests check the rate limit).
    public private(set) var fetchCount = 0

    struct Key {
        var algorithm: String
        var collection: JWTKeyCollection
    }

    public init(issuer: String, http: HTTPClient) {
        self.issuer = issuer
        self.http = http
    }

    /// The verifier for `kid` and `alg`, fetching or re-fetching the JWKS when allowed.
    func collection(kid: String, alg: String, now: Date = Date()) async throws -> JWTKeyCollection {
        if let key = keys[kid] {
            guard key.algorithm == alg else {
                throw OIDCError("key \(kid) is for \(key.algorithm), the token says \(alg)")
            }
            return key.collection
        }
        // A fetch under way may bring the key: wait for it before the refetch limit applies
        // (a fresh replica's first burst of requests all wait for its first fetch).
        if let inFlight {
            try await inFlight.value
        } else if let lastFetch, now.timeIntervalSince(lastFetch) < Self.minRefetchInterval {
            throw OIDCError("unknown signing key id \(kid)")
        } else {
            try await refresh(now: now)
        }
        guard let key = keys[kid] else { throw OIDCError("unknown signing key id \(kid)") }
        guard key.algorithm == alg else {
            throw OIDCError("key \(kid) is for \(key.algorithm), the token says \(alg)")
        }
        return key.collection
    }

    private func refresh(now: Date) async throws {
        if let inFlight { return try await inFlight.value }
        lastFetch = now
        let task = Task { try await self.fetch() }
        inFlight = task
        defer { inFlight = nil }
        try await task.value
    }

    private func fetch() async throws {
        fetchCount += 1
        let discovery = OIDCDiscovery(http: http)
        let entries: [JSONValue]
        do {
            if jwksURI == nil { jwksURI = try await discovery.jwksURI(of: issuer) }
            guard let jwksURI else { return }
            entries = try await discovery.keys(at: jwksURI)
        } catch {
            throw OIDCError(error.message)
        }
        var fresh: [String: Key] = [:]
        for entry in entries {
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
    }
}

/// Why a token was refused; the message is safe to show the agent.
public struct OIDCError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
