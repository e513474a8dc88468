import _CryptoExtras
import Crypto
import Foundation
import HTTPServing
import JWTKit
import KubeCore

/// A tiny OIDC issuer for development and tests: discovery and JWKS over `HTTPServer`,
/// tokens signed with jwt-kit. `agentgate dev` uses it as the agents' issuer.
///
/// Contract:
/// - Serves `GET /.well-known/openid-configuration` (issuer = ``issuer``, `jwks_uri`) and
///   `GET /keys` (the public JWKS) on loopback.
/// - Holds one key per algorithm (RS256 `dev-rs256`, ES256 `dev-es256`, EdDSA `dev-eddsa`),
///   persisted as PEM in `directory` when one is given, so tokens survive a restart.
/// - ``token(_:)`` signs agent tokens; ``addKey(kid:)`` publishes a new ES256 key (key
///   rotation, unknown-`kid` re-fetch tests).
/// Not for production: there is no login, anyone who can reach it gets keys' public halves.
public final class DevOIDCIssuer: @unchecked Sendable {
    public struct TokenRequest: Sendable {
        public var subject: String
        public var audience: String
        /// More audiences (then `aud` is an array).
        public var extraAudiences: [String] = []
        public var groups: [String] = []
        public var model: String?
        public var algorithm: String = "ES256"
        public var lifetime: TimeInterval = 3600
        public var notBefore: Date?
        public var issuedAt: Date = Date()
        public var sessionID: String?
        public var jti: String? = UUID().uuidString
        /// Overrides `iss` (forged-token tests).
        public var issuerOverride: String?
        public var kid: String?
        public var extraClaims: [String: JSONValue] = [:]

        public init(subject: String, audience: String, groups: [String] = [], model: String? = nil) {
            self.subject = subject
            self.audience = audience
            self.groups = groups
            self.model = model
        }
    }

    public private(set) var issuer = ""
    private let server = HTTPServer()
    private let keys = JWTKeyCollection()
    private let lock = NSLock()
    private var publicJWKs: [JSONValue] = []
    let rsaKey: JWTKit.Insecure.RSA.PrivateKey
    let ecKey: ES256PrivateKey
    let edKey: EdDSA.PrivateKey

    public static let rsaKID = "dev-rs256"
    public static let ecKID = "dev-es256"
    public static let edKID = "dev-eddsa"

    /// Loads the keys from `directory` (creating them there when absent), or generates
    /// throwaway keys when `directory` is nil.
    public init(directory: URL? = nil) throws {
        func load(_ file: String, create: () throws -> String) throws -> String {
            guard let directory else { return try create() }
            let url = directory.appendingPathComponent(file)
            if let pem = try? String(contentsOf: url, encoding: .utf8) { return pem }
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let pem = try create()
            try pem.write(to: url, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
            return pem
        }
        rsaKey = try JWTKit.Insecure.RSA.PrivateKey(pem: load("dev-issuer-rs256.pem") {
            try _RSA.Signing.PrivateKey(keySize: .bits2048).pemRepresentation
        })
        ecKey = try ES256PrivateKey(pem: load("dev-issuer-es256.pem") { P256.Signing.PrivateKey().pemRepresentation })
        edKey = try EdDSA.PrivateKey(pem: load("dev-issuer-eddsa.pem") { Curve25519.Signing.PrivateKey().pemRepresentation })
    }

    /// Starts serving on `host:port` (0 picks a free port); returns the issuer URL.
    @discardableResult
    public func start(host: String = "127.0.0.1", port: Int = 0) async throws -> String {
        try await loadSigningKeys()
        let bound = try await server.start(host: host, port: port, tls: nil) { [weak self] request in
            guard let self else { return HTTPResponse(status: 503) }
            return self.handle(request)
        }
        issuer = "http://\(host):\(bound)"
        return issuer
    }

    /// Signs tokens as `issuer` without serving (`agentgate dev token`: the sandbox's issuer
    /// runs in another process; the keys come from the same directory).
    public func prepareOffline(issuer: String) async throws {
        try await loadSigningKeys()
        self.issuer = issuer
    }

    private func loadSigningKeys() async throws {
        let primitives = try rsaKey.publicKey.getKeyPrimitives()
        await keys.add(rsa: rsaKey, digestAlgorithm: .sha256, kid: JWKIdentifier(string: Self.rsaKID))
        await keys.add(ecdsa: ecKey, kid: JWKIdentifier(string: Self.ecKID))
        await keys.add(eddsa: edKey, kid: JWKIdentifier(string: Self.edKID))
        var jwks: [JSONValue] = [
            .object(["kty": .string("RSA"), "kid": .string(Self.rsaKID), "alg": .string("RS256"), "use": .string("sig"),
                     "n": .string(Base64URL.encode(primitives.modulus)), "e": .string(Base64URL.encode(primitives.publicExponent))]),
            .object(["kty": .string("OKP"), "crv": .string("Ed25519"), "kid": .string(Self.edKID), "alg": .string("EdDSA"),
                     "use": .string("sig"), "x": .string(Base64URL.encode(edKey.publicKey.rawRepresentation))]),
        ]
        jwks.append(Self.ecJWK(ecKey, kid: Self.ecKID))
        lock.withLock { publicJWKs = jwks }
    }

    public func shutdown() async {
        await server.shutdown()
    }

    /// Publishes a new ES256 key under `kid` (the JWKS changes; cached verifiers must re-fetch).
    public func addKey(kid: String) async {
        let key = ES256PrivateKey()
        await keys.add(ecdsa: key, kid: JWKIdentifier(string: kid))
        lock.withLock { publicJWKs.append(Self.ecJWK(key, kid: kid)) }
    }

    /// The RSA public key as PEM bytes (what a forger would use as an HMAC secret).
    public var rsaPublicKeyPEM: String { rsaKey.publicKey.pemRepresentation }

    /// Signs a token.
    public func token(_ request: TokenRequest) async throws -> String {
        var claims: [String: JSONValue] = request.extraClaims
        claims["iss"] = .string(request.issuerOverride ?? issuer)
        claims["sub"] = .string(request.subject)
        claims["aud"] = request.extraAudiences.isEmpty ? .string(request.audience)
            : .array(([request.audience] + request.extraAudiences).map { .string($0) })
        let iat = Int64(request.issuedAt.timeIntervalSince1970)
        claims["iat"] = .int(iat)
        claims["exp"] = .int(iat + Int64(request.lifetime))
        claims["nbf"] = .int(Int64((request.notBefore ?? request.issuedAt).timeIntervalSince1970))
        if !request.groups.isEmpty { claims["groups"] = .array(request.groups.map { .string($0) }) }
        if let model = request.model { claims["model"] = .string(model) }
        if let sid = request.sessionID { claims["sid"] = .string(sid) }
        if let jti = request.jti { claims["jti"] = .string(jti) }
        let kid: String
        switch request.algorithm {
        case "RS256": kid = request.kid ?? Self.rsaKID
        case "EdDSA": kid = request.kid ?? Self.edKID
        default: kid = request.kid ?? Self.ecKID
        }
        return try await keys.sign(RawClaims(value: .object(claims)), kid: JWKIdentifier(string: kid))
    }

    private func handle(_ request: HTTPRequest) -> HTTPResponse {
        let path = request.uri.split(separator: "?").first.map(String.init) ?? request.uri
        switch path {
        case "/.well-known/openid-configuration":
            let doc: JSONValue = .object([
                "issuer": .string(issuer), "jwks_uri": .string(issuer + "/keys"),
                "id_token_signing_alg_values_supported": .array([.string("RS256"), .string("ES256"), .string("EdDSA")]),
                "response_types_supported": .array([.string("id_token")]),
                "subject_types_supported": .array([.string("public")]),
            ])
            return .json(200, doc.serialized())
        case "/keys":
            let jwks = lock.withLock { publicJWKs }
            return .json(200, JSONValue.object(["keys": .array(jwks)]).serialized())
        default:
            return .json(404, Status.notFound(group: "", resource: "", name: path).serializedJSON())
        }
    }

    static func ecJWK(_ key: ES256PrivateKey, kid: String) -> JSONValue {
        let params = key.publicKey.parameters
        return .object(["kty": .string("EC"), "crv": .string("P-256"), "kid": .string(kid), "alg": .string("ES256"),
                        "use": .string("sig"), "x": .string(params?.x ?? ""), "y": .string(params?.y ?? "")])
    }
}

/// Arbitrary claims as a JWT payload.
struct RawClaims: JWTPayload {
    var value: JSONValue
    init(value: JSONValue) { self.value = value }
    init(from decoder: Decoder) throws { value = try JSONValue(from: decoder) }
    func encode(to encoder: Encoder) throws { try value.encode(to: encoder) }
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

extension Status {
    /// The Status as JSON bytes (what the gateway answers agents with).
    func serializedJSON() -> [UInt8] {
        (try? JSONValue(encoding: self).serialized()) ?? Array(#"{"kind":"Status","apiVersion":"v1","status":"Failure"}"#.utf8)
    }
}
