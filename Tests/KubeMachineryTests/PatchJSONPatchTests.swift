import KubeCore
@testable import KubeMachinery
import XCTest

final class PatchJSONPatchTests: XCTestCase {
    let pod: JSONValue = [
        "metadata": ["name": "p", "labels": ["app": "web"], "annotations": ["a/b": "slash", "t~x": "tilde"]],
        "spec": ["containers": [["name": "c", "args": ["one", "two"]]]],
    ]

    private func apply(_ ops: JSONValue, to target: JSONValue? = nil) throws -> JSONValue {
        try JSONPatch.apply(ops, to: target ?? pod)
    }

    private func failure(_ ops: JSONValue, file: StaticString = #filePath, line: UInt = #line) -> PatchError? {
        do {
            _ = try apply(ops)
            XCTFail("patch applied", file: file, line: line)
            return nil
        } catch let error as PatchError {
            return error
        } catch {
            XCTFail("unexpected \(error)", file: file, line: line)
            return nil
        }
    }

    func testAddSetsAnObjectKeyAndInsertsOrAppendsArrayItems() throws {
        let result = try apply([
            ["op": "add", "path": "/metadata/labels/tier", "value": "front"],
            ["op": "add", "path": "/spec/containers/0/args/0", "value": "zero"],
            ["op": "add", "path": "/spec/containers/0/args/-", "value": "last"],
        ])
        XCTAssertEqual(result[path: ["metadata", "labels", "tier"]], "front")
        XCTAssertEqual(result[path: ["spec", "containers"]]?.arrayValue?.first?["args"], ["zero", "one", "two", "last"])
    }

    func testRemoveDeletesKeysAndArrayItems() throws {
        let result = try apply([
            ["op": "remove", "path": "/metadata/labels/app"],
            ["op": "remove", "path": "/spec/containers/0/args/0"],
        ])
        XCTAssertEqual(result[path: ["metadata", "labels"]], [:])
        XCTAssertEqual(result[path: ["spec", "containers"]]?.arrayValue?.first?["args"], ["two"])
    }

    func testReplaceChangesAValueAndAddsAMissingObjectKeyLikeKubeApiserver() throws {
        let result = try apply([
            ["op": "replace", "path": "/metadata/labels/app", "value": "api"],
            ["op": "replace", "path": "/metadata/labels/new", "value": "x"],
        ])
        XCTAssertEqual(result[path: ["metadata", "labels"]], ["app": "api", "new": "x"])
    }

    func testMoveAndCopy() throws {
        let result = try apply([
            ["op": "copy", "from": "/metadata/labels/app", "path": "/metadata/labels/copied"],
            ["op": "move", "from": "/metadata/labels/app", "path": "/metadata/labels/moved"],
        ])
        XCTAssertEqual(result[path: ["metadata", "labels"]], ["copied": "web", "moved": "web"])
    }

    func testPassingTestOperationLetsThePatchProceed() throws {
        let result = try apply([
            ["op": "test", "path": "/metadata/labels/app", "value": "web"],
            ["op": "test", "path": "/metadata/labels/absent", "value": nil],
            ["op": "replace", "path": "/metadata/labels/app", "value": "api"],
        ])
        XCTAssertEqual(result[path: ["metadata", "labels", "app"]], "api")
    }

    func testPointerEscapesAddressSlashAndTildeInKeys() throws {
        let result = try apply([
            ["op": "test", "path": "/metadata/annotations/a~1b", "value": "slash"],
            ["op": "replace", "path": "/metadata/annotations/t~0x", "value": "changed"],
        ])
        XCTAssertEqual(result[path: ["metadata", "annotations", "t~x"]], "changed")
    }

    func testFailingTestOperationIs422WithTheLibraryMessageAsCause() {
        let error = failure([["op": "test", "path": "/metadata/labels/app", "value": "db"]])
        XCTAssertEqual(error?.code, 422)
        XCTAssertEqual(error?.reason, "Invalid")
        XCTAssertEqual(error?.message, "the server rejected our request due to an error in our request")
        XCTAssertEqual(error?.causes.first?.message, "testing value /metadata/labels/app failed: test failed")
        XCTAssertEqual(error?.status.details?.causes?.first?.reason, "UnexpectedServerResponse")
    }

    func testAFailedOperationLeavesNothingHalfApplied() throws {
        XCTAssertNotNil(failure([
            ["op": "add", "path": "/metadata/labels/x", "value": "1"],
            ["op": "test", "path": "/metadata/labels/app", "value": "nope"],
        ]))
        XCTAssertNil(pod[path: ["metadata", "labels", "x"]])
    }

    func testMissingParentPathIsReportedWithThePath() {
        XCTAssertEqual(failure([["op": "add", "path": "/spec/x/y", "value": 1]])?.causes.first?.message,
                       "add operation does not apply: doc is missing path: \"/spec/x/y\": missing value")
        XCTAssertEqual(failure([["op": "remove", "path": "/metadata/labels/nope"]])?.causes.first?.message,
                       "error in remove for path: '/metadata/labels/nope': Unable to remove nonexistent key: nope: missing value")
        XCTAssertEqual(failure([["op": "replace", "path": "/nothing/here", "value": 1]])?.causes.first?.message,
                       "replace operation does not apply: doc is missing path: /nothing/here: missing value")
        XCTAssertEqual(failure([["op": "add", "path": "", "value": 1]])?.code, 422)
    }

    func testOutOfRangeAndMalformedIndicesAreRejected() {
        XCTAssertEqual(failure([["op": "add", "path": "/spec/containers/0/args/5", "value": "x"]])?.causes.first?.message,
                       "error in add for path: '/spec/containers/0/args/5': Unable to access invalid index: 5: invalid index referenced")
        XCTAssertEqual(failure([["op": "remove", "path": "/spec/containers/0/args/2"]])?.causes.first?.message,
                       "error in remove for path: '/spec/containers/0/args/2': Unable to access invalid index: 2: invalid index referenced")
        XCTAssertEqual(failure([["op": "replace", "path": "/spec/containers/3/name", "value": "x"]])?.causes.first?.message,
                       "replace operation does not apply: doc is missing path: /spec/containers/3/name: missing value")
        XCTAssertEqual(failure([["op": "add", "path": "/spec/containers/0/args/x", "value": "x"]])?.causes.first?.message,
                       "error in add for path: '/spec/containers/0/args/x': value was not a proper array index: 'x': strconv.Atoi: parsing \"x\": invalid syntax")
    }

    func testNegativeIndexCountsFromTheEndAsInJsonPatchV4() throws {
        let result = try apply([["op": "remove", "path": "/spec/containers/0/args/-1"]])
        XCTAssertEqual(result[path: ["spec", "containers"]]?.arrayValue?.first?["args"], ["one"])
    }

    func testUnknownOperationAndMalformedBodies() {
        XCTAssertEqual(failure([["op": "frobnicate", "path": "/a"]])?.causes.first?.message, "Unexpected kind: frobnicate")
        XCTAssertEqual(failure(["op": "add"])?.code, 400)
        XCTAssertEqual(failure(["not an operation"])?.code, 400)
        XCTAssertEqual(failure([["op": "add", "value": 1]])?.causes.first?.message,
                       "add operation failed to decode path: missing value")
    }

    func testTooManyOperationsIs413() {
        let ops = JSONValue.array(Array(repeating: ["op": "test", "path": "/metadata/name", "value": "p"], count: 10_001))
        XCTAssertEqual(failure(ops)?.code, 413)
    }
}
