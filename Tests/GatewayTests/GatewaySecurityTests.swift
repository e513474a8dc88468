import AgentGateAPI
import Crypto
import Foundation
import Gateway
import HTTPServing
import KubeCore
import NIOHTTP1
import SessionStore
import TestSupport
import XCTest

/// Records every request that reaches it: the "upstream" for tests that must prove a request
/// was (or was not) forwarded, and exactly how.
final class UpstreamSpy: @unchecked Sendable {
    private let server = HTTPServer()
    private var seen: [HTTPRequest] = []
    private let lock = NSLock()
    var port = 0
    var requests: [HTTPRequest] { lock.withLock { seen } }

    func start() async throws -> String {
        port = try await server.start(host: "127.0.0.1", port: 0, tls: nil) { [self] request in
            lock.withLock { seen.append(request) }
            return .json(200, Array(#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{},"items":[]}"#.utf8))
        }
        return "http://127.0.0.1:\(port)"
    }

    func stop() async { await server.shutdown() }
}

class GatewaySecurityTests: XCTestCase {
    /// The session-store backend; the `...OnPostgres` subclass runs every test here on PostgreSQL.
    class var backend: GatewayStoreBackend { .sqlite }

    var harness: GatewayHarness!
    var spy: UpstreamSpy!

    override func setUp() async throws {
        spy = UpstreamSpy()
        let url = try await spy.start()
        harness = try await GatewayHarness(backend: Self.backend, upstreamOverride: url)
    }

    override func tearDown() async throws {
        await harness?.stop()
        await spy?.stop()
    }

    private var listURL: String { "\(harness.connectionURL)/api/v1/namespaces/default/configmaps" }

    private func expectRefused(_ token: String, code: Int, _ what: String, file: StaticString = #filePath, line: UInt = #line) async throws {
        let reply = try await GatewayHarness.send(.GET, listURL, headers: [("Authorization", "Bearer \(token)")])
        XCTAssertEqual(reply.status, code, "\(what): \(reply.body)", file: file, line: line)
        let status = try JSONValue(parsing: reply.body)
        XCTAssertEqual(status["kind"]?.stringValue, "Status", what, file: file, line: line)
        XCTAssertEqual(status["code"], .int(Int64(code)), what, file: file, line: line)
    }

    func testForgedAndInvalidTokensAreRefusedAndNeverForwarded() async throws {
        let good = try await harness.token()
        let parts = good.split(separator: ".").map(String.init)
        func b64(_ s: String) -> String {
            Data(s.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        // alg none, payload of a valid token, no signature
        try await expectRefused(b64(#"{"alg":"none","typ":"JWT"}"#) + "." + parts[1] + ".", code: 401, "alg none")
        // HS256 signed with the RSA public key's PEM bytes as the HMAC secret (key confusion)
        let hsHeader = b64(#"{"alg":"HS256","typ":"JWT","kid":"dev-rs256"}"#)
        let signingInput = hsHeader + "." + parts[1]
        let mac = HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: SymmetricKey(data: Data(harness.issuer.rsaPublicKeyPEM.utf8)))
        let hsSignature = Data(mac).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        try await expectRefused(signingInput + "." + hsSignature, code: 401, "HS256 with the public key")
        // a valid signature over a tampered payload
        try await expectRefused(parts[0] + "." + b64(#"{"sub":"agent-1","iss":"x"}"#) + "." + parts[2], code: 401, "tampered payload")
        try await expectRefused(try await harness.token { $0.kid = "no-such-key" }, code: 401, "unknown kid")
        try await expectRefused(try await harness.token { $0.issuerOverride = "https://evil.example" }, code: 401, "wrong issuer")
        try await expectRefused(try await harness.token { $0.audience = "someone-else" }, code: 401, "wrong audience")
        try await expectRefused(try await harness.token { $0.issuedAt = Date().addingTimeInterval(-7200) }, code: 401, "expired")
        try await expectRefused(try await harness.token { $0.notBefore = Date().addingTimeInterval(600) }, code: 401, "not yet valid")
        try await expectRefused(try await harness.token(subject: "intruder"), code: 403, "subject not allowed")
        try await expectRefused("not-a-jwt", code: 401, "garbage")
        XCTAssertEqual(spy.requests.count, 0, "no refused request reached the upstream")
        let recordedSoFar = try await harness.exchanges().count
        XCTAssertEqual(recordedSoFar, 0, "nothing was recorded for unauthenticated requests")

        // The three accepted algorithms, within leeway, and by group.
        for alg in ["RS256", "ES256", "EdDSA"] {
            let token = try await harness.token { $0.algorithm = alg }
            let reply = try await GatewayHarness.send(.GET, listURL, headers: [("Authorization", "Bearer \(token)")])
            XCTAssertEqual(reply.status, 200, "\(alg): \(reply.body)")
        }
        let lateButLenient = try await harness.token { $0.issuedAt = Date().addingTimeInterval(-3630) }
        let lenient = try await GatewayHarness.send(.GET, listURL, headers: [("Authorization", "Bearer \(lateButLenient)")]).status
        XCTAssertEqual(lenient, 200, "exp 30 s ago is within the 60 s leeway")
        let byGroup = try await harness.token(subject: "other", groups: ["agents"])
        let groupStatus = try await GatewayHarness.send(.GET, listURL, headers: [("Authorization", "Bearer \(byGroup)")]).status
        XCTAssertEqual(groupStatus, 200)
        XCTAssertEqual(spy.requests.count, 5)
    }

    func testUnknownKidRefetchesTheJWKSAtMostOncePerTenSeconds() async throws {
        let first = try await harness.token()
        let firstStatus = try await GatewayHarness.send(.GET, listURL, headers: [("Authorization", "Bearer \(first)")]).status
        XCTAssertEqual(firstStatus, 200)
        let keySet = harness.gateway.verifier.keySet(for: harness.config.identity.issuer)
        let fetchesBefore = await keySet.fetchCount
        for _ in 0..<5 {
            try await expectRefused(try await harness.token { $0.kid = "forged-\(UUID().uuidString)" }, code: 401, "unknown kid")
        }
        let fetchesAfter = await keySet.fetchCount
        XCTAssertLessThanOrEqual(fetchesAfter - fetchesBefore, 1, "a flood of unknown kids costs at most one JWKS fetch per 10 s")
    }

    func testSmuggledIdentityHeadersAreStrippedAndTheConnectionCredentialInjected() async throws {
        let token = try await harness.token()
        let reply = try await GatewayHarness.send(.GET, listURL, headers: [
            ("Authorization", "Bearer \(token)"),
            ("Impersonate-User", "system:admin"), ("Impersonate-Group", "system:masters"),
            ("Impersonate-Extra-scopes", "all"), ("X-Remote-User", "root"), ("X-Remote-Group", "system:masters"),
            ("Accept", "application/vnd.kubernetes.protobuf, application/json"), ("User-Agent", "kubectl/v1.31"),
            ("Kubectl-Command", "kubectl get"),
        ])
        XCTAssertEqual(reply.status, 200, reply.body)
        let forwarded = try XCTUnwrap(spy.requests.first)
        XCTAssertEqual(forwarded.headers["authorization"], ["Bearer \(harness.saToken)"])
        for (name, _) in forwarded.headers {
            XCTAssertFalse(name.lowercased().hasPrefix("impersonate-"), name)
            XCTAssertFalse(name.lowercased().hasPrefix("x-remote-"), name)
        }
        XCTAssertEqual(forwarded.header("Accept"), "application/json")
        let userAgent = try XCTUnwrap(forwarded.header("User-Agent"))
        let sessions = try await harness.store.listSessions(SessionFilter())
        let session = try XCTUnwrap(sessions.first)
        XCTAssertEqual(userAgent, "kubectl/v1.31 agentgate-session/\(session.id)")
        XCTAssertEqual(forwarded.uri, "/api/v1/namespaces/default/configmaps")

        let twoAuthorizations = try await GatewayHarness.send(.GET, listURL, headers: [
            ("Authorization", "Bearer \(token)"), ("Authorization", "Bearer \(harness.saToken)")])
        XCTAssertEqual(twoAuthorizations.status, 401, "a second Authorization header is refused, not chosen from")
        XCTAssertEqual(spy.requests.count, 1)
    }

    func testPathTricksAndUnknownConnectionsAreRefusedBeforeForwarding() async throws {
        let token = try await harness.token()
        let auth = [("Authorization", "Bearer \(token)")]
        for path in ["/c/a/b/../../c/default/conn/api/v1/pods", "/c/default/conn/api/v1/namespaces/default%2Fx/pods",
                     "/c/default/conn//api/v1/pods", "/c/default/conn/api/v1/%2e%2e/pods"] {
            let reply = try await GatewayHarness.send(.GET, harness.base + path, headers: auth)
            XCTAssertEqual(reply.status, 400, "\(path): \(reply.body)")
        }
        let unknownConnection = try await GatewayHarness.send(.GET, harness.base + "/c/default/nope/api/v1/pods", headers: auth).status
        XCTAssertEqual(unknownConnection, 404)
        let outsideConnections = try await GatewayHarness.send(.GET, harness.base + "/api/v1/pods", headers: auth).status
        XCTAssertEqual(outsideConnections, 404)
        XCTAssertEqual(spy.requests.count, 0)
    }

    func testAccessDenyRuleRefusesWith403NamingTheRule() async throws {
        harness.config.access = AccessPolicy(rules: [AccessRule(name: "no-secrets", action: .deny, resources: ["secrets"])])
        harness.registry.put(harness.config, token: harness.saToken)
        let token = try await harness.token()
        let reply = try await GatewayHarness.send(.GET, "\(harness.connectionURL)/api/v1/namespaces/default/secrets",
                                                  headers: [("Authorization", "Bearer \(token)")])
        XCTAssertEqual(reply.status, 403)
        XCTAssertTrue(reply.body.contains("no-secrets"), reply.body)
        XCTAssertEqual(spy.requests.count, 0)
        let allowed = try await GatewayHarness.send(.GET, listURL, headers: [("Authorization", "Bearer \(token)")])
        XCTAssertEqual(allowed.status, 200)
    }

    /// A combining mark right after a '/' (`/%CC%81x`, decoded) makes "/\u{301}" one Character.
    /// The API server splits the path at the '/' byte, so the gateway must too: otherwise it
    /// reads resource `clusterrolebindings/\u{301}admin` (a deletecollection of an unknown
    /// resource) while the API server deletes the clusterrolebinding named "\u{301}admin" (RBAC
    /// names need only be path segments), and a rule on clusterrolebindings never sees it.
    func testACombiningMarkAfterASlashDoesNotHideTheResourceFromAnAccessRule() async throws {
        harness.config.access = AccessPolicy(rules: [
            AccessRule(name: "no-rbac-deletes", action: .deny, verbs: [.delete, .deletecollection], resources: ["clusterrolebindings"]),
            AccessRule(name: "no-secrets", action: .deny, resources: ["secrets"]),
        ])
        harness.registry.put(harness.config, token: harness.saToken)
        let token = try await harness.token()
        let auth = [("Authorization", "Bearer \(token)")]
        let delete = try await GatewayHarness.send(
            .DELETE, "\(harness.connectionURL)/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/%CC%81admin", headers: auth)
        XCTAssertEqual(delete.status, 403, delete.body)
        XCTAssertTrue(delete.body.contains("no-rbac-deletes"), delete.body)
        let secrets = try await GatewayHarness.send(.GET, "\(harness.connectionURL)/api/v1/namespaces/%CC%81default/secrets", headers: auth)
        XCTAssertEqual(secrets.status, 403, secrets.body)
        XCTAssertTrue(secrets.body.contains("no-secrets"), secrets.body)
        XCTAssertEqual(spy.requests.count, 0, "a request the rules refuse was forwarded")
    }

    /// Swift's `==` calls canonically equivalent strings equal ("\u{212A}" KELVIN SIGN is "K",
    /// "e\u{301}" is "é"); an OIDC provider and Kubernetes do not. A subject or group that only
    /// looks like an allowed one, as an IdP user might name a group, is refused.
    func testALookAlikeOfAnAllowedSubjectOrGroupIsRefused() async throws {
        harness.config.identity.allowedSubjects = ["Kelvin"]
        harness.config.identity.allowedGroups = ["Kube-Agents", "caf\u{e9}-team"]
        harness.registry.put(harness.config, token: harness.saToken)
        try await expectRefused(try await harness.token(subject: "\u{212A}elvin"), code: 403, "look-alike subject")
        try await expectRefused(try await harness.token(subject: "someone", groups: ["\u{212A}ube-Agents"]), code: 403, "look-alike group")
        try await expectRefused(try await harness.token(subject: "someone", groups: ["cafe\u{301}-team"]), code: 403,
                                "the same group in another Unicode normal form")
        XCTAssertEqual(spy.requests.count, 0, "a look-alike identity was forwarded")
        for token in [try await harness.token(subject: "Kelvin"), try await harness.token(subject: "someone", groups: ["caf\u{e9}-team"])] {
            let reply = try await GatewayHarness.send(.GET, listURL, headers: [("Authorization", "Bearer \(token)")])
            XCTAssertEqual(reply.status, 200, reply.body)
        }
    }

    /// Two agents whose subjects only look alike ("Kelvin", "\u{212A}elvin") get sessions of
    /// their own, even with the same `sid` (an IdP may name sessions per client, not per
    /// user): one is never recorded into the other's, here or in the gateway's session cache.
    func testAgentsWithLookAlikeSubjectsGetSessionsOfTheirOwn() async throws {
        for subject in ["Kelvin", "\u{212A}elvin"] {
            let token = try await harness.token(subject: subject, groups: ["agents"]) { $0.sessionID = "shared-sid" }
            let reply = try await GatewayHarness.send(.GET, listURL, headers: [("Authorization", "Bearer \(token)")])
            XCTAssertEqual(reply.status, 200, reply.body)
        }
        let sessions = try await harness.store.listSessions(SessionFilter())
        XCTAssertEqual(Set(sessions.map { Array($0.subject.utf8) }), [Array("Kelvin".utf8), Array("\u{212A}elvin".utf8)],
                       "one agent's exchange was recorded in the other's session")
    }

    func testStoreDownAnswers503AndForwardsNothingUnlessFailOpen() async throws {
        let token = try await harness.token()
        try await harness.store.close()
        let reply = try await GatewayHarness.send(.GET, listURL, headers: [("Authorization", "Bearer \(token)")])
        XCTAssertEqual(reply.status, 503, reply.body)
        XCTAssertEqual(try JSONValue(parsing: reply.body)["reason"]?.stringValue, "ServiceUnavailable")
        XCTAssertEqual(spy.requests.count, 0, "fail closed: nothing forwarded without a record")

        harness.config.recording.failureMode = .failOpen
        harness.registry.put(harness.config, token: harness.saToken)
        let open = try await GatewayHarness.send(.GET, listURL, headers: [("Authorization", "Bearer \(token)")])
        XCTAssertEqual(open.status, 200, "FailOpen forwards unrecorded")
        XCTAssertEqual(spy.requests.count, 1)
    }

    func testACachedVerifiedTokenIsStillRefusedWhenExpiredOrPresentedForAnotherIdentity() async throws {
        let token = try await harness.token { $0.lifetime = 120 }
        let verifier = harness.gateway.verifier
        let identity = harness.config.identity
        let now = Date()
        let agent = try await verifier.verify(token, identity: identity, now: now)
        let again = try await verifier.verify(token, identity: identity, now: now.addingTimeInterval(1))
        XCTAssertEqual(again, agent, "served from the cache")
        let lenient = try await verifier.verify(token, identity: identity, now: now.addingTimeInterval(120 + 50))
        XCTAssertEqual(lenient, agent, "exp 50 s ago is within the 60 s leeway")
        do {
            _ = try await verifier.verify(token, identity: identity, now: now.addingTimeInterval(120 + 70))
            XCTFail("an expired token verified from the cache")
        } catch let error as OIDCError {
            XCTAssertTrue("\(error)".contains("expired"), "\(error)")
        }
        var other = identity
        other.audiences = ["another-audience"]
        do {
            _ = try await verifier.verify(token, identity: other, now: now)
            XCTFail("a token verified for one audience was accepted for another")
        } catch let error as OIDCError {
            XCTAssertTrue("\(error)".contains("audience"), "\(error)")
        }
    }

    func testRotatedTokenIsUsedForTheNextRequest() async throws {
        let token = try await harness.token()
        _ = try await GatewayHarness.send(.GET, listURL, headers: [("Authorization", "Bearer \(token)")])
        harness.registry.put(harness.config, token: "rotated-token-0123456789")
        _ = try await GatewayHarness.send(.GET, listURL, headers: [("Authorization", "Bearer \(token)")])
        XCTAssertEqual(spy.requests.map { $0.header("Authorization") },
                       ["Bearer \(harness.saToken)", "Bearer rotated-token-0123456789"])
    }
}

/// GatewaySecurityTests with the session store on PostgreSQL.
final class GatewaySecurityOnPostgresTests: GatewaySecurityTests {
    override class var backend: GatewayStoreBackend { .postgres }

    override func testForgedAndInvalidTokensAreRefusedAndNeverForwarded() async throws { try await super.testForgedAndInvalidTokensAreRefusedAndNeverForwarded() }
    override func testUnknownKidRefetchesTheJWKSAtMostOncePerTenSeconds() async throws { try await super.testUnknownKidRefetchesTheJWKSAtMostOncePerTenSeconds() }
    override func testSmuggledIdentityHeadersAreStrippedAndTheConnectionCredentialInjected() async throws { try await super.testSmuggledIdentityHeadersAreStrippedAndTheConnectionCredentialInjected() }
    override func testPathTricksAndUnknownConnectionsAreRefusedBeforeForwarding() async throws { try await super.testPathTricksAndUnknownConnectionsAreRefusedBeforeForwarding() }
    override func testAccessDenyRuleRefusesWith403NamingTheRule() async throws { try await super.testAccessDenyRuleRefusesWith403NamingTheRule() }
    override func testACombiningMarkAfterASlashDoesNotHideTheResourceFromAnAccessRule() async throws {
        try await super.testACombiningMarkAfterASlashDoesNotHideTheResourceFromAnAccessRule()
    }
    override func testStoreDownAnswers503AndForwardsNothingUnlessFailOpen() async throws { try await super.testStoreDownAnswers503AndForwardsNothingUnlessFailOpen() }
    override func testALookAlikeOfAnAllowedSubjectOrGroupIsRefused() async throws { try await super.testALookAlikeOfAnAllowedSubjectOrGroupIsRefused() }
    override func testAgentsWithLookAlikeSubjectsGetSessionsOfTheirOwn() async throws { try await super.testAgentsWithLookAlikeSubjectsGetSessionsOfTheirOwn() }
    override func testRotatedTokenIsUsedForTheNextRequest() async throws { try await super.testRotatedTokenIsUsedForTheNextRequest() }
}
