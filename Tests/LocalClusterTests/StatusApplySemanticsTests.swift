import KubeCore
import XCTest
@testable import LocalCluster

/// Server-side apply on the status subresource: each field manager owns its own status
/// fields, so two writers (the operator and the gateway) never overwrite each other.
final class StatusApplySemanticsTests: XCTestCase {
    func testApplyToStatusSubresourceWritesStatusAndKeepsOtherManagersFields() async throws {
        let tc = try await TestCluster(useTLS: false)
        defer { Task { await tc.stop() } }
        let created = await tc.send("POST", "/apis/agentgate.io/v1alpha1/namespaces/default/agentconnections",
                                    json: TestCluster.connection("status-owners"))
        XCTAssertEqual(created.status, 201, created.message)
        let path = "/apis/agentgate.io/v1alpha1/namespaces/default/agentconnections/status-owners/status"
        func apply(_ manager: String, _ status: JSONValue) async -> TestCluster.Reply {
            await tc.send("PATCH", "\(path)?fieldManager=\(manager)&force=true",
                          json: ["apiVersion": "agentgate.io/v1alpha1", "kind": "AgentConnection",
                                 "metadata": ["name": "status-owners", "namespace": "default"], "status": status],
                          contentType: "application/apply-patch+yaml")
        }
        let byOperator = await apply("agentgate-operator", ["endpoint": "https://gw/c/default/status-owners", "observedGeneration": 1])
        XCTAssertEqual(byOperator.status, 200, byOperator.message)
        XCTAssertEqual(byOperator.body[path: ["status", "endpoint"]]?.stringValue, "https://gw/c/default/status-owners")

        let byGateway = await apply("agentgate-gateway", ["sessions": ["active": 1, "total": 3]])
        XCTAssertEqual(byGateway.status, 200, byGateway.message)
        XCTAssertEqual(byGateway.body[path: ["status", "endpoint"]]?.stringValue, "https://gw/c/default/status-owners",
                       "the gateway's apply must not remove the operator's field")
        XCTAssertEqual(byGateway.body[path: ["status", "sessions", "total"]]?.intValue, 3)

        // The operator re-applies its fields only: the gateway's stay.
        let again = await apply("agentgate-operator", ["endpoint": "https://gw2/c/default/status-owners", "observedGeneration": 1])
        XCTAssertEqual(again.body[path: ["status", "sessions", "total"]]?.intValue, 3)
        XCTAssertEqual(again.body[path: ["status", "endpoint"]]?.stringValue, "https://gw2/c/default/status-owners")
        // The spec was not touched and generation did not move.
        XCTAssertEqual(again.body[path: ["metadata", "generation"]]?.intValue, 1)
        let managers = (again.body[path: ["metadata", "managedFields"]]?.arrayValue ?? []).compactMap { entry -> String? in
            guard entry["subresource"]?.stringValue == "status" else { return nil }
            return entry["manager"]?.stringValue
        }
        XCTAssertEqual(Set(managers), ["agentgate-operator", "agentgate-gateway"])
        let operations = (again.body[path: ["metadata", "managedFields"]]?.arrayValue ?? []).compactMap { $0["operation"]?.stringValue }
        XCTAssertFalse(operations.contains("Update"), "an apply is recorded as Apply only, not also as Update: \(operations)")
    }

    func testApplyToTheStatusOfAMissingObjectIsNotFoundAndCreatesNothing() async throws {
        let tc = try await TestCluster(useTLS: false)
        defer { Task { await tc.stop() } }
        let base = "/apis/agentgate.io/v1alpha1/namespaces/default/agentconnections"
        let reply = await tc.send("PATCH", "\(base)/ghost/status?fieldManager=agentgate-gateway&force=true",
                                  json: ["apiVersion": "agentgate.io/v1alpha1", "kind": "AgentConnection",
                                         "metadata": ["name": "ghost", "namespace": "default"], "status": ["pendingApprovals": 1]],
                                  contentType: "application/apply-patch+yaml")
        XCTAssertEqual(reply.status, 404, reply.message)
        XCTAssertEqual(reply.body["reason"], "NotFound")
        let get = await tc.send("GET", "\(base)/ghost")
        XCTAssertEqual(get.status, 404, "an apply to /status must not create the object")
        // Apply to the object itself still creates it.
        let created = await tc.send("PATCH", "\(base)/ghost?fieldManager=kubectl",
                                    json: TestCluster.connection("ghost"), contentType: "application/apply-patch+yaml")
        XCTAssertEqual(created.status, 201, created.message)
    }

    func testStatusOfAnObjectStoredBeforeAStricterSchemaCanStillBeWritten() async throws {
        let tc = try await TestCluster(useTLS: false)
        defer { Task { await tc.stop() } }
        // Stored past admission, as an older CRD would have allowed: retention below the 1h rule.
        let policy: JSONValue = [
            "apiVersion": "agentgate.io/v1alpha1", "kind": "RecordingPolicy",
            "metadata": ["name": "legacy", "namespace": "default", "uid": "u-legacy", "generation": 1,
                         "creationTimestamp": "2026-01-01T00:00:00Z"],
            "spec": ["retention": "5m"],
        ]
        try tc.cluster.apiServer.store.mutate(ResourceKey(group: "agentgate.io", resource: "recordingpolicies"),
                                              namespace: "default", name: "legacy") { _ in .put(policy) }
        let path = "/apis/agentgate.io/v1alpha1/namespaces/default/recordingpolicies/legacy"
        let status = await tc.send("PATCH", "\(path)/status", json: ["status": ["observedGeneration": 1]],
                                   contentType: "application/merge-patch+json")
        XCTAssertEqual(status.status, 200, "a status write does not re-judge the unchanged spec: \(status.message)")
        let badStatus = await tc.send("PATCH", "\(path)/status", json: ["status": ["sessionsRecorded": -1]],
                                      contentType: "application/merge-patch+json")
        XCTAssertEqual(badStatus.status, 422, "status itself is still validated")
        XCTAssertTrue(badStatus.message.contains("status.sessionsRecorded"), badStatus.message)
        let specWrite = await tc.send("PATCH", path, json: ["metadata": ["labels": ["a": "b"]]],
                                      contentType: "application/merge-patch+json")
        XCTAssertEqual(specWrite.status, 422, "a write of the main resource still validates the spec")
    }
}
