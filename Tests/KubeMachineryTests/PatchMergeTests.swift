import KubeCore
@testable import KubeMachinery
import XCTest

final class PatchMergeTests: XCTestCase {
    func testContentTypeIgnoresParametersAndCase() {
        XCTAssertEqual(PatchType(contentType: "application/merge-patch+json; charset=utf-8"), .merge)
        XCTAssertEqual(PatchType(contentType: "Application/JSON-Patch+JSON"), .json)
        XCTAssertEqual(PatchType(contentType: "application/apply-patch+yaml"), .apply)
        XCTAssertEqual(PatchType(contentType: "application/strategic-merge-patch+json"), .strategicMerge)
        XCTAssertNil(PatchType(contentType: "application/json"))
    }

    func testNullDeletesAField() {
        let target: JSONValue = ["metadata": ["labels": ["a": "1", "b": "2"]]]
        let result = JSONMergePatch.apply(["metadata": ["labels": ["a": nil]]], to: target)
        XCTAssertEqual(result, ["metadata": ["labels": ["b": "2"]]])
    }

    func testNestedObjectsMergeKeyByKey() {
        let target: JSONValue = ["spec": ["replicas": 1, "template": ["metadata": ["labels": ["app": "web"]]]]]
        let patch: JSONValue = ["spec": ["template": ["metadata": ["labels": ["tier": "front"]]]]]
        let result = JSONMergePatch.apply(patch, to: target)
        XCTAssertEqual(result[path: ["spec", "replicas"]], 1)
        XCTAssertEqual(result[path: ["spec", "template", "metadata", "labels"]], ["app": "web", "tier": "front"])
    }

    func testArraysAreReplacedWhole() {
        let target: JSONValue = ["spec": ["args": ["a", "b", "c"]]]
        let result = JSONMergePatch.apply(["spec": ["args": ["z"]]], to: target)
        XCTAssertEqual(result, ["spec": ["args": ["z"]]])
    }

    func testNullsInsideANewObjectAreDropped() {
        let result = JSONMergePatch.apply(["spec": ["x": ["y": nil, "z": 1]]], to: ["spec": [:]])
        XCTAssertEqual(result, ["spec": ["x": ["z": 1]]])
    }

    func testNonObjectPatchReplacesTheTarget() {
        XCTAssertEqual(JSONMergePatch.apply(["a"], to: ["x": 1]), ["a"])
    }

    func testDiffProducesAPatchThatReproducesTheTarget() {
        let from: JSONValue = ["metadata": ["name": "a", "labels": ["keep": "1", "drop": "2"]], "data": ["k": "v"]]
        let to: JSONValue = ["metadata": ["name": "a", "labels": ["keep": "1", "new": "3"]], "data": ["k": "v"]]
        let patch = JSONMergePatch.diff(from: from, to: to)
        XCTAssertEqual(patch, ["metadata": ["labels": ["drop": nil, "new": "3"]]])
        XCTAssertEqual(JSONMergePatch.apply(patch, to: from), to)
        XCTAssertEqual(JSONMergePatch.diff(from: to, to: to), [:])
    }
}
