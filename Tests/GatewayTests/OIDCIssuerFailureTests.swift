import AgentGateAPI
import AsyncHTTPClient
import Foundation
@testable import Gateway
import TestSupport
import XCTest

/// The gateway's token verification (``OIDCVerifier``, ``OIDCKeySet``) against a real OIDC
/// issuer in its own process (TestSupport's ``OIDCIssuerProcess``: joserfc, real JWTs), which
/// the tests stop, restart and rotate keys on. Time beyond the issuer's cache lifetime is
/// reached by passing the verifier a later `now` (the issuer, its HTTP answers and the
/// tokens are real; only the verifier's clock is moved).
final class OIDCIssuerFailureTests: XCTestCase {
    var issuer: OIDCIssuerProcess!
    let audience = "agentgate"

    override func setUp() async throws {
        if let reason = OIDCIssuerProcess.unavailableReason() { throw XCTSkip(reason) }
        issuer = try OIDCIssuerProcess()
    }

    override func tearDown() async throws {
        issuer?.stop()
        issuer = nil
    }

    func identity(_ issuerURL: String, audiences: [String]? = nil) -> AgentIdentity {
        AgentIdentity(issuer: issuerURL, audiences: audiences ?? [audience], allowedSubjects: ["agent"])
    }

    /// Claims for `count` distinct tokens (each its own `jti`, so none is served from the
    /// verified-token cache) valid from `start` for two hours.
    func claims(_ count: Int, issuer issuerURL: String, start: Date, audience: String? = nil) -> [[String: Any]] {
        (0..<count).map { _ in
            ["iss": issuerURL, "aud": audience ?? self.audience, "sub": "agent", "jti": UUID().uuidString,
             "iat": Int(start.timeIntervalSince1970), "exp": Int(start.timeIntervalSince1970) + 7200]
        }
    }

    func refusal(_ verifier: OIDCVerifier, _ token: String, _ identity: AgentIdentity, at now: Date) async -> String? {
        do {
            _ = try await verifier.verify(token, identity: identity, now: now)
            return nil
        } catch {
            return "\(error)"
        }
    }

    func testCachedKeysKeepVerifyingWhileTheIssuerIsDownUntilTheirCacheTimeThenAtMostOneFetchPerTenSeconds() async throws {
        try issuer.addKey("k1")
        try issuer.setMaxAge(120)
        try issuer.start()
        let verifier = OIDCVerifier(http: HTTPClient.shared)
        let id = identity(issuer.issuer())
        let t0 = Date()
        let tokens = try issuer.mint(kid: "k1", claims: claims(8, issuer: issuer.issuer(), start: t0))
        let keySet = verifier.keySet(for: id.issuer)

        let first = await refusal(verifier, tokens[0], id, at: t0)
        XCTAssertNil(first)
        issuer.stop()
        for (index, offset) in [60.0, 119].enumerated() {
            let answer = await refusal(verifier, tokens[1 + index], id, at: t0 + offset)
            XCTAssertNil(answer, "the issuer is down but the keys are within their 120 s cache time (+\(offset) s)")
        }
        let fetchesWhileCached = await keySet.fetchCount
        XCTAssertEqual(fetchesWhileCached, 1, "cached keys need no fetch")

        let expired = await refusal(verifier, tokens[3], id, at: t0 + 121)
        XCTAssertNotNil(expired, "past the cache time, with the issuer down, a token is refused")
        XCTAssertTrue(expired?.contains("past their cache time") == true && expired?.contains(id.issuer) == true,
                      "the refusal names the issuer and why: \(expired ?? "")")
        let remembered = await refusal(verifier, tokens[0], id, at: t0 + 121)
        XCTAssertNotNil(remembered, "a token verified earlier is not remembered past its key's cache time")
        let fetchesAfterExpiry = await keySet.fetchCount
        XCTAssertEqual(fetchesAfterExpiry, 2, "one fetch was tried when the keys expired")

        let soon = await refusal(verifier, tokens[4], id, at: t0 + 125)
        XCTAssertNotNil(soon)
        try issuer.start()
        let beforeTheWindow = await refusal(verifier, tokens[5], id, at: t0 + 130)
        XCTAssertNotNil(beforeTheWindow, "within 10 s of the failed fetch, no new fetch is made even though the issuer is back")
        let fetchesInWindow = await keySet.fetchCount
        XCTAssertEqual(fetchesInWindow, 2, "at most one fetch per 10 s")

        let back = await refusal(verifier, tokens[6], id, at: t0 + 131.5)
        XCTAssertNil(back, "10 s after the failed fetch, the restarted issuer's keys are fetched and verify")
        let fetchesAtTheEnd = await keySet.fetchCount
        XCTAssertEqual(fetchesAtTheEnd, 3)
        XCTAssertEqual(issuer.jwksRequests(), 2, "the issuer saw the two fetches it was up for")
    }

    func testAFloodOfUnknownKidsCostsTheIssuerAtMostOneJWKSFetchPerTenSeconds() async throws {
        try issuer.addKey("k1")
        try issuer.addKey("forger-only")
        try issuer.start()
        let verifier = OIDCVerifier(http: HTTPClient.shared)
        let id = identity(issuer.issuer())
        let t0 = Date()
        let valid = try issuer.mint(kid: "k1", claims: claims(1, issuer: issuer.issuer(), start: t0))[0]
        // Tokens signed by a key the issuer then withdraws: an unknown kid to the gateway.
        let forged = try issuer.mint(kid: "forger-only", claims: claims(25, issuer: issuer.issuer(), start: t0))
        try issuer.removeKey("forger-only")
        let firstAnswer = await refusal(verifier, valid, id, at: t0)
        XCTAssertNil(firstAnswer)
        for (second, token) in forged.enumerated() {
            let answer = await refusal(verifier, token, id, at: t0 + Double(second) + 0.5)
            XCTAssertTrue(answer?.contains("unknown signing key id forger-only") == true, answer ?? "accepted")
        }
        // 25 s of forged kids after the first fetch at t0: fetches at +10.5 and +20.5 only.
        let fetches = await verifier.keySet(for: id.issuer).fetchCount
        XCTAssertEqual(fetches, 3)
        XCTAssertEqual(issuer.jwksRequests(), 3)
    }

    func testNoRequestFailsAcrossAKeyRotation() async throws {
        try issuer.addKey("old")
        try issuer.setMaxAge(30)
        try issuer.start()
        let verifier = OIDCVerifier(http: HTTPClient.shared)
        let id = identity(issuer.issuer())
        let t0 = Date()
        // An agent asks every 5 s for 200 s, each time with a new token from the key the
        // issuer signs with at that moment; a long-lived token from the old key is reused too
        // while the issuer still publishes that key.
        let longLived = try issuer.mint(kid: "old", claims: claims(1, issuer: issuer.issuer(), start: t0))[0]
        var signing = "old"
        var failures: [String] = []
        for step in stride(from: 0.0, through: 200, by: 5) {
            switch step {
            case 40: try issuer.addKey("new")          // published...
            case 60: signing = "new"                   // ...20 s before it signs
            case 120: try issuer.removeKey("old")      // the old key's tokens are no longer used
            case 150: try issuer.addKey("newer", alg: "EdDSA"); signing = "newer"  // signs at once
            default: break
            }
            let token = try issuer.mint(kid: signing, claims: claims(1, issuer: issuer.issuer(), start: t0))[0]
            if let answer = await refusal(verifier, token, id, at: t0 + step) {
                failures.append("+\(step) s (\(signing)): \(answer)")
            }
            if step < 120, let answer = await refusal(verifier, longLived, id, at: t0 + step) {
                failures.append("+\(step) s (long-lived old token): \(answer)")
            }
        }
        XCTAssertEqual(failures, [], "no request fails across the rotation")
        let removed = await refusal(verifier, try issuer.mint(kid: "new", claims: claims(1, issuer: issuer.issuer(), start: t0))[0],
                                    id, at: t0 + 201)
        XCTAssertNil(removed)
        let fetches = await verifier.keySet(for: id.issuer).fetchCount
        XCTAssertLessThanOrEqual(fetches, 10, "about one fetch per 30 s cache time, plus the new kid")
    }

    func testATokenWhoseKidBelongsToAnotherIssuerIsRefused() async throws {
        let other = try OIDCIssuerProcess()
        defer { other.stop() }
        try issuer.addKey("shared")
        try other.addKey("shared")
        try other.addKey("other-only")
        try issuer.start()
        try other.start()
        let verifier = OIDCVerifier(http: HTTPClient.shared)
        let ours = identity(issuer.issuer())
        let theirs = identity(other.issuer())
        let t0 = Date()
        // The verifier knows both issuers' keys.
        let theirToken = try other.mint(kid: "shared", claims: claims(1, issuer: other.issuer(), start: t0))[0]
        let theirs1 = await refusal(verifier, theirToken, theirs, at: t0)
        XCTAssertNil(theirs1)
        let ourToken = try issuer.mint(kid: "shared", claims: claims(1, issuer: issuer.issuer(), start: t0))[0]
        let ours1 = await refusal(verifier, ourToken, ours, at: t0)
        XCTAssertNil(ours1)

        // The other issuer's keys signing tokens that claim to be ours.
        let kidOnlyThere = try other.mint(kid: "other-only", claims: claims(1, issuer: issuer.issuer(), start: t0))[0]
        let answer1 = await refusal(verifier, kidOnlyThere, ours, at: t0 + 11)
        XCTAssertTrue(answer1?.contains("unknown signing key id other-only") == true, answer1 ?? "accepted")
        let sameKidOtherKey = try other.mint(kid: "shared", claims: claims(1, issuer: issuer.issuer(), start: t0))[0]
        let answer2 = await refusal(verifier, sameKidOtherKey, ours, at: t0 + 11)
        XCTAssertTrue(answer2?.contains("signature does not verify") == true, answer2 ?? "accepted")
        // Its own tokens on our connection.
        let answer3 = await refusal(verifier, theirToken, ours, at: t0 + 11)
        XCTAssertNotNil(answer3)
    }

    func testLookAlikeAudiencesDoNotShareAVerifiedToken() async throws {
        try issuer.addKey("k1")
        try issuer.start()
        let verifier = OIDCVerifier(http: HTTPClient.shared)
        // `é` precomposed and `e` + U+0301: equal to Swift's `==`, different to an IdP.
        let composed = identity(issuer.issuer(), audiences: ["agent-\u{e9}"])
        let decomposed = identity(issuer.issuer(), audiences: ["agent-e\u{301}"])
        XCTAssertEqual(composed, decomposed, "the premise: Swift's == sees one identity")
        let t0 = Date()
        let token = try issuer.mint(kid: "k1", claims: claims(1, issuer: issuer.issuer(), start: t0, audience: "agent-\u{e9}"))[0]
        let forComposed = await refusal(verifier, token, composed, at: t0)
        XCTAssertNil(forComposed)
        let forDecomposed = await refusal(verifier, token, decomposed, at: t0)
        XCTAssertTrue(forDecomposed?.contains("audience") == true, "a token for agent-\\u{e9} is not one for agent-e\\u{301}: \(forDecomposed ?? "accepted")")
    }

    func testLookAlikeIssuersNeverShareKeys() async throws {
        // Two tenants of one issuer whose paths differ only by normalization, each with its own
        // key named k1: a multi-tenant IdP where an attacker may create the look-alike tenant.
        let composed = "t/\u{e9}", decomposed = "t/e\u{301}"
        try issuer.addKey("k1", tenant: composed)
        try issuer.addKey("k1", tenant: decomposed)
        try issuer.start()
        let verifier = OIDCVerifier(http: HTTPClient.shared)
        let victim = identity(issuer.issuer(tenant: composed))
        let attacker = identity(issuer.issuer(tenant: decomposed))
        let t0 = Date()
        let attackerOwn = try issuer.mint(kid: "k1", claims: claims(1, issuer: attacker.issuer, start: t0), tenant: decomposed)[0]
        let attackerAnswer = await refusal(verifier, attackerOwn, attacker, at: t0)
        try XCTSkipIf(attackerAnswer?.contains("cannot reach") == true || attackerAnswer?.contains("not valid") == true,
                      "this HTTP client cannot fetch a non-ASCII issuer URL: \(attackerAnswer ?? "")")
        XCTAssertNil(attackerAnswer, "the attacker's tenant verifies its own tokens")
        // The attacker's key signs a token naming the victim's issuer bytes.
        let forged = try issuer.mint(kid: "k1", claims: claims(1, issuer: victim.issuer, start: t0), tenant: decomposed)[0]
        let answer = await refusal(verifier, forged, victim, at: t0)
        XCTAssertNotNil(answer, "the victim's connection does not use the look-alike issuer's keys")
        let victimOwn = try issuer.mint(kid: "k1", claims: claims(1, issuer: victim.issuer, start: t0), tenant: composed)[0]
        let victimAnswer = await refusal(verifier, victimOwn, victim, at: t0)
        XCTAssertNil(victimAnswer)
    }
}
