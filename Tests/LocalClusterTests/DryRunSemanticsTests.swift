import Foundation
import KubeCore
import XCTest
@testable import LocalCluster

/// `?dryRun=All` on create, update and patch answers what the real write would answer —
/// the same errors and status codes — and stores nothing. Approval previews rely on it.
final class DryRunSemanticsTests: XCTestCase {
    var tc: TestCluster!
    let secrets = "/api/v1/namespaces/default/secrets"
    let configMaps = "/api/v1/namespaces/default/configmaps"
    let agc = "/apis/agentgate.io/v1alpha1/namespaces/default/agentconnections"

    override func setUp() async throws { tc = try await TestCluster() }
    override func tearDown() async throws { await tc.stop() }

    static func secret(_ name: String, _ value: String) -> JSONValue {
        ["apiVersion": "v1", "kind": "Secret", "metadata": ["name": .string(name)], "stringData": ["k": .string(value)]]
    }

    func testDryRunCreateOfATakenNameIsAlreadyExistsAndKeepsTheStoredObject() async throws {
        let created = await tc.send("POST", secrets, json: Self.secret("s", "original"))
        XCTAssertEqual(created.status, 201, created.message)
        let again = await tc.send("POST", "\(secrets)?dryRun=All", json: Self.secret("s", "replacement"))
        XCTAssertEqual(again.status, 409, "a dry run must not promise a create the real one would refuse")
        XCTAssertEqual(again.body["reason"], "AlreadyExists")
        XCTAssertEqual(again.message, "secrets \"s\" already exists")
        let stored = await tc.send("GET", "\(secrets)/s")
        XCTAssertEqual(stored.body[path: ["data", "k"]], .string(Data("original".utf8).base64EncodedString()))
    }

    func testDryRunCreateOfAFreeNameAnswers201AndStoresNothing() async throws {
        let reply = await tc.send("POST", "\(secrets)?dryRun=All", json: Self.secret("fresh", "v"))
        XCTAssertEqual(reply.status, 201, reply.message)
        XCTAssertEqual(reply.body[path: ["metadata", "name"]], "fresh")
        let stored = await tc.send("GET", "\(secrets)/fresh").status
        XCTAssertEqual(stored, 404)
    }

    func testUpdateOfAMissingObjectIsNotFoundWithAndWithoutDryRunWhereTheKindDoesNotCreateOnUpdate() async throws {
        let configMap: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "absent"], "data": ["k": "v"]]
        for query in ["?dryRun=All", ""] {
            let reply = await tc.send("PUT", "\(configMaps)/absent\(query)", json: configMap)
            XCTAssertEqual(reply.status, 404, "PUT\(query): configmaps do not allow create-on-update; \(reply.message)")
            XCTAssertEqual(reply.message, "configmaps \"absent\" not found")
        }
        var connection = TestCluster.connection("absent")
        connection.set("1", at: ["metadata", "resourceVersion"])
        let custom = await tc.send("PUT", "\(agc)/absent?dryRun=All", json: connection)
        XCTAssertEqual(custom.status, 404, "custom resources never create on update; \(custom.message)")
        let stored = await tc.send("GET", "\(configMaps)/absent").status
        XCTAssertEqual(stored, 404)
    }

    func testDryRunCreateOnUpdateAnswers201AndStoresNothing() async throws {
        let leases = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
        let lease: JSONValue = ["apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": ["name": "leader"],
                                "spec": ["holderIdentity": "a"]]
        let reply = await tc.send("PUT", "\(leases)/leader?dryRun=All", json: lease)
        XCTAssertEqual(reply.status, 201, "leases create on update, and a create answers 201; \(reply.message)")
        let stored = await tc.send("GET", "\(leases)/leader").status
        XCTAssertEqual(stored, 404)
    }

    func testDryRunUpdateWithAStaleResourceVersionIsConflict() async throws {
        let created = await tc.send("POST", configMaps, json: [
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "c"], "data": ["k": "v"],
        ]).body
        var current = created
        current.set(["k": "v2"], at: ["data"])
        let first = await tc.send("PUT", "\(configMaps)/c", json: current)
        XCTAssertEqual(first.status, 200, first.message)
        current.set(["k": "v3"], at: ["data"])
        let stale = await tc.send("PUT", "\(configMaps)/c?dryRun=All", json: current)
        XCTAssertEqual(stale.status, 409, stale.message)
        XCTAssertEqual(stale.body["reason"], "Conflict")
    }

    func testDryRunPatchOfAMissingObjectIsNotFoundAndApplyOfOneAnswers201() async throws {
        let merge = await tc.send("PATCH", "\(configMaps)/absent?dryRun=All", json: ["data": ["k": "v"]],
                                  contentType: "application/merge-patch+json")
        XCTAssertEqual(merge.status, 404, merge.message)
        let apply = await tc.send("PATCH", "\(agc)/applied?dryRun=All&fieldManager=test", json: TestCluster.connection("applied"),
                                  contentType: "application/apply-patch+yaml")
        XCTAssertEqual(apply.status, 201, "server-side apply of a missing object creates it; \(apply.message)")
        let stored = await tc.send("GET", "\(agc)/applied").status
        XCTAssertEqual(stored, 404)
    }
}
