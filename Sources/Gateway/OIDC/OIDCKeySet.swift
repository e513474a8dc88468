import AsyncHTTPClient
import Foundation
import JWTKit
import KubeCore
import NIOCore

/// The signing keys of one OIDC issuer: discovery (`<issuer>/.well-known/openid-configuration`
/// → `jwks_uri`), then the JWKS, cached.
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
        if jwksURI == nil {
            var base = issuer
            while base.hasSuffix("/") { base.removeLast() }
            let discovery = try await getJSON(base + "/.well-known/openid-configuration")
            guard discovery["issuer"]?.stringValue == issuer else {
                throw OIDCError("discovery document of \(issuer) names issuer \(discovery["issuer"]?.stringValue ?? "<none>")")
            }
            guard let uri = discovery["jwks_uri"]?.stringValue else {
                throw OIDCError("discovery document of \(issuer) has no jwks_uri")
            }
            jwksURI = uri
        }
        guard let jwksURI else { return }
        let jwks = try await getJSON(jwksURI)
        guard case .array(let entries)? = jwks["keys"] else { throw OIDCError("JWKS at \(jwksURI) has no keys array") }
        var fresh: [String: Key] = [:]
        for entry in entries {
            guard let kid = entry["kid"]?.stringValue, let alg = Self.algorithm(of: entry) else { continue }
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

    /// The one algorithm a JWK may verify, or nil when it is not an accepted key.
    static func algorithm(of jwk: JSONValue) -> String? {
        let declared = jwk["alg"]?.stringValue
        if let use = jwk["use"]?.stringValue, use != "sig" { return nil }
        let implied: String
        switch (jwk["kty"]?.stringValue, jwk["crv"]?.stringValue) {
        case ("RSA"?, _): implied = "RS256"
        case ("EC"?, "P-256"?): implied = "ES256"
        case ("OKP"?, "Ed25519"?): implied = "EdDSA"
        default: return nil
        }
        if let declared, declared != implied { return nil }
        return implied
    }

    private func getJSON(_ url: String) async throws -> JSONValue {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .seconds(10))
        } catch {
            throw OIDCError("cannot reach \(url): \(error)")
        }
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status.code == 200 else { throw OIDCError("\(url) answered \(response.status.code)") }
        do {
            return try JSONValue(parsing: Array(buffer: body))
        } catch {
            throw OIDCError("\(url) did not answer JSON: \(error)")
        }
    }
}

/// Why a token was refused; the message is safe to show the agent.
public struct OIDCError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
