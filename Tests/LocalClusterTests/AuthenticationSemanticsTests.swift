import Foundation
import KubeCore
import XCTest
@testable import LocalCluster

/// API-SEMANTICS.md items 15–16: bearer tokens, TokenRequest, RBAC.
final class AuthenticationSemanticsTests: XCTestCase {
    var tc: TestCluster!

    override func setUp() async throws { tc = try await TestCluster() }
    override func tearDown() async throws { await tc.stop() }

    func makeServiceAccountWithReadOnlyConfigMaps() async -> String {
        _ = await tc.send("POST", "/api/v1/namespaces/default/serviceaccounts",
                          json: ["apiVersion": "v1", "kind": "ServiceAccount", "metadata": ["name": "reader"]])
        _ = await tc.send("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles", json: [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": ["name": "cm-reader"],
            "rules": [["apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]]],
        ])
        _ = await tc.send("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", json: [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": ["name": "reader"],
            "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"],
            "subjects": [["kind": "ServiceAccount", "name": "reader", "namespace": "default"]],
        ])
        let token = await tc.send("POST", "/api/v1/namespaces/default/serviceaccounts/reader/token",
                                  json: ["apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                         "spec": ["expirationSeconds": 3600]])
        XCTAssertEqual(token.status, 201, token.message)
        return token.body[path: ["status", "token"]]?.stringValue ?? ""
    }

    func testUnauthenticatedRequestsGet401() async throws {
        let reply = await tc.send("GET", "/api/v1/namespaces", token: "")
        XCTAssertEqual(reply.status, 401)
        XCTAssertEqual(reply.body["reason"], "Unauthorized")
        let awaited1 = await tc.send("GET", "/api/v1/namespaces", token: "not-a-token").status
        XCTAssertEqual(awaited1, 401)
    }

    func testServiceAccountTokenCanDoWhatItsRoleAllowsAndNothingMore() async throws {
        let token = await makeServiceAccountWithReadOnlyConfigMaps()
        let awaited2 = await tc.send("GET", "/api/v1/namespaces/default/configmaps", token: token).status
        XCTAssertEqual(awaited2, 200)
        let denied = await tc.send("GET", "/api/v1/namespaces/default/secrets", token: token)
        XCTAssertEqual(denied.status, 403)
        XCTAssertEqual(denied.message, "secrets is forbidden: User \"system:serviceaccount:default:reader\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\"")
        let write = await tc.send("POST", "/api/v1/namespaces/default/configmaps",
                                  json: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "x"]], token: token)
        XCTAssertEqual(write.status, 403)
        let awaited3 = await tc.send("GET", "/api/v1/namespaces/kube-system/configmaps", token: token).status
        XCTAssertEqual(awaited3, 403)
    }

    func testTokenStopsWorkingWhenItsServiceAccountIsDeletedOrItExpires() async throws {
        let token = await makeServiceAccountWithReadOnlyConfigMaps()
        let awaited4 = await tc.send("GET", "/api/v1/namespaces/default/configmaps", token: token).status
        XCTAssertEqual(awaited4, 200)
        _ = await tc.send("DELETE", "/api/v1/namespaces/default/serviceaccounts/reader")
        _ = await tc.send("POST", "/api/v1/namespaces/default/serviceaccounts",
                          json: ["apiVersion": "v1", "kind": "ServiceAccount", "metadata": ["name": "reader"]])
        let awaited5 = await tc.send("GET", "/api/v1/namespaces/default/configmaps", token: token).status
        XCTAssertEqual(awaited5, 401,
                       "a token bound to a deleted ServiceAccount's uid is rejected even after the name is reused")

        let uid = await tc.send("GET", "/api/v1/namespaces/default/serviceaccounts/reader").body[path: ["metadata", "uid"]]!.stringValue!
        let expired = try tc.cluster.tokenIssuer.issue(namespace: "default", name: "reader", uid: uid,
                                                       expirationSeconds: 600, now: Date().addingTimeInterval(-3600)).token
        let awaited6 = await tc.send("GET", "/api/v1/namespaces/default/configmaps", token: expired).status
        XCTAssertEqual(awaited6, 401)
    }

    func testTokenRequestBelowTenMinutesIsInvalid() async throws {
        _ = await tc.send("POST", "/api/v1/namespaces/default/serviceaccounts",
                          json: ["apiVersion": "v1", "kind": "ServiceAccount", "metadata": ["name": "short"]])
        let reply = await tc.send("POST", "/api/v1/namespaces/default/serviceaccounts/short/token",
                                  json: ["apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": ["expirationSeconds": 60]])
        XCTAssertEqual(reply.status, 422)
        XCTAssertTrue(reply.message.contains("spec.expirationSeconds"), reply.message)
    }
}
