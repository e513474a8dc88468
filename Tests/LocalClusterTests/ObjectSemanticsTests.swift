import Foundation
import KubeCore
import TestSupport
import XCTest
@testable import LocalCluster

/// API-SEMANTICS.md items 1–9: what create, update, status, delete, patch and validation do.
final class ObjectSemanticsTests: XCTestCase {
    var tc: TestCluster!
    let agc = "/apis/agentgate.io/v1alpha1/namespaces/default/agentconnections"

    override func setUp() async throws { tc = try await TestCluster() }
    override func tearDown() async throws { await tc.stop() }

    // 1
    func testCreateSetsServerOwnedMetadataAndDropsStatus() async throws {
        var object = TestCluster.connection("a")
        object["status"] = ["endpoint": "https://forged"]
        let reply = await tc.send("POST", agc, json: object)
        XCTAssertEqual(reply.status, 201, reply.message)
        let metadata = reply.body["metadata"]!
        XCTAssertEqual(metadata["uid"]?.stringValue?.count, 36)
        XCTAssertNotNil(KubeTime.parse(metadata["creationTimestamp"]?.stringValue ?? ""))
        XCTAssertNotNil(Int(metadata["resourceVersion"]?.stringValue ?? ""))
        XCTAssertEqual(metadata["generation"], .int(1))
        XCTAssertNil(reply.body["status"], "status is dropped on create when the kind has a status subresource")
    }

    func testSecretStringDataIsFoldedIntoDataAndNeverStored() async throws {
        let secrets = "/api/v1/namespaces/default/secrets"
        let created = await tc.send("POST", secrets, json: [
            "apiVersion": "v1", "kind": "Secret", "metadata": ["name": "s"],
            "data": ["keep": "a2VlcA==", "both": "b2xk"], "stringData": ["both": "new", "plain": "pässword"],
        ])
        XCTAssertEqual(created.status, 201, created.message)
        XCTAssertNil(created.body["stringData"])
        XCTAssertEqual(created.body["data"], ["keep": "a2VlcA==", "both": "bmV3", "plain": .string(Data("pässword".utf8).base64EncodedString())])
        var update = await tc.send("GET", "\(secrets)/s").body
        update["stringData"] = ["later": "x"]
        let updated = await tc.send("PUT", "\(secrets)/s", json: update)
        XCTAssertEqual(updated.status, 200, updated.message)
        XCTAssertEqual(updated.body[path: ["data", "later"]], "eA==")
        let stored = await tc.send("GET", "\(secrets)/s").body
        XCTAssertNil(stored["stringData"])
    }

    func testCreateHonoursGenerateNameAndRejectsTakenNameAndResourceVersion() async throws {
        var generated = TestCluster.connection("")
        generated["metadata"] = ["generateName": "conn-"]
        let first = await tc.send("POST", agc, json: generated)
        XCTAssertEqual(first.status, 201, first.message)
        XCTAssertTrue(first.body[path: ["metadata", "name"]]?.stringValue?.hasPrefix("conn-") ?? false)

        _ = await tc.send("POST", agc, json: TestCluster.connection("taken"))
        let again = await tc.send("POST", agc, json: TestCluster.connection("taken"))
        XCTAssertEqual(again.status, 409)
        XCTAssertEqual(again.body["reason"], "AlreadyExists")
        XCTAssertEqual(again.message, "agentconnections.agentgate.io \"taken\" already exists")

        var withRV = TestCluster.connection("rv")
        withRV.set("5", at: ["metadata", "resourceVersion"])
        let rejected = await tc.send("POST", agc, json: withRV)
        XCTAssertEqual(rejected.status, 400)
        XCTAssertEqual(rejected.message, "resourceVersion should not be set on objects to be created")
    }

    // 2
    func testUpdateNeedsCurrentResourceVersionAndBumpsGenerationOnlyForSpec() async throws {
        let created = await tc.send("POST", agc, json: TestCluster.connection("u")).body
        var noRV = created
        noRV.set(nil, at: ["metadata", "resourceVersion"])
        let missing = await tc.send("PUT", "\(agc)/u", json: noRV)
        XCTAssertEqual(missing.status, 422)
        XCTAssertTrue(missing.message.contains("metadata.resourceVersion"), missing.message)

        var labelled = created
        labelled.set(["team": "a"], at: ["metadata", "labels"])
        labelled.set(["endpoint": "ignored"], at: ["status"])
        let labelledReply = await tc.send("PUT", "\(agc)/u", json: labelled)
        XCTAssertEqual(labelledReply.status, 200, labelledReply.message)
        XCTAssertEqual(labelledReply.body[path: ["metadata", "generation"]], .int(1), "metadata changes keep generation")
        XCTAssertNil(labelledReply.body["status"], "status sent to the main endpoint is ignored")

        let stale = await tc.send("PUT", "\(agc)/u", json: labelled)
        XCTAssertEqual(stale.status, 409)
        XCTAssertTrue(stale.message.contains("the object has been modified"), stale.message)

        var specChange = labelledReply.body
        specChange.set("other-sa", at: ["spec", "serviceAccountName"])
        let changed = await tc.send("PUT", "\(agc)/u", json: specChange)
        XCTAssertEqual(changed.body[path: ["metadata", "generation"]], .int(2))
    }

    // 3
    func testStatusSubresourceTakesOnlyStatusAndKeepsGeneration() async throws {
        let created = await tc.send("POST", agc, json: TestCluster.connection("s")).body
        var update = created
        update["status"] = ["endpoint": "https://gw/c/default/s"]
        update.set("sneaky", at: ["spec", "serviceAccountName"])
        let reply = await tc.send("PUT", "\(agc)/s/status", json: update)
        XCTAssertEqual(reply.status, 200, reply.message)
        XCTAssertEqual(reply.body[path: ["status", "endpoint"]], "https://gw/c/default/s")
        XCTAssertEqual(reply.body[path: ["spec", "serviceAccountName"]], "agent-sa")
        XCTAssertEqual(reply.body[path: ["metadata", "generation"]], .int(1))
        let stale = await tc.send("PUT", "\(agc)/s/status", json: update)
        XCTAssertEqual(stale.status, 409)
    }

    // 4
    func testWriteThatChangesNothingKeepsResourceVersionAndSendsNoEvent() async throws {
        let created = await tc.send("POST", agc, json: TestCluster.connection("n")).body
        let rv = created[path: ["metadata", "resourceVersion"]]!.stringValue!
        let watch = await tc.send("GET", "\(agc)?watch=true&resourceVersion=\(rv)")
        let same = await tc.send("PUT", "\(agc)/n", json: created)
        XCTAssertEqual(same.body[path: ["metadata", "resourceVersion"]]?.stringValue, rv)
        var labelled = created
        labelled.set(["x": "y"], at: ["metadata", "labels"])
        _ = await tc.send("PUT", "\(agc)/n", json: labelled)
        let events = try await TestCluster.events(watch, count: 1)
        XCTAssertEqual(events.first?["type"], "MODIFIED")
        XCTAssertEqual(events.first?[path: ["object", "metadata", "labels", "x"]], "y", "the first event is the real change, not the no-op")
    }

    // 5
    func testImmutableMetadataAndNoNewFinalizersWhileDeleting() async throws {
        var object = TestCluster.connection("i")
        object.set(["example.com/hold"], at: ["metadata", "finalizers"])
        let created = await tc.send("POST", agc, json: object).body
        var changedUID = created
        changedUID.set("00000000-0000-0000-0000-000000000000", at: ["metadata", "uid"])
        let uidReply = await tc.send("PUT", "\(agc)/i", json: changedUID)
        XCTAssertEqual(uidReply.status, 422)
        XCTAssertTrue(uidReply.message.contains("metadata.uid"), uidReply.message)

        let deleting = await tc.send("DELETE", "\(agc)/i").body
        var added = deleting
        added.set(["example.com/hold", "example.com/new"], at: ["metadata", "finalizers"])
        let addReply = await tc.send("PUT", "\(agc)/i", json: added)
        XCTAssertEqual(addReply.status, 422)
        XCTAssertTrue(addReply.message.contains("no new finalizers can be added if the object is being deleted"), addReply.message)
    }

    // 6
    func testDeleteWithFinalizerMarksThenRemovingLastFinalizerDeletes() async throws {
        var object = TestCluster.connection("f")
        object.set(["example.com/hold"], at: ["metadata", "finalizers"])
        _ = await tc.send("POST", agc, json: object)
        let deleting = await tc.send("DELETE", "\(agc)/f", json: ["propagationPolicy": "Background"])
        XCTAssertEqual(deleting.status, 200)
        XCTAssertNotNil(deleting.body[path: ["metadata", "deletionTimestamp"]])
        XCTAssertEqual(deleting.body[path: ["metadata", "deletionGracePeriodSeconds"]], .int(0))
        let awaited1 = await tc.send("GET", "\(agc)/f").status
        XCTAssertEqual(awaited1, 200, "still there while a finalizer remains")
        let released = await tc.send("PATCH", "\(agc)/f", json: ["metadata": ["finalizers": nil]],
                                      contentType: "application/merge-patch+json")
        XCTAssertEqual(released.status, 200, released.message)
        let awaited2 = await tc.send("GET", "\(agc)/f").status
        XCTAssertEqual(awaited2, 404)
    }

    func testDeletingNamespaceRemovesItsContentAndOwnerDeletionCollectsDependents() async throws {
        await tc.createNamespace("doomed")
        _ = await tc.send("POST", "/api/v1/namespaces/doomed/configmaps",
                          json: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "c"]])
        _ = await tc.send("DELETE", "/api/v1/namespaces/doomed")
        let tc = self.tc!
        try await eventually(5, "the namespace is removed once empty") { await tc.send("GET", "/api/v1/namespaces/doomed").status == 404 }
        let awaited3 = await tc.send("GET", "/api/v1/namespaces/doomed/configmaps/c").status
        XCTAssertEqual(awaited3, 404)

        let owner = await tc.send("POST", "/api/v1/namespaces/default/configmaps",
                                  json: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "owner"]]).body
        let ref: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                              "uid": owner[path: ["metadata", "uid"]]!, "blockOwnerDeletion": true]
        let child = await tc.send("POST", "/api/v1/namespaces/default/secrets",
                                  json: ["apiVersion": "v1", "kind": "Secret", "metadata": ["name": "child", "ownerReferences": [ref]]])
        XCTAssertEqual(child.status, 201, child.message)
        _ = await tc.send("DELETE", "/api/v1/namespaces/default/configmaps/owner")
        let awaited4 = await tc.send("GET", "/api/v1/namespaces/default/secrets/child").status
        XCTAssertEqual(awaited4, 404,
                       "a dependent is garbage-collected after its owner")
    }

    // 7
    func testPatchTypesOnCustomResources() async throws {
        _ = await tc.send("POST", agc, json: TestCluster.connection("p"))
        let merge = await tc.send("PATCH", "\(agc)/p", json: ["metadata": ["labels": ["a": "1"]]],
                                  contentType: "application/merge-patch+json")
        XCTAssertEqual(merge.body[path: ["metadata", "labels", "a"]], "1")
        let json = await tc.send("PATCH", "\(agc)/p", json: [["op": "replace", "path": "/spec/serviceAccountName", "value": "b"]],
                                 contentType: "application/json-patch+json")
        XCTAssertEqual(json.body[path: ["spec", "serviceAccountName"]], "b")
        let strategic = await tc.send("PATCH", "\(agc)/p", json: ["metadata": ["labels": ["a": "2"]]],
                                      contentType: "application/strategic-merge-patch+json")
        XCTAssertEqual(strategic.status, 415, "strategic merge patch is not supported for custom resources")

        let apply = await tc.send("PATCH", "\(agc)/q?fieldManager=flux", json: TestCluster.connection("q"),
                                  contentType: "application/apply-patch+yaml")
        XCTAssertEqual(apply.status, 201, apply.message)
        var other = TestCluster.connection("q")
        other.set("argo-sa", at: ["spec", "serviceAccountName"])
        let conflict = await tc.send("PATCH", "\(agc)/q?fieldManager=argocd", json: other, contentType: "application/apply-patch+yaml")
        XCTAssertEqual(conflict.status, 409, conflict.message)
        XCTAssertTrue(conflict.message.contains("flux"), conflict.message)
        let forced = await tc.send("PATCH", "\(agc)/q?fieldManager=argocd&force=true", json: other, contentType: "application/apply-patch+yaml")
        XCTAssertEqual(forced.status, 200, forced.message)
        XCTAssertEqual(forced.body[path: ["spec", "serviceAccountName"]], "argo-sa")
    }

    func testStrategicMergePatchIsAcceptedForBuiltins() async throws {
        _ = await tc.send("POST", "/api/v1/namespaces/default/configmaps",
                          json: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "smp"], "data": ["a": "1"]])
        let reply = await tc.send("PATCH", "/api/v1/namespaces/default/configmaps/smp", json: ["data": ["b": "2"]],
                                  contentType: "application/strategic-merge-patch+json")
        XCTAssertEqual(reply.status, 200, reply.message)
        XCTAssertEqual(reply.body["data"], ["a": "1", "b": "2"])
    }

    // 8, 9
    func testSchemaValidationNamesTheFieldAppliesDefaultsAndPrunes() async throws {
        var bad = TestCluster.connection("bad")
        bad.set("Not_A_Name", at: ["spec", "serviceAccountName"])
        bad.set(nil, at: ["spec", "identity"])
        let reply = await tc.send("POST", agc, json: bad)
        XCTAssertEqual(reply.status, 422)
        XCTAssertEqual(reply.body["reason"], "Invalid")
        XCTAssertEqual(reply.body["kind"], "Status")
        let fields = reply.body[path: ["details", "causes"]]?.arrayValue?.compactMap { $0["field"]?.stringValue } ?? []
        XCTAssertTrue(fields.contains("spec.serviceAccountName"), "\(fields)")
        XCTAssertTrue(fields.contains("spec.identity"), "\(fields)")
        XCTAssertTrue(reply.message.hasPrefix("AgentConnection.agentgate.io \"bad\" is invalid: "), reply.message)

        var extra = TestCluster.connection("pruned")
        extra.set("surprise", at: ["spec", "unknownField"])
        let created = await tc.send("POST", agc, json: extra)
        XCTAssertEqual(created.status, 201, created.message)
        XCTAssertNil(created.body[path: ["spec", "unknownField"]], "unknown fields are pruned")
        XCTAssertEqual(created.body[path: ["spec", "identity", "subjectClaim"]], "sub", "defaults are applied")
    }

    func testCELRuleRejectsRotateBeforeLongerThanTTL() async throws {
        var object = TestCluster.connection("cel")
        object.set(["tokenTTL": "1h", "rotateBefore": "2h"], at: ["spec", "credentials"])
        let reply = await tc.send("POST", agc, json: object)
        XCTAssertEqual(reply.status, 422, reply.message)
        XCTAssertTrue(reply.message.contains("spec.credentials"), reply.message)
    }

    func testMalformedBodiesAndUnknownResourcesGetStatusErrors() async throws {
        let malformed = await tc.send("POST", agc, body: "{\"apiVersion\": ")
        XCTAssertEqual(malformed.status, 400)
        XCTAssertEqual(malformed.body["kind"], "Status")
        let unknown = await tc.send("GET", "/apis/agentgate.io/v1alpha1/namespaces/default/nothings")
        XCTAssertEqual(unknown.status, 404)
        XCTAssertEqual(unknown.body["reason"], "NotFound")
        let wrongKind = await tc.send("POST", agc, json: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "x"]])
        XCTAssertEqual(wrongKind.status, 400)
        let huge = await tc.send("POST", "/api/v1/namespaces/default/configmaps", body: String(repeating: "a", count: 3 * 1024 * 1024 + 1))
        XCTAssertEqual(huge.status, 413)
        let badSelector = await tc.send("GET", "\(agc)?labelSelector=a%20in%20(")
        XCTAssertEqual(badSelector.status, 400)
    }
}
