import KubeCore
@testable import KubeMachinery
import XCTest

final class PatchServerSideApplyTests: XCTestCase {
    let t0 = Date(timeIntervalSince1970: 1_700_000_000)
    let t1 = Date(timeIntervalSince1970: 1_700_000_600)

    /// A custom resource whose `spec.rules` is a list-map keyed by `name`; other lists are atomic.
    let crdKeys: ([String]) -> [String]? = { $0 == ["spec", "rules"] ? ["name"] : nil }

    private func config(_ spec: JSONValue, labels: JSONValue? = nil) -> JSONValue {
        var metadata: [String: JSONValue] = ["name": "a", "namespace": "default"]
        if let labels { metadata["labels"] = labels }
        var object: JSONValue = ["apiVersion": "agentgate.dev/v1alpha1", "kind": "AgentConnection", "metadata": .object(metadata)]
        if spec != [:] { object["spec"] = spec }
        return object
    }

    private func apply(_ config: JSONValue, to live: JSONValue?, manager: String = "kubectl", force: Bool = false,
                       at time: Date? = nil) throws -> JSONValue {
        try ServerSideApply.apply(config: config, to: live, manager: manager, force: force, now: time ?? t0, listMapKeys: crdKeys)
    }

    private func entries(_ object: JSONValue) -> [JSONValue] {
        object[path: ["metadata", "managedFields"]]?.arrayValue ?? []
    }

    private func entry(_ object: JSONValue, _ manager: String) -> JSONValue? {
        entries(object).first { $0["manager"]?.stringValue == manager }
    }

    private func conflict(_ body: () throws -> JSONValue, file: StaticString = #filePath, line: UInt = #line) -> PatchError? {
        do {
            _ = try body()
            XCTFail("apply succeeded", file: file, line: line)
        } catch let error as PatchError {
            return error
        } catch {
            XCTFail("unexpected \(error)", file: file, line: line)
        }
        return nil
    }

    func testApplyCreatesTheObjectAndRecordsOwnershipInFieldsV1() throws {
        let created = try apply(config(["replicas": 2, "rules": [["name": "r1", "verb": "get"]]], labels: ["app": "x"]), to: nil)
        XCTAssertEqual(created[path: ["spec", "replicas"]], 2)
        XCTAssertEqual(entries(created).count, 1)
        let managed = try XCTUnwrap(entry(created, "kubectl"))
        XCTAssertEqual(managed["operation"], "Apply")
        XCTAssertEqual(managed["apiVersion"], "agentgate.dev/v1alpha1")
        XCTAssertEqual(managed["time"], "2023-11-14T22:13:20Z")
        XCTAssertEqual(managed["fieldsType"], "FieldsV1")
        XCTAssertEqual(managed["fieldsV1"], [
            "f:metadata": ["f:labels": ["f:app": [:]]],
            "f:spec": [
                "f:replicas": [:],
                "f:rules": ["k:{\"name\":\"r1\"}": [".": [:], "f:name": [:], "f:verb": [:]]],
            ],
        ], "name, namespace, apiVersion and kind are not owned")
    }

    func testReapplyingTheSameConfigReturnsTheIdenticalObject() throws {
        let cfg = config(["replicas": 2], labels: ["app": "x"])
        let created = try apply(cfg, to: nil)
        let again = try apply(cfg, to: created, at: t1)
        XCTAssertEqual(again, created)
    }

    func testAnotherManagerChangingAnOwnedFieldConflictsWith409() throws {
        let created = try apply(config(["replicas": 2, "mode": "a"]), to: nil)
        let error = conflict { try apply(config(["replicas": 3]), to: created, manager: "other-manager") }
        XCTAssertEqual(error?.code, 409)
        XCTAssertEqual(error?.reason, "Conflict")
        XCTAssertEqual(error?.message, "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas")
        XCTAssertEqual(error?.conflicts, ["conflict with \"kubectl\": .spec.replicas"])
        XCTAssertEqual(error?.status.details?.causes?.first?.field, ".spec.replicas")
        XCTAssertEqual(error?.status.details?.causes?.first?.reason, "FieldManagerConflict")
    }

    func testSeveralConflictsAreListedPerManager() throws {
        let created = try apply(config(["replicas": 2, "mode": "a"]), to: nil)
        let error = conflict { try apply(config(["replicas": 3, "mode": "b"]), to: created, manager: "other") }
        XCTAssertEqual(error?.message, "Apply failed with 2 conflicts: conflicts with \"kubectl\":\n- .spec.mode\n- .spec.replicas")
    }

    func testApplyingTheSameValueSharesOwnershipWithoutConflict() throws {
        let created = try apply(config(["replicas": 2]), to: nil)
        let shared = try apply(config(["replicas": 2]), to: created, manager: "other")
        XCTAssertNotNil(entry(shared, "kubectl"))
        XCTAssertNotNil(entry(shared, "other"))
        // The first manager dropping the field no longer removes it: "other" still owns it.
        let dropped = try apply(config([:]), to: shared)
        XCTAssertEqual(dropped[path: ["spec", "replicas"]], 2)
    }

    func testForceTakesOwnershipFromTheOtherManager() throws {
        let created = try apply(config(["replicas": 2, "mode": "a"]), to: nil)
        let forced = try apply(config(["replicas": 3]), to: created, manager: "other", force: true, at: t1)
        XCTAssertEqual(forced[path: ["spec", "replicas"]], 3)
        XCTAssertEqual(entry(forced, "kubectl")?["fieldsV1"], ["f:spec": ["f:mode": [:]]])
        XCTAssertEqual(entry(forced, "other")?["fieldsV1"], ["f:spec": ["f:replicas": [:]]])
        // Now the original manager is the one that conflicts.
        XCTAssertEqual(conflict { try apply(config(["replicas": 2, "mode": "a"]), to: forced) }?.message,
                       "Apply failed with 1 conflict: conflict with \"other\": .spec.replicas")
    }

    func testAFieldDroppedFromTheAppliedConfigIsRemoved() throws {
        let created = try apply(config(["replicas": 2, "mode": "a"], labels: ["app": "x", "tier": "y"]), to: nil)
        let updated = try apply(config(["replicas": 2], labels: ["app": "x"]), to: created, at: t1)
        XCTAssertNil(updated[path: ["spec", "mode"]])
        XCTAssertEqual(updated[path: ["metadata", "labels"]], ["app": "x"])
        XCTAssertEqual(entry(updated, "kubectl")?["time"], "2023-11-14T22:23:20Z")
    }

    func testListMapMergesByKeyAndKeepsAnotherManagersItem() throws {
        let created = try apply(config(["rules": [["name": "r1", "verb": "get"]]]), to: nil)
        let withSecond = try apply(config(["rules": [["name": "r2", "verb": "list"]]]), to: created, manager: "operator")
        XCTAssertEqual(withSecond[path: ["spec", "rules"]], [["name": "r1", "verb": "get"], ["name": "r2", "verb": "list"]])
        // kubectl re-applies its own item with a change: the operator's item stays.
        let changed = try apply(config(["rules": [["name": "r1", "verb": "watch"]]]), to: withSecond, at: t1)
        XCTAssertEqual(changed[path: ["spec", "rules"]], [["name": "r1", "verb": "watch"], ["name": "r2", "verb": "list"]])
        // kubectl drops its item: only the operator's remains.
        let dropped = try apply(config([:]), to: changed, at: t1)
        XCTAssertEqual(dropped[path: ["spec", "rules"]], [["name": "r2", "verb": "list"]])
        // Changing a field inside the operator's item conflicts on that field.
        XCTAssertEqual(conflict { try apply(config(["rules": [["name": "r2", "verb": "delete"]]]), to: dropped) }?.message,
                       "Apply failed with 1 conflict: conflict with \"operator\": .spec.rules[name=\"r2\"].verb")
    }

    func testAtomicListIsReplacedWhole() throws {
        let created = try apply(config(["args": ["a", "b"]]), to: nil)
        let replaced = try apply(config(["args": ["c"]]), to: created)
        XCTAssertEqual(replaced[path: ["spec", "args"]], ["c"])
        XCTAssertEqual(entry(replaced, "kubectl")?["fieldsV1"], ["f:spec": ["f:args": [:]]])
    }

    func testStatusInTheAppliedConfigIsIgnoredOnTheMainResource() throws {
        var cfg = config(["replicas": 1])
        cfg["status"] = ["phase": "Ready"]
        let created = try apply(cfg, to: nil)
        XCTAssertNil(created["status"])
        XCTAssertNil(entry(created, "kubectl")?[path: ["fieldsV1", "f:status"]])
    }

    func testServerSideApplyThenLabelUpdateThenReapply() throws {
        // kubectl apply --server-side
        let cfg = config(["replicas": 2], labels: ["app": "x"])
        let applied = try apply(cfg, to: nil)
        // kubectl label (a merge patch; the server records an Update by "kubectl-label")
        let labelled = JSONMergePatch.apply(["metadata": ["labels": ["env": "dev"]]], to: applied)
        let recorded = ServerSideApply.recordUpdate(old: applied, new: labelled, manager: "kubectl-label", now: t1)
        let label = try XCTUnwrap(entry(recorded, "kubectl-label"))
        XCTAssertEqual(label["operation"], "Update")
        XCTAssertEqual(label["apiVersion"], "agentgate.dev/v1alpha1")
        XCTAssertEqual(label["fieldsV1"], ["f:metadata": ["f:labels": ["f:env": [:]]]])
        XCTAssertEqual(entries(recorded).compactMap { $0["operation"]?.stringValue }, ["Apply", "Update"])
        // Re-applying the unchanged config keeps the label someone else owns and changes nothing.
        let reapplied = try apply(cfg, to: recorded, at: t1)
        XCTAssertEqual(reapplied, recorded)
        // Applying a value for that label conflicts with the Update manager, worded with its apiVersion.
        XCTAssertEqual(conflict { try apply(config(["replicas": 2], labels: ["app": "x", "env": "prod"]), to: recorded) }?.message,
                       "Apply failed with 1 conflict: conflict with \"kubectl-label\" using agentgate.dev/v1alpha1: .metadata.labels.env")
    }

    func testUpdateTakesOwnershipOfChangedFieldsSoALaterApplyConflicts() throws {
        let applied = try apply(config(["replicas": 2]), to: nil)
        var edited = applied
        edited.set(5, at: ["spec", "replicas"])
        let recorded = ServerSideApply.recordUpdate(old: applied, new: edited, manager: "kubectl-edit", now: t1,
                                                    listMapKeys: crdKeys)
        XCTAssertNil(entry(recorded, "kubectl"), "the applier lost its only field")
        XCTAssertEqual(conflict { try apply(config(["replicas": 2]), to: recorded) }?.message,
                       "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using agentgate.dev/v1alpha1: .spec.replicas")
    }

    func testCreateByUpdateOwnsEverythingAndAnUnchangedUpdateKeepsTheTime() throws {
        let pod: JSONValue = ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": "p", "uid": "u1"],
                              "spec": ["containers": [["name": "c", "image": "i", "ports": [["containerPort": 80]]]]]]
        let created = ServerSideApply.recordUpdate(old: nil, new: pod, manager: "kubectl-create", now: t0)
        XCTAssertEqual(entry(created, "kubectl-create")?["fieldsV1"], [
            "f:spec": ["f:containers": ["k:{\"name\":\"c\"}": [
                ".": [:], "f:name": [:], "f:image": [:],
                "f:ports": ["k:{\"containerPort\":80,\"protocol\":\"TCP\"}": [".": [:], "f:containerPort": [:]]],
            ]]],
        ])
        let same = ServerSideApply.recordUpdate(old: created, new: created, manager: "kubectl-create", now: t1)
        XCTAssertEqual(same, created)
    }

    func testFirstApplyToAnObjectWithoutManagedFieldsConflictsWithBeforeFirstApply() throws {
        let live: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "c"], "data": ["k": "old"]]
        let error = conflict {
            try ServerSideApply.apply(config: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "c"], "data": ["k": "new"]],
                                      to: live, manager: "kubectl", force: false, now: t0) { _ in nil }
        }
        XCTAssertEqual(error?.message, "Apply failed with 1 conflict: conflict with \"before-first-apply\" using v1: .data.k")
    }

    func testBuiltinDeploymentContainersMergeByNameUnderApply() throws {
        let keys: ([String]) -> [String]? = { BuiltinListTypes.listMapKeys(kind: "Deployment", path: $0) }
        func deployment(_ containers: JSONValue) -> JSONValue {
            ["apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "d"],
             "spec": ["template": ["spec": ["containers": containers]]]]
        }
        let created = try ServerSideApply.apply(config: deployment([["name": "app", "image": "app:1"]]), to: nil,
                                                manager: "kubectl", force: false, now: t0, listMapKeys: keys)
        let sidecar = try ServerSideApply.apply(config: deployment([["name": "mesh", "image": "proxy"]]), to: created,
                                                manager: "injector", force: false, now: t0, listMapKeys: keys)
        let names = sidecar[path: ["spec", "template", "spec", "containers"]]?.arrayValue?.compactMap { $0["name"]?.stringValue }
        XCTAssertEqual(names, ["app", "mesh"])
    }

    func testAppliedManagedFieldsAreRejected() throws {
        var cfg = config([:])
        cfg.set([], at: ["metadata", "managedFields"])
        XCTAssertEqual(conflict { try apply(cfg, to: nil) }?.code, 400)
    }

    func testFinalizersAreASetOwnedPerValue() throws {
        var cfg = config([:])
        cfg.set(["a.dev/one"], at: ["metadata", "finalizers"])
        let created = try apply(cfg, to: nil)
        XCTAssertEqual(entry(created, "kubectl")?["fieldsV1"], ["f:metadata": ["f:finalizers": ["v:\"a.dev/one\"": [:]]]])
        var withOperator = created
        withOperator.set(["a.dev/one", "b.dev/two"], at: ["metadata", "finalizers"])
        let recorded = ServerSideApply.recordUpdate(old: created, new: withOperator, manager: "operator", now: t1, listMapKeys: crdKeys)
        let dropped = try apply(config([:]), to: recorded, at: t1)
        XCTAssertEqual(dropped[path: ["metadata", "finalizers"]], ["b.dev/two"])
    }
}
