import _CryptoExtras
import Crypto
import Foundation
import Gateway
import HTTPServing
import JWTKit
import KubeCore

/// A tiny OIDC issuer for development and tests: discovery, JWKS and an OAuth2 token
/// endpoint over `HTTPServer`, tokens signed with jwt-kit. `agentgate dev` uses it as the
/// agents' issuer and as the web page's login.
///
/// Contract (stable: the admin web page's login and `agentgate credential` are built on it):
/// - `GET /.well-known/openid-configuration`: `issuer` (= ``issuer``, `http://HOST:PORT`, no
///   trailing slash), `jwks_uri` (`ISSUER/keys`), `token_endpoint` (`ISSUER/token`),
///   `authorization_endpoint` (`ISSUER/authorize`), `grant_types_supported`
///   (`client_credentials`, `authorization_code`), `code_challenge_methods_supported` (`S256`).
/// - `GET /keys`: the public JWKS. One key per algorithm (RS256 `dev-rs256`, ES256
///   `dev-es256`, EdDSA `dev-eddsa`), persisted as PEM in `directory` when one is given, so
///   tokens survive a restart. Granted tokens are ES256.
/// - Clients are registered in code (``Client``, ``register(_:)``); there are no users and
///   no login page: a client's tokens name its configured subject, groups and model.
/// - `POST /token`, `application/x-www-form-urlencoded`:
///   - `grant_type=client_credentials`: a confidential client authenticates with HTTP Basic
///     (`client_id:client_secret`, each form-urlencoded, RFC 6749 §2.3.1) or with
///     `client_id` and `client_secret` form fields (not both); the secret is compared in
///     constant time. Optional `audience`: granted only when it is one of the client's
///     audiences, else the client's first audience is used. Optional `scope` is echoed.
///   - `grant_type=authorization_code`: `code`, `redirect_uri` (the one given to
///     `/authorize`), `code_verifier`, and `client_id` (a public client) or the client's
///     authentication (a confidential one).
///   - Success (200, `Cache-Control: no-store`): `{"access_token", "token_type": "Bearer",
///     "expires_in"}`, plus `"id_token"` (the same JWT) and `"scope"` for authorization_code.
///     The JWT: `iss`, `sub` (the client's subject), `aud` (one string), `iat`, `nbf`, `exp`,
///     `azp` (client id), `groups` (when any), `model` (when set), `nonce` (when given to
///     `/authorize`).
///   - Failure: RFC 6749 §5.2 JSON `{"error", "error_description"}`; 401 `invalid_client`
///     (with `WWW-Authenticate: Basic` when Basic was used), else 400: `invalid_request`,
///     `invalid_grant` (unknown, used, expired or mismatched code, wrong verifier),
///     `unauthorized_client` (a public client asking for client_credentials),
///     `unsupported_grant_type`, `invalid_target` (an audience the client may not have).
/// - `GET /authorize?response_type=code&client_id&redirect_uri&code_challenge&
///   code_challenge_method=S256&state[&scope][&nonce][&audience]`: logs in as the client's
///   configured user at once (sandbox only) and answers `302 Location:
///   REDIRECT_URI?code=CODE&state=STATE`. `redirect_uri` must equal one registered for the
///   client byte for byte; if it does not, or the client is unknown, the answer is a 400
///   JSON error and no redirect. Other errors redirect with `error`, `error_description`
///   and `state`: a missing challenge, `plain` or any method but S256 (`invalid_request`),
///   a response_type but `code` (`unsupported_response_type`), an audience the client may
///   not have (`invalid_target`). A code is single use (gone after one redemption, even a
///   failed one), expires after ``codeLifetime`` (60 s) and is bound to the client, the
///   redirect URI and the challenge.
/// - CORS on discovery, `/keys` and `/token`: a request whose `Origin` is the origin of a
///   registered redirect URI gets `Access-Control-Allow-Origin: ORIGIN` (always with `Vary:
///   Origin`); an `OPTIONS` preflight from such an origin gets 204 with `POST, GET` and the
///   `Content-Type` and `Authorization` headers allowed; from any other origin, 403.
/// - ``token(_:)`` signs arbitrary agent tokens in-process (tests, `agentgate dev token`);
///   ``addKey(kid:)`` publishes a new ES256 key (key rotation, unknown-`kid` re-fetch tests).
/// Not for production: HTTP on loopback, no login, users are whoever the code registered.
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
    private var clients: [String: Client] = [:]
    let codes = AuthorizationCodes()
    /// How long an authorization code may wait for its redemption.
    public static let codeLifetime: TimeInterval = 60
    /// The issuer's clock for codes (tests move it to expire a code).
    public var clock: @Sendable () -> Date {
        get { lock.withLock { clockStorage } }
        set { lock.withLock { clockStorage = newValue } }
    }
    private var clockStorage: @Sendable () -> Date = { Date() }
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
            return await self.handle(request)
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

    /// Registers `client` (replacing one with the same id).
    public func register(_ client: Client) {
        lock.withLock { clients[client.id] = client }
    }

    func client(id: String) -> Client? {
        lock.withLock { clients[id] }
    }

    /// The origins of every registered redirect URI (`scheme://host[:port]`), which may call
    /// the issuer from a browser.
    func allowedOrigins() -> Set<String> {
        let uris = lock.withLock { clients.values.flatMap(\.redirectURIs) }
        return Set(uris.compactMap(Self.origin(of:)))
    }

    /// `scheme://host[:port]` of `uri` as a browser writes it in `Origin` (no default port).
    static func origin(of uri: String) -> String? {
        guard let url = URLComponents(string: uri), let scheme = url.scheme?.lowercased(), let host = url.host?.lowercased(),
              !host.isEmpty else { return nil }
        let defaultPort = scheme == "https" ? 443 : scheme == "http" ? 80 : nil
        let port = url.port.flatMap { $0 == defaultPort ? nil : ":\($0)" } ?? ""
        return "\(scheme)://\(host)\(port)"
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

    private func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        let browserCallable = ["/.well-known/openid-configuration", "/keys", "/token"].contains(path)
        let origin = request.header("origin")
        let allowed = browserCallable ? origin.flatMap { allowedOrigins().contains($0) ? $0 : nil } : nil
        var response: HTTPResponse
        if browserCallable, request.method == "OPTIONS" {
            // A CORS preflight: only from a registered origin.
            guard let allowed else { return HTTPResponse(status: 403, headers: [("Vary", "Origin")]) }
            return HTTPResponse(status: 204, headers: [
                ("Access-Control-Allow-Origin", allowed), ("Access-Control-Allow-Methods", "POST, GET"),
                ("Access-Control-Allow-Headers", "Content-Type, Authorization"), ("Access-Control-Max-Age", "600"),
                ("Vary", "Origin"),
            ])
        }
        switch path {
        case "/.well-known/openid-configuration":
            response = .json(200, discoveryDocument().serialized())
        case "/keys":
            let jwks = lock.withLock { publicJWKs }
            response = .json(200, JSONValue.object(["keys": .array(jwks)]).serialized())
        case "/token":
            response = await tokenEndpoint(request)
        case "/authorize":
            response = await authorizationEndpoint(request)
        default:
            response = .json(404, (try? JSONValue(encoding: Status.notFound(group: "", resource: "", name: path)).serialized()) ?? [])
        }
        if browserCallable {
            response.headers.append(("Vary", "Origin"))
            if let allowed { response.headers.append(("Access-Control-Allow-Origin", allowed)) }
        }
        return response
    }

    private func discoveryDocument() -> JSONValue {
        func strings(_ values: [String]) -> JSONValue { .array(values.map { .string($0) }) }
        return .object([
            "issuer": .string(issuer), "jwks_uri": .string(issuer + "/keys"),
            "token_endpoint": .string(issuer + "/token"), "authorization_endpoint": .string(issuer + "/authorize"),
            "grant_types_supported": strings(["authorization_code", "client_credentials"]),
            "response_types_supported": strings(["code"]),
            "code_challenge_methods_supported": strings(["S256"]),
            "token_endpoint_auth_methods_supported": strings(["client_secret_basic", "client_secret_post", "none"]),
            "scopes_supported": strings(["openid"]),
            "claims_supported": strings(["iss", "sub", "aud", "exp", "iat", "nbf", "azp", "nonce", "groups", "model"]),
            "id_token_signing_alg_values_supported": strings(["RS256", "ES256", "EdDSA"]),
            "subject_types_supported": strings(["public"]),
        ])
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
