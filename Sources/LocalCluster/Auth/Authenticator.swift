/// Maps a request's bearer token to the user it authenticates, as kube-apiserver's token
/// authenticators do for the two kinds of token the local cluster hands out.
///
/// Contract:
/// - The admin token (random, kept in `<dataDir>/admin.token`, written 0600; what
///   `admin.kubeconfig` carries) → `kubernetes-admin`, groups `system:masters`,
///   `system:authenticated`.
/// - A ServiceAccount token that verifies (signature, issuer, not expired, audience among the
///   API audiences) AND whose ServiceAccount still exists with the uid in the token →
///   `system:serviceaccount:<ns>:<name>`, uid = the SA's uid, groups `system:serviceaccounts`,
///   `system:serviceaccounts:<ns>`, `system:authenticated`. A deleted (or deleted and recreated)
///   ServiceAccount's tokens stop working at once, and so do tokens bound to a Pod or Secret
///   that is gone (when ``boundObjectUID`` is given). The signature verification is cached
///   (``TokenVerificationCache``, 10 s, never past expiry); these existence checks are not.
/// - A client certificate the TLS handshake verified against the cluster CA (see
///   `ClusterCertificateAuthority.serverTLSConfiguration`) → CN as username, each O as a group,
///   plus `system:authenticated`, as kube-apiserver's x509 authenticator.
/// - Anything else → nil; the server answers 401 `Unauthorized`.
import Crypto
import Foundation
import X509

public struct Authenticator: Sendable {
    /// The identity the admin token authenticates as.
    public static let adminUser = UserInfo(username: "kubernetes-admin",
                                           groups: ["system:masters", "system:authenticated"])

    public let adminToken: String
    public let tokenIssuer: ServiceAccountTokenIssuer
    /// The uid of ServiceAccount (namespace, name) as the store holds it now; nil if absent.
    public let serviceAccountUID: @Sendable (_ namespace: String, _ name: String) -> String?
    /// The uid of the Pod or Secret (kind, namespace, name) a token is bound to; nil if absent.
    public let boundObjectUID: (@Sendable (_ kind: String, _ namespace: String, _ name: String) -> String?)?
    private let verifications = TokenVerificationCache()

    public init(adminToken: String, tokenIssuer: ServiceAccountTokenIssuer,
                serviceAccountUID: @escaping @Sendable (_ namespace: String, _ name: String) -> String?,
                boundObjectUID: (@Sendable (_ kind: String, _ namespace: String, _ name: String) -> String?)? = nil) {
        self.adminToken = adminToken
        self.tokenIssuer = tokenIssuer
        self.serviceAccountUID = serviceAccountUID
        self.boundObjectUID = boundObjectUID
    }

    /// Reads the admin token from `<directory>/admin.token`, creating it if missing or empty;
    /// `nil` makes an in-memory token.
    public static func loadOrCreateAdminToken(in directory: URL?) throws -> String {
        guard let directory else { return makeToken() }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let files = DataDirFiles(directory: directory)
        if let kept = files.read("admin.token")?.trimmingCharacters(in: .whitespacesAndNewlines), !kept.isEmpty {
            return kept
        }
        let token = makeToken()
        try files.write("admin.token", token + "\n", secret: true)
        return token
    }

    /// 32 random bytes, base64url: a bearer token that is safe in headers and kubeconfigs.
    static func makeToken() -> String {
        Base64URL.encode(SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) })
    }

    /// Authenticates an `Authorization` header value (`Bearer <token>`, scheme case-insensitive).
    public func authenticate(authorizationHeader: String?, now: Date = Date()) -> UserInfo? {
        guard let header = authorizationHeader?.trimmingCharacters(in: .whitespaces) else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return authenticate(bearerToken: token, now: now)
    }

    /// Authenticates a bare bearer token.
    public func authenticate(bearerToken token: String, now: Date = Date()) -> UserInfo? {
        guard !token.isEmpty else { return nil }
        if constantTimeEquals(token, adminToken) { return Self.adminUser }
        guard let claims = try? verifications.claims(for: token, now: now, leeway: ServiceAccountTokenIssuer.leeway, verify: {
            try tokenIssuer.verify(token, now: now, audiences: tokenIssuer.apiAudiences)
        }) else {
            return nil
        }
        let namespace = claims.namespace
        let name = claims.serviceAccountName
        // The subject must agree with the private claim, or a token could name one SA and bind another.
        guard claims.sub == UserInfo.serviceAccountUsername(namespace: namespace, name: name),
              let currentUID = serviceAccountUID(namespace, name),
              currentUID == claims.serviceAccountUID else {
            return nil
        }
        // A token bound to a Pod or Secret dies with it, as kube-apiserver's legacy-free
        // ServiceAccount authenticator checks.
        if let boundObjectUID {
            for (kind, reference) in [("Pod", claims.kubernetes.pod), ("Secret", claims.kubernetes.secret)] {
                guard let reference else { continue }
                guard boundObjectUID(kind, namespace, reference.name) == reference.uid else { return nil }
            }
        }
        var extra: [String: [String]] = [:]
        if !claims.jti.isEmpty { extra["authentication.kubernetes.io/credential-id"] = ["JTI=\(claims.jti)"] }
        if let pod = claims.kubernetes.pod {
            extra["authentication.kubernetes.io/pod-name"] = [pod.name]
            extra["authentication.kubernetes.io/pod-uid"] = [pod.uid]
        }
        return UserInfo(username: claims.sub, uid: currentUID,
                        groups: ["system:serviceaccounts", "system:serviceaccounts:\(namespace)", "system:authenticated"],
                        extra: extra)
    }

    /// Authenticates the peer certificate (DER, e.g. `NIOSSLCertificate.toDERBytes()`) of a
    /// connection whose handshake verified it against the cluster CA. Only call it with a
    /// certificate NIOSSL validated; this does not check the chain again.
    public func authenticate(verifiedClientCertificateDER der: [UInt8], now: Date = Date()) -> UserInfo? {
        guard let certificate = try? Certificate(derEncoded: der),
              certificate.notValidBefore <= now, now <= certificate.notValidAfter else { return nil }
        var commonName: String?
        var organizations: [String] = []
        for rdn in certificate.subject {
            for attribute in rdn {
                guard let value = String(attribute.value) else { continue }
                if attribute.type == .RDNAttributeType.commonName { commonName = value }
                if attribute.type == .RDNAttributeType.organizationName { organizations.append(value) }
            }
        }
        guard let commonName, !commonName.isEmpty else { return nil }
        return UserInfo(username: commonName, groups: organizations + ["system:authenticated"])
    }

    private func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<x.count { diff |= x[i] ^ y[i] }
        return diff == 0
    }
}
