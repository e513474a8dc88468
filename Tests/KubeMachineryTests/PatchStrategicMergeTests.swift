import KubeCore
@testable import KubeMachinery
import XCTest

final class PatchStrategicMergeTests: XCTestCase {
    let deployment: JSONValue = [
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": ["name": "web", "labels": ["app": "web"], "annotations": ["note": "x"], "finalizers": ["a"]],
        "spec": [
            "replicas": 1,
            "strategy": ["type": "RollingUpdate", "rollingUpdate": ["maxSurge": 1]],
            "template": ["spec": [
                "containers": [
                    ["name": "app", "image": "app:1",
                     "env": [["name": "A", "value": "1"], ["name": "B", "value": "2"]],
                     "ports": [["containerPort": 80]], "args": ["--a", "--b"]],
                    ["name": "sidecar", "image": "proxy:1"],
                ],
                "tolerations": [["key": "k1", "operator": "Exists"]],
                "volumes": [["name": "data", "emptyDir": [:]]],
            ]],
        ],
    ]

    private func patch(_ p: JSONValue, kind: String = "Deployment") throws -> JSONValue {
        try StrategicMergePatch.apply(p, to: deployment, kind: kind)
    }

    private func containers(_ object: JSONValue) -> [JSONValue] {
        object[path: ["spec", "template", "spec", "containers"]]?.arrayValue ?? []
    }

    func testContainersMergeByNameKeepingTheOthers() throws {
        let result = try patch(["spec": ["template": ["spec": ["containers": [["name": "app", "image": "app:2"]]]]]])
        let list = containers(result)
        XCTAssertEqual(list.count, 2)
        XCTAssertEqual(list[0]["image"], "app:2")
        XCTAssertEqual(list[0]["env"]?.arrayValue?.count, 2, "fields the patch does not name stay")
        XCTAssertEqual(list[1]["image"], "proxy:1")
    }

    func testANewContainerIsAppended() throws {
        let result = try patch(["spec": ["template": ["spec": ["containers": [["name": "debug", "image": "busybox"]]]]]])
        XCTAssertEqual(containers(result).compactMap { $0["name"]?.stringValue }, ["app", "sidecar", "debug"])
    }

    func testPatchDeleteDirectiveRemovesTheItemWithThatKey() throws {
        let result = try patch(["spec": ["template": ["spec": ["containers": [["name": "sidecar", "$patch": "delete"]]]]]])
        XCTAssertEqual(containers(result).compactMap { $0["name"]?.stringValue }, ["app"])
    }

    func testEnvMergesByNameAndNullRemovesAFieldInsideAnItem() throws {
        let result = try patch(["spec": ["template": ["spec": ["containers": [
            ["name": "app", "env": [["name": "B", "value": "two"], ["name": "C", "value": "3"]]],
        ]]]]])
        XCTAssertEqual(containers(result)[0]["env"], [["name": "A", "value": "1"], ["name": "B", "value": "two"], ["name": "C", "value": "3"]])
        let cleared = try patch(["spec": ["template": ["spec": ["containers": [["name": "app", "image": nil]]]]]])
        XCTAssertNil(containers(cleared)[0]["image"])
    }

    func testPortsMergeByContainerPort() throws {
        let result = try patch(["spec": ["template": ["spec": ["containers": [
            ["name": "app", "ports": [["containerPort": 80, "name": "http"], ["containerPort": 443]]],
        ]]]]])
        XCTAssertEqual(containers(result)[0]["ports"], [["containerPort": 80, "name": "http"], ["containerPort": 443]])
    }

    func testTolerationsAndArgsAreReplacedWhole() throws {
        let result = try patch(["spec": ["template": ["spec": [
            "tolerations": [["key": "k2", "operator": "Exists"]],
            "containers": [["name": "app", "args": ["--c"]]],
        ]]]])
        XCTAssertEqual(result[path: ["spec", "template", "spec", "tolerations"]], [["key": "k2", "operator": "Exists"]])
        XCTAssertEqual(containers(result)[0]["args"], ["--c"])
    }

    func testLabelsAndAnnotationsMergeAndNullDeletes() throws {
        let result = try patch(["metadata": ["labels": ["tier": "front"], "annotations": ["note": nil, "new": "y"]]])
        XCTAssertEqual(result[path: ["metadata", "labels"]], ["app": "web", "tier": "front"])
        XCTAssertEqual(result[path: ["metadata", "annotations"]], ["new": "y"])
    }

    func testPatchReplaceOnAMapReplacesIt() throws {
        let result = try patch(["metadata": ["labels": ["$patch": "replace", "only": "this"]]])
        XCTAssertEqual(result[path: ["metadata", "labels"]], ["only": "this"])
    }

    func testPatchReplaceInAListReplacesTheList() throws {
        let result = try patch(["spec": ["template": ["spec": ["containers": [["$patch": "replace"], ["name": "solo", "image": "s"]]]]]])
        XCTAssertEqual(containers(result), [["name": "solo", "image": "s"]])
    }

    func testFinalizersMergeAsASetAndDeleteFromPrimitiveListRemoves() throws {
        let added = try patch(["metadata": ["finalizers": ["b", "a"]]])
        XCTAssertEqual(added[path: ["metadata", "finalizers"]], ["a", "b"])
        let removed = try patch(["metadata": ["$deleteFromPrimitiveList/finalizers": ["a"]]])
        XCTAssertEqual(removed[path: ["metadata", "finalizers"]], [])
    }

    func testKubectlApplyDirectivesAreAcceptedAndNotStored() throws {
        // What client-side `kubectl apply` sends when it changes the strategy and an image.
        let result = try patch([
            "spec": [
                "strategy": ["$retainKeys": ["type"], "type": "Recreate"],
                "template": ["spec": [
                    "$setElementOrder/containers": [["name": "app"], ["name": "sidecar"]],
                    "containers": [["name": "app", "image": "app:3"]],
                ]],
            ],
        ])
        XCTAssertEqual(result[path: ["spec", "strategy"]], ["type": "Recreate"], "$retainKeys drops rollingUpdate")
        XCTAssertEqual(containers(result)[0]["image"], "app:3")
        XCTAssertNil(result[path: ["spec", "template", "spec", "$setElementOrder/containers"]])
        XCTAssertFalse(result.serializedString().contains("$"), "no directive is stored")
    }

    func testPatchContentOutsideRetainKeysIs422() {
        XCTAssertThrowsError(try patch(["spec": ["strategy": ["$retainKeys": ["type"], "rollingUpdate": ["maxSurge": 2]]]])) {
            XCTAssertEqual(($0 as? PatchError)?.code, 422)
        }
    }

    func testMergeListItemWithoutItsKeyIsAnError() {
        XCTAssertThrowsError(try patch(["spec": ["template": ["spec": ["containers": [["image": "x"]]]]]])) {
            XCTAssertEqual(($0 as? PatchError)?.message, "map: map[image:x] does not contain declared merge key: name")
        }
    }

    func testConfigMapSecretServiceAccountAndRolePatches() throws {
        let configMap: JSONValue = ["kind": "ConfigMap", "data": ["a": "1", "b": "2"]]
        XCTAssertEqual(try StrategicMergePatch.apply(["data": ["b": nil, "c": "3"]], to: configMap, kind: "ConfigMap")["data"],
                       ["a": "1", "c": "3"])
        let secret: JSONValue = ["kind": "Secret", "type": "Opaque", "data": ["k": "djE="]]
        XCTAssertEqual(try StrategicMergePatch.apply(["stringData": ["x": "y"]], to: secret, kind: "Secret")["data"], ["k": "djE="])
        let account: JSONValue = ["kind": "ServiceAccount", "secrets": [["name": "s1"]], "imagePullSecrets": [["name": "p1"]]]
        let patchedAccount = try StrategicMergePatch.apply(["secrets": [["name": "s2"]], "imagePullSecrets": [["name": "p2"]]],
                                                           to: account, kind: "ServiceAccount")
        XCTAssertEqual(patchedAccount["secrets"], [["name": "s1"], ["name": "s2"]])
        XCTAssertEqual(patchedAccount["imagePullSecrets"], [["name": "p2"]], "ServiceAccount imagePullSecrets has no merge key")
        let role: JSONValue = ["kind": "Role", "rules": [["apiGroups": [""], "resources": ["pods"], "verbs": ["get"]]]]
        let newRules: JSONValue = [["apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]]]
        XCTAssertEqual(try StrategicMergePatch.apply(["rules": newRules], to: role, kind: "Role")["rules"], newRules)
    }

    func testPodStatusConditionsMergeByType() throws {
        let pod: JSONValue = ["kind": "Pod", "status": ["conditions": [["type": "Ready", "status": "False"], ["type": "Initialized", "status": "True"]]]]
        let result = try StrategicMergePatch.apply(["status": ["conditions": [["type": "Ready", "status": "True"]]]], to: pod, kind: "Pod")
        XCTAssertEqual(result[path: ["status", "conditions"]],
                       [["type": "Ready", "status": "True"], ["type": "Initialized", "status": "True"]])
    }

    func testNonObjectPatchIs400() {
        XCTAssertThrowsError(try patch(["a"])) { XCTAssertEqual(($0 as? PatchError)?.code, 400) }
    }
}
