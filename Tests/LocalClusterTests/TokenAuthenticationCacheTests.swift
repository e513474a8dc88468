import Foundation
import KubeCore
import TestSupport
import XCTest
@testable import LocalCluster

/// ServiceAccount token verifications are cached (10 s, as kube-apiserver's
/// `--token-success-cache-ttl`), yet a revoked or expired token is refused within that time:
/// the ServiceAccount and any bound object are checked on every request, and no entry
/// outlives the token's expiry.
final class TokenAuthenticationCacheTests: XCTestCase {
    func testVerificationIsCachedForTheTTLAndNeverPastTheTokensExpiry() throws {
        let issuer = try ServiceAccountTokenIssuer.loadOrCreate(in: nil)
        let cache = TokenVerificationCache(ttl: 10)
        let start = Date()
        let token = try issuer.issue(namespace: "ns", name: "sa", uid: "u", now: start).token
        let verifications = Counter()
        func lookup(at now: Date) throws -> ServiceAccountTokenClaims {
            try cache.claims(for: token, now: now, leeway: ServiceAccountTokenIssuer.leeway) {
                verifications.increment()
                return try issuer.verify(token, now: now)
            }
        }
        _ = try lookup(at: start)
        _ = try lookup(at: start.addingTimeInterval(9))
        XCTAssertEqual(verifications.value, 1, "a second use within 10 s is not verified again")
        _ = try lookup(at: start.addingTimeInterval(11))
        XCTAssertEqual(verifications.value, 2, "after 10 s the token is verified again")

        // Verified 2 s before it expires (exp + leeway): 3 s later it is refused, not served from the cache.
        let expiry = Date(timeIntervalSince1970: TimeInterval(try issuer.verify(token, now: start).exp) + ServiceAccountTokenIssuer.leeway)
        _ = try lookup(at: expiry.addingTimeInterval(-2))
        XCTAssertThrowsError(try lookup(at: expiry.addingTimeInterval(1)))
    }

    func testRevokedTokensAreRefusedAtOnceThroughTheServer() async throws {
        let tc = try await TestCluster(useTLS: true)
        defer { Task { await tc.stop() } }
        let kubeconfig = try tc.adminKubeconfig()
        func kubectl(_ arguments: String...) throws -> ProcessResult {
            try ProcessRunner.run("kubectl", ["--kubeconfig", kubeconfig] + arguments, timeout: 60)
        }
        XCTAssertEqual(try kubectl("create", "serviceaccount", "reader").status, 0)
        XCTAssertEqual(try kubectl("create", "secret", "generic", "binding").status, 0)
        XCTAssertEqual(try kubectl("create", "clusterrolebinding", "reader-view", "--clusterrole=cluster-admin",
                                   "--serviceaccount=default:reader").status, 0)
        let plain = try kubectl("create", "token", "reader").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let bound = try kubectl("create", "token", "reader", "--bound-object-kind=Secret", "--bound-object-name=binding")
        XCTAssertEqual(bound.status, 0, bound.output)
        let boundToken = bound.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for token in [plain, boundToken] {
            let awaited = await tc.send("GET", "/api/v1/namespaces/default/configmaps", token: token).status
            XCTAssertEqual(awaited, 200, "the token works (and its verification is now cached)")
        }

        XCTAssertEqual(try kubectl("delete", "secret", "binding").status, 0)
        let afterSecret = await tc.send("GET", "/api/v1/namespaces/default/configmaps", token: boundToken).status
        XCTAssertEqual(afterSecret, 401, "a token bound to a deleted Secret is refused within the cache time")
        let plainStill = await tc.send("GET", "/api/v1/namespaces/default/configmaps", token: plain).status
        XCTAssertEqual(plainStill, 200)

        XCTAssertEqual(try kubectl("delete", "serviceaccount", "reader").status, 0)
        let afterAccount = await tc.send("GET", "/api/v1/namespaces/default/configmaps", token: plain).status
        XCTAssertEqual(afterAccount, 401, "a token of a deleted ServiceAccount is refused within the cache time")
    }
}

private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
    func increment() { lock.lock(); count += 1; lock.unlock() }
}
