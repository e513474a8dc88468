import AgentGateAPI
import Foundation
import KubeClient
import KubeCore
import TestSupport
import XCTest

/// CRUD, patches, apply, status, TokenRequest and typed errors against a real API server.
final class ClientOperationTests: XCTestCase {
    func testConfigMapCreateGetUpdateDeleteTyped() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            let created = try await client.create(ConfigMap(metadata: ObjectMeta(name: "settings", namespace: "default", labels: ["app": "x"]),
                                                            data: ["a": "1"]))
            XCTAssertNotNil(created.metadata.uid)
            var fetched = try await client.get(ConfigMap.self, name: "settings", namespace: "default")
            XCTAssertEqual(fetched.data, ["a": "1"])
            fetched.data?["b"] = "2"
            let updated = try await client.update(fetched)
            XCTAssertEqual(updated.data, ["a": "1", "b": "2"])
            XCTAssertNotEqual(updated.metadata.resourceVersion, created.metadata.resourceVersion)
            // A stale resourceVersion is a conflict.
            await assertKubeError(try await client.update(fetched)) { if case .conflict = $0 { return true } else { return false } }
            let listed = try await client.list(ConfigMap.self, namespace: "default", options: ListOptions(labelSelector: "app=x"))
            XCTAssertEqual(listed.items.map(\.metadata.name), ["settings"])
            try await client.delete(ConfigMap.self, name: "settings", namespace: "default")
            await assertKubeError(try await client.get(ConfigMap.self, name: "settings", namespace: "default")) {
                if case .notFound = $0 { return true } else { return false }
            }
        }
    }

    func testAgentConnectionCRUDUntypedAndTyped() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            let created = try await client.create(ClusterFixture.connection("agent-a"))
            XCTAssertEqual(created.spec.serviceAccountName, "agent-sa")
            let type = AgentConnection.resourceType
            let untyped = try await client.get(type, name: "agent-a", namespace: "default")
            XCTAssertEqual(untyped[path: ["spec", "identity", "issuer"]], "https://issuer.example.com")
            var changed = untyped
            changed.set(["other"], at: ["spec", "identity", "audiences"])
            let replaced = try await client.update(type, changed)
            XCTAssertEqual(replaced[path: ["spec", "identity", "audiences"]], ["other"])
            let all = try await client.list(AgentConnection.self)
            XCTAssertEqual(all.items.map(\.metadata.name), ["agent-a"])
            try await client.delete(type, name: "agent-a", namespace: "default", propagationPolicy: .foreground)
            let after = try await client.list(type, namespace: "default")
            XCTAssertTrue(after.items.allSatisfy { $0[path: ["metadata", "deletionTimestamp"]] != nil }, "gone or being deleted: \(after.items)")
        }
    }

    func testListFollowsContinueTokensTransparently() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            for index in 0..<25 {
                _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: String(format: "cm-%02d", index), namespace: "default",
                                                                           labels: ["batch": "p"])))
            }
            let options = ListOptions(labelSelector: "batch=p", limit: 10)
            let first = try await client.listPage(.configMaps, namespace: "default", options: options)
            XCTAssertEqual(first.items.count, 10)
            XCTAssertNotNil(first.continueToken, "a page of 10 out of 25 has a continue token")
            XCTAssertEqual(first.remainingItemCount, 15)
            let all = try await client.list(ConfigMap.self, namespace: "default", options: options)
            XCTAssertEqual(all.items.compactMap(\.metadata.name), (0..<25).map { String(format: "cm-%02d", $0) })
            XCTAssertEqual(all.resourceVersion, first.resourceVersion)
        }
    }

    func testDeleteWithFailedPreconditionIsAConflictAndKeepsTheObject() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            let created = try await client.create(ConfigMap(metadata: ObjectMeta(name: "guarded", namespace: "default")))
            await assertKubeError(try await client.delete(ConfigMap.self, name: "guarded", namespace: "default",
                                                          preconditions: Preconditions(uid: "not-the-uid"))) {
                if case .conflict(let status) = $0 { return status.message?.contains("Precondition failed") ?? false } else { return false }
            }
            await assertKubeError(try await client.delete(ConfigMap.self, name: "guarded", namespace: "default",
                                                          preconditions: Preconditions(resourceVersion: "1"))) {
                if case .conflict = $0 { return true } else { return false }
            }
            _ = try await client.get(ConfigMap.self, name: "guarded", namespace: "default")
            try await client.delete(ConfigMap.self, name: "guarded", namespace: "default",
                                    preconditions: Preconditions(uid: created.metadata.uid, resourceVersion: created.metadata.resourceVersion))
        }
    }

    func testTypedErrorsFor404_409_422_403_401WithTheServersMessage() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            let missing = await assertKubeError(try await client.get(ConfigMap.self, name: "nope", namespace: "default")) {
                if case .notFound = $0 { return true } else { return false }
            }
            XCTAssertEqual(missing?.description, #"configmaps "nope" not found"#)
            XCTAssertEqual(missing?.code, 404)

            _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "twice", namespace: "default")))
            let exists = await assertKubeError(try await client.create(ConfigMap(metadata: ObjectMeta(name: "twice", namespace: "default")))) {
                if case .alreadyExists = $0 { return true } else { return false }
            }
            XCTAssertEqual(exists?.description, #"configmaps "twice" already exists"#)

            var invalid = ClusterFixture.connection("bad")
            invalid.spec.identity.issuer = "not a url"
            invalid.spec.serviceAccountName = ""
            let rejected = await assertKubeError(try await client.create(invalid)) {
                if case .invalid(_, let causes) = $0 { return !causes.isEmpty } else { return false }
            }
            if case .invalid(let status, let causes)? = rejected {
                XCTAssertTrue(causes.contains { $0.field == "spec.serviceAccountName" }, "\(causes)")
                XCTAssertTrue(status.message?.contains("AgentConnection.agentgate.io \"bad\" is invalid") ?? false, status.message ?? "")
            }

            _ = try await client.create(ServiceAccount(metadata: ObjectMeta(name: "nobody", namespace: "default")))
            let token = try await client.createToken(namespace: "default", serviceAccount: "nobody", audiences: [], expirationSeconds: 600)
            let unprivileged = try fixture.client(token: token.token)
            let forbidden = await assertKubeError(try await unprivileged.list(ConfigMap.self, namespace: "default")) {
                if case .forbidden = $0 { return true } else { return false }
            }
            XCTAssertTrue(forbidden?.description.contains("system:serviceaccount:default:nobody") ?? false, forbidden?.description ?? "")

            let anonymous = try fixture.client(token: "garbage")
            await assertKubeError(try await anonymous.list(ConfigMap.self, namespace: "default")) {
                if case .unauthorized = $0 { return true } else { return false }
            }
        }
    }

    func testErrorDecodingOfStatusAndNonStatusBodies() {
        let tooMany = KubeError.fromResponse(code: 429, body: Array(#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"slow down","reason":"TooManyRequests","code":429}"#.utf8),
                                             retryAfterHeader: "3")
        guard case .tooManyRequests(_, let after) = tooMany else { return XCTFail("\(tooMany)") }
        XCTAssertEqual(after, .seconds(3))
        XCTAssertEqual(tooMany.description, "slow down")
        let proxy = KubeError.fromResponse(code: 502, body: Array("<html>bad gateway</html>".utf8))
        guard case .serverError(let status) = proxy else { return XCTFail("\(proxy)") }
        XCTAssertEqual(status.code, 502)
        XCTAssertTrue(proxy.description.contains("bad gateway"))
        guard case .gone = KubeError.fromStatus(Status(message: "too old", reason: "Expired", code: 410)) else { return XCTFail() }
    }

    func testMergePatchFromTypedObjectWithNilFieldDoesNotDeleteIt() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            var connection = ClusterFixture.connection("patched")
            connection.spec.credentials = CredentialPolicy(tokenTTL: "1h", rotateBefore: "10m")
            connection.spec.recordingPolicyRef = LocalObjectReference(name: "keep-me")
            _ = try await client.create(connection)

            // The patch object sets only the audiences; credentials and recordingPolicyRef are nil in Swift.
            var patch = ClusterFixture.connection("patched")
            patch.spec.identity.audiences = ["new-audience"]
            XCTAssertNil(patch.spec.credentials)
            let body = try JSONValue(encoding: patch)
            XCTAssertNil(body[path: ["spec", "credentials"]], "nil is absent from the encoded body, not null")
            let patched = try await client.mergePatch(patch)
            XCTAssertEqual(patched.spec.identity.audiences, ["new-audience"])
            XCTAssertEqual(patched.spec.credentials?.tokenTTL, "1h", "a nil field in the patch object must not delete the field")
            XCTAssertEqual(patched.spec.recordingPolicyRef?.name, "keep-me")

            // An explicit null does delete, proving the server would have deleted on `null`.
            let cleared = try await client.mergePatch(AgentConnection.self, name: "patched", namespace: "default",
                                                      ["spec": ["recordingPolicyRef": nil]])
            XCTAssertNil(cleared.spec.recordingPolicyRef)
            XCTAssertEqual(cleared.spec.credentials?.tokenTTL, "1h")
        }
    }

    func testJSONPatchAppliesOperationsAndFailedTestIsInvalid() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "jp", namespace: "default"), data: ["a": "1"]))
            let patched = try await client.jsonPatch(ConfigMap.self, name: "jp", namespace: "default", [
                ["op": "test", "path": "/data/a", "value": "1"],
                ["op": "add", "path": "/data/b", "value": "2"],
                ["op": "remove", "path": "/data/a"],
            ])
            XCTAssertEqual(patched.data, ["b": "2"])
            await assertKubeError(try await client.jsonPatch(ConfigMap.self, name: "jp", namespace: "default",
                                                             [["op": "test", "path": "/data/b", "value": "wrong"]])) {
                if case .invalid = $0 { return true } else { return false }
            }
        }
    }

    func testServerSideApplyConflictThenForceTakesOwnership() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            let first: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": ["name": "applied", "namespace": "default"], "data": ["owner": "alice"]]
            let applied = try await client.apply(.configMaps, first, fieldManager: "alice")
            XCTAssertEqual(applied[path: ["data", "owner"]], "alice")
            var second = first
            second.set("bob", at: ["data", "owner"])
            let conflict = await assertKubeError(try await client.apply(.configMaps, second, fieldManager: "bob")) {
                if case .conflict = $0 { return true } else { return false }
            }
            XCTAssertTrue(conflict?.description.contains("alice") ?? false, conflict?.description ?? "")
            let forced = try await client.apply(.configMaps, second, fieldManager: "bob", force: true)
            XCTAssertEqual(forced[path: ["data", "owner"]], "bob")
            let managers = forced[path: ["metadata", "managedFields"]]?.arrayValue?.compactMap { $0["manager"]?.stringValue } ?? []
            XCTAssertTrue(managers.contains("bob"), "\(managers)")
            // Typed apply takes the same path.
            let typed = try await client.apply(ConfigMap(metadata: ObjectMeta(name: "typed-apply", namespace: "default"), data: ["k": "v"]),
                                               fieldManager: "carol")
            XCTAssertEqual(typed.data, ["k": "v"])
        }
    }

    func testStatusUpdateChangesOnlyStatus() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            var connection = try await client.create(ClusterFixture.connection("with-status"))
            connection.status = AgentConnectionStatus(observedGeneration: 1, endpoint: "https://gw/c/default/with-status")
            connection.spec.serviceAccountName = "ignored-by-status"
            let updated = try await client.updateStatus(connection)
            XCTAssertEqual(updated.status?.endpoint, "https://gw/c/default/with-status")
            XCTAssertEqual(updated.spec.serviceAccountName, "agent-sa", "a /status write leaves spec alone")
            // A plain update does not change status.
            var again = updated
            again.status?.endpoint = "https://elsewhere"
            again.metadata.labels = ["touched": "yes"]
            let plain = try await client.update(again)
            XCTAssertEqual(plain.status?.endpoint, "https://gw/c/default/with-status")
            XCTAssertEqual(plain.metadata.labels, ["touched": "yes"])
            let viaSubresource = try await client.get(AgentConnection.resourceType, name: "with-status", namespace: "default", subresource: "status")
            XCTAssertEqual(viaSubresource[path: ["status", "endpoint"]], "https://gw/c/default/with-status")
        }
    }

    func testTokenRequestIssuesATokenTheServerAccepts() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            _ = try await client.create(ServiceAccount(metadata: ObjectMeta(name: "robot", namespace: "default")))
            let issued = try await client.createToken(namespace: "default", serviceAccount: "robot", audiences: [], expirationSeconds: 3600)
            XCTAssertEqual(issued.token.split(separator: ".").count, 3, "a JWT")
            XCTAssertGreaterThan(issued.expirationTimestamp.timeIntervalSinceNow, 3000)
            XCTAssertLessThan(issued.expirationTimestamp.timeIntervalSinceNow, 3700)
            // The token authenticates (403, not 401: it is the ServiceAccount, without RBAC).
            let robot = try fixture.client(token: issued.token)
            await assertKubeError(try await robot.list(.secrets, namespace: "default")) {
                if case .forbidden = $0 { return true } else { return false }
            }
            await assertKubeError(try await client.createToken(namespace: "default", serviceAccount: "ghost")) {
                if case .notFound = $0 { return true } else { return false }
            }
        }
    }
}
