import Crypto
import Foundation
import JWTKit
import KubeCore
import XCTest
@testable import LocalCluster

/// ServiceAccount tokens: claims as kube-apiserver's bound tokens, expiry rules, tamper
/// resistance, persistence of the signing key, and interoperability with jwt-kit.
final class AuthServiceAccountTokenTests: XCTestCase {
    private let now = Date(timeIntervalSince1970: 1_760_000_000)

    private func payload(of token: String) throws -> JSONValue {
        let parts = token.split(separator: ".")
        XCTAssertEqual(parts.count, 3)
        return try JSONValue(parsing: XCTUnwrap(Base64URL.decode(parts[1])))
    }

    func testIssuedTokenCarriesKubernetesBoundTokenClaims() throws {
        let issuer = try ServiceAccountTokenIssuer.loadOrCreate(in: nil)
        let (token, expiration) = try issuer.issue(namespace: "agents", name: "gateway", uid: "uid-1",
                                                   expirationSeconds: 3600, now: now)
        let claims = try payload(of: token)
        XCTAssertEqual(claims["iss"], "https://kubernetes.default.svc.cluster.local")
        XCTAssertEqual(claims["sub"], "system:serviceaccount:agents:gateway")
        XCTAssertEqual(claims["aud"], ["https://kubernetes.default.svc.cluster.local"])
        XCTAssertEqual(claims["iat"]?.intValue, 1_760_000_000)
        XCTAssertEqual(claims["nbf"]?.intValue, 1_760_000_000)
        XCTAssertEqual(claims["exp"]?.intValue, 1_760_003_600)
        XCTAssertEqual(claims["jti"]?.stringValue?.count, 36)
        XCTAssertEqual(claims["kubernetes.io"], ["namespace": "agents", "serviceaccount": ["name": "gateway", "uid": "uid-1"]])
        XCTAssertEqual(expiration, Date(timeIntervalSince1970: 1_760_003_600))

        let header = try JSONValue(parsing: XCTUnwrap(Base64URL.decode(token.split(separator: ".")[0])))
        XCTAssertEqual(header["alg"], "ES256")
        XCTAssertEqual(header["kid"]?.stringValue, issuer.keyID)

        let verified = try issuer.verify(token, now: now + 10)
        XCTAssertEqual(verified.serviceAccountUID, "uid-1")
        XCTAssertEqual(verified.namespace, "agents")
        XCTAssertEqual(verified.serviceAccountName, "gateway")
    }

    func testAudiencesAndBoundPodAreRecorded() throws {
        let issuer = try ServiceAccountTokenIssuer.loadOrCreate(in: nil)
        let (token, _) = try issuer.issue(namespace: "ns", name: "sa", uid: "u", audiences: ["vault", "api"],
                                          boundObject: BoundObjectReference(kind: .pod, name: "p", uid: "pod-uid"),
                                          now: now)
        let claims = try issuer.verify(token, now: now)
        XCTAssertEqual(claims.aud, ["vault", "api"])
        XCTAssertEqual(claims.kubernetes.pod, .init(name: "p", uid: "pod-uid"))
        XCTAssertThrowsError(try issuer.verify(token, now: now, audiences: issuer.apiAudiences)) { error in
            XCTAssertEqual((error as? ServiceAccountTokenError)?.description,
                           #"token audiences ["vault" "api"] is invalid for the target audiences ["https://kubernetes.default.svc.cluster.local"]"#)
        }
        XCTAssertNoThrow(try issuer.verify(token, now: now, audiences: ["api"]))
    }

    func testExpirationBelowTenMinutesIsRejectedWithTokenRequestWording() throws {
        let issuer = try ServiceAccountTokenIssuer.loadOrCreate(in: nil)
        XCTAssertThrowsError(try issuer.issue(namespace: "ns", name: "sa", uid: "u", expirationSeconds: 599, now: now)) { error in
            XCTAssertEqual((error as? FieldError)?.description,
                           "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes")
        }
        XCTAssertNoThrow(try issuer.issue(namespace: "ns", name: "sa", uid: "u", expirationSeconds: 600, now: now))
    }

    func testExpirationAboveFortyEightHoursIsCapped() throws {
        let issuer = try ServiceAccountTokenIssuer.loadOrCreate(in: nil)
        let (token, expiration) = try issuer.issue(namespace: "ns", name: "sa", uid: "u",
                                                   expirationSeconds: 7 * 86_400, now: now)
        XCTAssertEqual(expiration, now + 48 * 3600)
        XCTAssertEqual(try issuer.verify(token, now: now).exp, Int64(now.timeIntervalSince1970) + 48 * 3600)
    }

    func testExpiredAndNotYetValidTokensAreRejectedOutsideTheLeeway() throws {
        let issuer = try ServiceAccountTokenIssuer.loadOrCreate(in: nil)
        let (token, expiration) = try issuer.issue(namespace: "ns", name: "sa", uid: "u", expirationSeconds: 600, now: now)
        XCTAssertNoThrow(try issuer.verify(token, now: expiration + 59))
        XCTAssertThrowsError(try issuer.verify(token, now: expiration + 61)) { error in
            guard case .expired = error as? ServiceAccountTokenError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try issuer.verify(token, now: now - 120)) { error in
            guard case .notYetValid = error as? ServiceAccountTokenError else { return XCTFail("\(error)") }
        }
    }

    func testTamperedForeignAndUnsignedTokensAreRejected() throws {
        let issuer = try ServiceAccountTokenIssuer.loadOrCreate(in: nil)
        let other = try ServiceAccountTokenIssuer.loadOrCreate(in: nil)
        let (token, _) = try issuer.issue(namespace: "ns", name: "sa", uid: "u", now: now)
        let parts = token.split(separator: ".").map(String.init)

        var claims = try payload(of: token)
        claims.set("system:serviceaccount:kube-system:admin", at: ["sub"])
        let forgedPayload = Base64URL.encode(Data(claims.serialized()))
        let tampered = [parts[0], forgedPayload, parts[2]].joined(separator: ".")
        let unsigned = [Base64URL.encode(Data(#"{"alg":"none"}"#.utf8)), parts[1], ""].joined(separator: ".")

        let (foreign, _) = try other.issue(namespace: "ns", name: "sa", uid: "u", now: now)
        let cases: [(String, ServiceAccountTokenError)] = [
            (tampered, .invalidSignature),
            (foreign, .invalidSignature),
            (unsigned, .unsupportedAlgorithm("none")),
            ("not-a-jwt", .malformed("expected 3 dot-separated parts")),
        ]
        for (candidate, expected) in cases {
            XCTAssertThrowsError(try issuer.verify(candidate, now: now)) { error in
                XCTAssertEqual(error as? ServiceAccountTokenError, expected)
            }
        }
        XCTAssertThrowsError(try issuer.verify("a.b.c", now: now))
    }

    func testTokenFromAnotherIssuerNameIsRejected() throws {
        let key = P256.Signing.PrivateKey()
        let ours = ServiceAccountTokenIssuer(signingKey: key)
        let theirs = ServiceAccountTokenIssuer(signingKey: key, issuer: "https://elsewhere")
        let (token, _) = try theirs.issue(namespace: "ns", name: "sa", uid: "u", audiences: ours.apiAudiences, now: now)
        XCTAssertThrowsError(try ours.verify(token, now: now)) { error in
            XCTAssertEqual(error as? ServiceAccountTokenError, .wrongIssuer("https://elsewhere"))
        }
    }

    func testSigningKeyPersistsInDataDirectory() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("auth-sa-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try ServiceAccountTokenIssuer.loadOrCreate(in: dir)
        let (token, _) = try first.issue(namespace: "ns", name: "sa", uid: "u", now: now)
        let second = try ServiceAccountTokenIssuer.loadOrCreate(in: dir)
        XCTAssertEqual(first.keyID, second.keyID)
        XCTAssertNoThrow(try second.verify(token, now: now))
        let attributes = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("sa.key").path)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
    }

    func testTokenRequestResponseFillsDefaultsAndStatus() throws {
        let issuer = try ServiceAccountTokenIssuer.loadOrCreate(in: nil)
        let serviceAccount: JSONValue = ["apiVersion": "v1", "kind": "ServiceAccount",
                                         "metadata": ["name": "gateway", "namespace": "agents", "uid": "uid-9"]]
        let request: JSONValue = ["apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                  "spec": ["boundObjectRef": ["kind": "Pod", "name": "p", "uid": "pod-1"]]]
        let (response, warnings) = try issuer.respond(toTokenRequest: request, serviceAccount: serviceAccount, now: now)
        XCTAssertEqual(warnings, [])
        XCTAssertEqual(response["kind"], "TokenRequest")
        XCTAssertEqual(response[path: ["metadata", "name"]], "gateway")
        XCTAssertEqual(response[path: ["spec", "expirationSeconds"]], 3600)
        XCTAssertEqual(response[path: ["spec", "audiences"]], ["https://kubernetes.default.svc.cluster.local"])
        XCTAssertEqual(response[path: ["status", "expirationTimestamp"]], "2025-10-09T09:53:20Z")
        let token = try XCTUnwrap(response[path: ["status", "token"]]?.stringValue)
        let claims = try issuer.verify(token, now: now)
        XCTAssertEqual(claims.sub, "system:serviceaccount:agents:gateway")
        XCTAssertEqual(claims.serviceAccountUID, "uid-9")
        XCTAssertEqual(claims.kubernetes.pod, .init(name: "p", uid: "pod-1"))
    }

    func testTokenRequestShortensLongExpirationWithWarningAndRejectsShortOnes() throws {
        let issuer = try ServiceAccountTokenIssuer.loadOrCreate(in: nil)
        let serviceAccount: JSONValue = ["metadata": ["name": "sa", "namespace": "ns", "uid": "u"]]
        let long: JSONValue = ["spec": ["expirationSeconds": 604_800, "audiences": ["vault"]]]
        let (response, warnings) = try issuer.respond(toTokenRequest: long, serviceAccount: serviceAccount, now: now)
        XCTAssertEqual(warnings, ["requested expiration of 604800 seconds shortened to 172800 seconds"])
        XCTAssertEqual(response[path: ["spec", "expirationSeconds"]], 172_800)
        XCTAssertEqual(response[path: ["spec", "audiences"]], ["vault"])

        let short: JSONValue = ["spec": ["expirationSeconds": 60]]
        XCTAssertThrowsError(try issuer.respond(toTokenRequest: short, serviceAccount: serviceAccount, now: now)) { error in
            XCTAssertEqual((error as? FieldError)?.description,
                           "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes")
        }
        let node: JSONValue = ["spec": ["boundObjectRef": ["kind": "ConfigMap", "name": "c"]]]
        XCTAssertThrowsError(try issuer.respond(toTokenRequest: node, serviceAccount: serviceAccount, now: now)) { error in
            XCTAssertEqual((error as? FieldError)?.field, "spec.boundObjectRef.kind")
        }
    }

    /// A standard JWT library accepts our tokens, and we accept its ES256 tokens (whose `exp`
    /// carries a fraction of a second).
    func testTokensInteroperateWithJWTKit() async throws {
        let key = P256.Signing.PrivateKey()
        let issuer = ServiceAccountTokenIssuer(signingKey: key)
        let (token, _) = try issuer.issue(namespace: "ns", name: "sa", uid: "u", expirationSeconds: 3600)

        let keys = JWTKeyCollection()
        await keys.add(ecdsa: try ES256PublicKey(pem: issuer.publicKeyPEM))
        let verified = try await keys.verify(token, as: InteropPayload.self)
        XCTAssertEqual(verified.sub.value, "system:serviceaccount:ns:sa")
        XCTAssertEqual(verified.aud.value, ["https://kubernetes.default.svc.cluster.local"])

        let signer = JWTKeyCollection()
        await signer.add(ecdsa: try ES256PrivateKey(pem: key.pemRepresentation))
        let external = try await signer.sign(InteropPayload(
            iss: .init(value: issuer.issuer), sub: .init(value: "system:serviceaccount:ns:other"),
            aud: .init(value: issuer.apiAudiences), exp: .init(value: Date() + 600),
            kubernetes: .init(namespace: "ns", serviceaccount: .init(name: "other", uid: "u2"))))
        let claims = try issuer.verify(external, audiences: issuer.apiAudiences)
        XCTAssertEqual(claims.serviceAccountUID, "u2")
    }
}

private struct InteropPayload: JWTPayload {
    var iss: IssuerClaim
    var sub: SubjectClaim
    var aud: AudienceClaim
    var exp: ExpirationClaim
    var kubernetes: KubernetesTokenClaim

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, exp
        case kubernetes = "kubernetes.io"
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}
