/// Issues and verifies ServiceAccount tokens shaped like kube-apiserver's bound tokens
/// (what `TokenRequest` / `kubectl create token` return).
///
/// Contract:
/// - A token is a compact JWS signed ES256 (P-256), header `{"alg":"ES256","kid":...}` where
///   `kid` is the base64url SHA-256 of the public key's DER, as kube-apiserver derives it.
/// - Claims: `iss`, `sub` = `system:serviceaccount:<ns>:<name>`, `aud` (array; default the
///   issuer's API audiences), `exp`, `iat`, `nbf`, `jti`, and `kubernetes.io`
///   `{namespace, serviceaccount{name,uid}, pod?, secret?}`.
/// - `expirationSeconds` below 600 is rejected with the TokenRequest validation wording;
///   above `maxExpirationSeconds` (48h) it is capped silently, as
///   `--service-account-max-token-expiration` does; the returned expiration says which.
/// - `verify` checks the algorithm, signature, issuer, `exp`/`nbf` (60 s leeway, as go-jose's
///   default) and, when asked, that the audiences intersect. It does NOT check that the
///   ServiceAccount still exists: the caller compares `claims.serviceAccountUID` with its store.
///
/// jwt-kit 5 signs and verifies only asynchronously (its key collection is an actor); the API
/// server authenticates every request inline, so this uses swift-crypto's P-256 directly for the
/// one fixed JWS shape. Tests check interoperability against jwt-kit.
import Crypto
import Foundation
import KubeCore

/// The `kubernetes.io` private claim of a ServiceAccount token.
public struct KubernetesTokenClaim: Sendable, Hashable, Codable {
    public struct Reference: Sendable, Hashable, Codable {
        public var name: String
        public var uid: String
        public init(name: String, uid: String) {
            self.name = name
            self.uid = uid
        }
    }

    public var namespace: String
    public var serviceaccount: Reference
    public var pod: Reference?
    public var secret: Reference?
    public var node: Reference?
}

/// The claims of a verified (or to-be-signed) ServiceAccount token.
public struct ServiceAccountTokenClaims: Sendable, Hashable, Codable {
    public var iss: String
    public var sub: String
    public var aud: [String]
    public var exp: Int64
    public var iat: Int64
    public var nbf: Int64
    public var jti: String
    public var kubernetes: KubernetesTokenClaim

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, exp, iat, nbf, jti
        case kubernetes = "kubernetes.io"
    }

    public var namespace: String { kubernetes.namespace }
    public var serviceAccountName: String { kubernetes.serviceaccount.name }
    public var serviceAccountUID: String { kubernetes.serviceaccount.uid }
    public var expiration: Date { Date(timeIntervalSince1970: TimeInterval(exp)) }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        iss = try c.decode(String.self, forKey: .iss)
        sub = try c.decode(String.self, forKey: .sub)
        // RFC 7519 allows a single string audience; kube emits an array.
        if let single = try? c.decode(String.self, forKey: .aud) {
            aud = [single]
        } else {
            aud = try c.decodeIfPresent([String].self, forKey: .aud) ?? []
        }
        // NumericDate may carry a fraction (RFC 7519 §2; jwt-kit writes one); whole seconds suffice.
        func numericDate(_ key: CodingKeys) throws -> Int64? {
            guard let seconds = try c.decodeIfPresent(Double.self, forKey: key), seconds.isFinite,
                  abs(seconds) < 1e15 else { return nil }
            return Int64(seconds.rounded(.down))
        }
        guard let expiry = try numericDate(.exp) else {
            throw DecodingError.dataCorruptedError(forKey: .exp, in: c, debugDescription: "exp must be a NumericDate")
        }
        exp = expiry
        iat = try numericDate(.iat) ?? 0
        nbf = try numericDate(.nbf) ?? 0
        jti = try c.decodeIfPresent(String.self, forKey: .jti) ?? ""
        kubernetes = try c.decode(KubernetesTokenClaim.self, forKey: .kubernetes)
    }

    init(iss: String, sub: String, aud: [String], exp: Int64, iat: Int64, nbf: Int64, jti: String,
         kubernetes: KubernetesTokenClaim) {
        self.iss = iss; self.sub = sub; self.aud = aud; self.exp = exp
        self.iat = iat; self.nbf = nbf; self.jti = jti; self.kubernetes = kubernetes
    }
}

/// Why a token was not accepted. The server answers 401 for all of them; the text is for logs.
public enum ServiceAccountTokenError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed(String)
    case unsupportedAlgorithm(String)
    case invalidSignature
    case wrongIssuer(String)
    case expired(Date)
    case notYetValid(Date)
    case audienceMismatch(token: [String], accepted: [String])

    public var description: String {
        switch self {
        case .malformed(let why): return "malformed token: \(why)"
        case .unsupportedAlgorithm(let alg): return "unsupported signing algorithm \"\(alg)\", expected ES256"
        case .invalidSignature: return "invalid signature"
        case .wrongIssuer(let iss): return "token issuer \"\(iss)\" is not this cluster's issuer"
        case .expired(let date): return "service account token has expired (exp \(date))"
        case .notYetValid(let date): return "service account token is not valid yet (nbf \(date))"
        case .audienceMismatch(let token, let accepted):
            return "token audiences \(quotedList(token)) is invalid for the target audiences \(quotedList(accepted))"
        }
    }
}

private func quotedList(_ values: [String]) -> String {
    "[" + values.map { "\"\($0)\"" }.joined(separator: " ") + "]"
}

/// A token bound to an object other than the ServiceAccount (TokenRequest `spec.boundObjectRef`).
public struct BoundObjectReference: Sendable, Hashable {
    public enum Kind: String, Sendable { case pod = "Pod", secret = "Secret", node = "Node" }
    public var kind: Kind
    public var name: String
    public var uid: String
    public init(kind: Kind, name: String, uid: String) {
        self.kind = kind
        self.name = name
        self.uid = uid
    }
}

public struct ServiceAccountTokenIssuer: Sendable {
    public static let defaultIssuer = "https://kubernetes.default.svc.cluster.local"
    public static let minExpirationSeconds: Int64 = 600
    public static let defaultExpirationSeconds: Int64 = 3600
    /// Leeway for `exp`/`nbf`, as go-jose's `DefaultLeeway` that kube-apiserver uses.
    public static let leeway: TimeInterval = 60

    public let issuer: String
    /// Audiences the API server accepts (kube-apiserver's `--api-audiences`, default the issuer).
    public let apiAudiences: [String]
    /// Longer requests are capped to this (48h).
    public let maxExpirationSeconds: Int64
    /// `kid` header value: base64url(SHA-256(public key DER)).
    public let keyID: String
    private let signingKey: P256.Signing.PrivateKey

    public init(signingKey: P256.Signing.PrivateKey, issuer: String = ServiceAccountTokenIssuer.defaultIssuer,
                apiAudiences: [String]? = nil, maxExpirationSeconds: Int64 = 48 * 3600) {
        self.signingKey = signingKey
        self.issuer = issuer
        self.apiAudiences = apiAudiences ?? [issuer]
        self.maxExpirationSeconds = maxExpirationSeconds
        self.keyID = Base64URL.encode(Data(SHA256.hash(data: signingKey.publicKey.derRepresentation)))
    }

    /// Loads the signing key from `<directory>/sa.key` (PEM), creating it if missing;
    /// `nil` generates an in-memory key.
    public static func loadOrCreate(in directory: URL?, issuer: String = defaultIssuer,
                                    apiAudiences: [String]? = nil) throws -> ServiceAccountTokenIssuer {
        guard let directory else {
            return ServiceAccountTokenIssuer(signingKey: P256.Signing.PrivateKey(), issuer: issuer, apiAudiences: apiAudiences)
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let files = DataDirFiles(directory: directory)
        if let pem = files.read("sa.key"), let key = try? P256.Signing.PrivateKey(pemRepresentation: pem) {
            return ServiceAccountTokenIssuer(signingKey: key, issuer: issuer, apiAudiences: apiAudiences)
        }
        let key = P256.Signing.PrivateKey()
        try files.write("sa.key", key.pemRepresentation + "\n", secret: true)
        return ServiceAccountTokenIssuer(signingKey: key, issuer: issuer, apiAudiences: apiAudiences)
    }

    /// The verification key, PEM (what `--service-account-key-file` would hold).
    public var publicKeyPEM: String { signingKey.publicKey.pemRepresentation }

    /// Signs a token for ServiceAccount `namespace/name` with `uid`.
    /// Throws a `FieldError` on `spec.expirationSeconds` (422 in a TokenRequest) below 10 minutes.
    public func issue(namespace: String, name: String, uid: String, audiences: [String] = [],
                      expirationSeconds: Int64 = ServiceAccountTokenIssuer.defaultExpirationSeconds,
                      boundObject: BoundObjectReference? = nil,
                      now: Date = Date()) throws -> (token: String, expiration: Date) {
        let lifetime = try min(validateExpiration(expirationSeconds), maxExpirationSeconds)
        let issuedAt = Int64(now.timeIntervalSince1970.rounded(.down))
        var kube = KubernetesTokenClaim(namespace: namespace,
                                        serviceaccount: .init(name: name, uid: uid))
        switch boundObject?.kind {
        case .pod?: kube.pod = boundObject.map { .init(name: $0.name, uid: $0.uid) }
        case .secret?: kube.secret = boundObject.map { .init(name: $0.name, uid: $0.uid) }
        case .node?: kube.node = boundObject.map { .init(name: $0.name, uid: $0.uid) }
        case nil: break
        }
        let claims = ServiceAccountTokenClaims(
            iss: issuer, sub: "system:serviceaccount:\(namespace):\(name)",
            aud: audiences.isEmpty ? apiAudiences : audiences,
            exp: issuedAt + lifetime, iat: issuedAt, nbf: issuedAt,
            jti: UUID().uuidString.lowercased(), kubernetes: kube)
        let token = try sign(claims)
        return (token, Date(timeIntervalSince1970: TimeInterval(issuedAt + lifetime)))
    }

    /// Signs arbitrary claims with this issuer's key (tests use it to forge edge cases).
    public func sign(_ claims: ServiceAccountTokenClaims) throws -> String {
        let header = #"{"alg":"ES256","kid":"\#(keyID)"}"#
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let payload = try encoder.encode(claims)
        let signingInput = Base64URL.encode(Data(header.utf8)) + "." + Base64URL.encode(payload)
        let signature = try signingKey.signature(for: Data(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(signature.rawRepresentation)
    }

    /// Verifies signature, issuer and validity window; with `audiences`, also that the token
    /// names at least one of them. Returns the claims; the caller checks the SA's uid.
    public func verify(_ token: String, now: Date = Date(), audiences: [String]? = nil) throws -> ServiceAccountTokenClaims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw ServiceAccountTokenError.malformed("expected 3 dot-separated parts") }
        guard let headerData = Base64URL.decode(parts[0]),
              let header = try? JSONDecoder().decode([String: String].self, from: headerData) else {
            throw ServiceAccountTokenError.malformed("header is not base64url JSON")
        }
        guard header["alg"] == "ES256" else {
            throw ServiceAccountTokenError.unsupportedAlgorithm(header["alg"] ?? "")
        }
        guard let signatureBytes = Base64URL.decode(parts[2]),
              let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signatureBytes),
              signingKey.publicKey.isValidSignature(signature, for: Data("\(parts[0]).\(parts[1])".utf8)) else {
            throw ServiceAccountTokenError.invalidSignature
        }
        guard let payload = Base64URL.decode(parts[1]) else {
            throw ServiceAccountTokenError.malformed("payload is not base64url")
        }
        let claims: ServiceAccountTokenClaims
        do {
            claims = try JSONDecoder().decode(ServiceAccountTokenClaims.self, from: payload)
        } catch {
            throw ServiceAccountTokenError.malformed("claims: \(error)")
        }
        guard claims.iss == issuer else { throw ServiceAccountTokenError.wrongIssuer(claims.iss) }
        let nowSeconds = now.timeIntervalSince1970
        if TimeInterval(claims.exp) + Self.leeway < nowSeconds {
            throw ServiceAccountTokenError.expired(claims.expiration)
        }
        if TimeInterval(claims.nbf) - Self.leeway > nowSeconds {
            throw ServiceAccountTokenError.notYetValid(Date(timeIntervalSince1970: TimeInterval(claims.nbf)))
        }
        if let audiences, !claims.aud.contains(where: audiences.contains) {
            throw ServiceAccountTokenError.audienceMismatch(token: claims.aud, accepted: audiences)
        }
        return claims
    }
}

/// Unpadded base64url (RFC 7515 §2), as JWS uses.
enum Base64URL {
    static func encode(_ data: Data) -> String {
        data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode<S: StringProtocol>(_ text: S) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard !base64.contains("=") else { return nil }
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }
}
