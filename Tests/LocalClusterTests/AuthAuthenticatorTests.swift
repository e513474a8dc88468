import Foundation
import XCTest
@testable import LocalCluster

/// Bearer-token authentication: the admin token, ServiceAccount tokens bound to a live SA,
/// and everything else unauthenticated.
final class AuthAuthenticatorTests: XCTestCase {
    /// The ServiceAccounts "in the store": (namespace/name) → uid; tests delete and recreate them.
    private final class ServiceAccounts: @unchecked Sendable {
        private let lock = NSLock()
        private var uids: [String: String] = [:]
        subscript(namespace: String, name: String) -> String? {
            get { lock.lock(); defer { lock.unlock() }; return uids["\(namespace)/\(name)"] }
            set { lock.lock(); uids["\(namespace)/\(name)"] = newValue; lock.unlock() }
        }
    }

    private let serviceAccounts = ServiceAccounts()

    private func makeAuthenticator(in directory: URL? = nil) throws -> Authenticator {
        let accounts = serviceAccounts
        return Authenticator(adminToken: try Authenticator.loadOrCreateAdminToken(in: directory),
                             tokenIssuer: try ServiceAccountTokenIssuer.loadOrCreate(in: directory),
                             serviceAccountUID: { accounts[$0, $1] })
    }

    func testAdminTokenAuthenticatesAsKubernetesAdmin() throws {
        let authenticator = try makeAuthenticator()
        let user = authenticator.authenticate(authorizationHeader: "Bearer \(authenticator.adminToken)")
        XCTAssertEqual(user?.username, "kubernetes-admin")
        XCTAssertEqual(user?.groups, ["system:masters", "system:authenticated"])
        XCTAssertEqual(authenticator.authenticate(authorizationHeader: "bearer \(authenticator.adminToken)"), user)
    }

    func testServiceAccountTokenAuthenticatesAsTheServiceAccount() throws {
        let authenticator = try makeAuthenticator()
        serviceAccounts["agents", "gateway"] = "uid-1"
        let (token, _) = try authenticator.tokenIssuer.issue(namespace: "agents", name: "gateway", uid: "uid-1")
        let user = authenticator.authenticate(bearerToken: token)
        XCTAssertEqual(user?.username, "system:serviceaccount:agents:gateway")
        XCTAssertEqual(user?.uid, "uid-1")
        XCTAssertEqual(user?.groups, ["system:serviceaccounts", "system:serviceaccounts:agents", "system:authenticated"])
        XCTAssertEqual(user?.extra["authentication.kubernetes.io/credential-id"]?.first?.hasPrefix("JTI="), true)
        XCTAssertEqual(user.flatMap(\.serviceAccount)?.namespace, "agents")
    }

    func testTokenStopsWorkingWhenServiceAccountIsDeletedOrRecreated() throws {
        let authenticator = try makeAuthenticator()
        serviceAccounts["agents", "gateway"] = "uid-1"
        let (token, _) = try authenticator.tokenIssuer.issue(namespace: "agents", name: "gateway", uid: "uid-1")
        XCTAssertNotNil(authenticator.authenticate(bearerToken: token))
        serviceAccounts["agents", "gateway"] = nil
        XCTAssertNil(authenticator.authenticate(bearerToken: token), "deleted SA")
        serviceAccounts["agents", "gateway"] = "uid-2"
        XCTAssertNil(authenticator.authenticate(bearerToken: token), "recreated SA has a new uid")
    }

    func testExpiredTokenAndForeignAudienceAreUnauthenticated() throws {
        let authenticator = try makeAuthenticator()
        serviceAccounts["ns", "sa"] = "u"
        let issued = Date(timeIntervalSinceNow: -7200)
        let (expired, _) = try authenticator.tokenIssuer.issue(namespace: "ns", name: "sa", uid: "u",
                                                               expirationSeconds: 600, now: issued)
        XCTAssertNil(authenticator.authenticate(bearerToken: expired))
        let (vaultOnly, _) = try authenticator.tokenIssuer.issue(namespace: "ns", name: "sa", uid: "u", audiences: ["vault"])
        XCTAssertNil(authenticator.authenticate(bearerToken: vaultOnly), "kube-apiserver rejects tokens for other audiences")
    }

    func testMissingOrMalformedCredentialsAreUnauthenticated() throws {
        let authenticator = try makeAuthenticator()
        for header in [nil, "", "Bearer", "Bearer ", "Basic YWRtaW46YWRtaW4=", "Bearer wrong",
                       "Token \(authenticator.adminToken)", "Bearer \(authenticator.adminToken)x"] {
            XCTAssertNil(authenticator.authenticate(authorizationHeader: header), "\(header ?? "nil")")
        }
    }

    func testAdminTokenAndSigningKeyPersistAcrossRestarts() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("auth-authn-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        serviceAccounts["ns", "sa"] = "u"
        let first = try makeAuthenticator(in: dir)
        let (token, _) = try first.tokenIssuer.issue(namespace: "ns", name: "sa", uid: "u")
        let second = try makeAuthenticator(in: dir)
        XCTAssertEqual(first.adminToken, second.adminToken)
        XCTAssertGreaterThanOrEqual(first.adminToken.count, 43)
        XCTAssertNotNil(second.authenticate(bearerToken: token))
        XCTAssertNotEqual(try makeAuthenticator().adminToken, first.adminToken)
        let mode = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("admin.token").path)[.posixPermissions]
        XCTAssertEqual((mode as? NSNumber)?.intValue, 0o600)
    }
}
