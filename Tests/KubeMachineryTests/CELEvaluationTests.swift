import KubeCore
import KubeMachinery
import XCTest

final class CELEvaluationTests: XCTestCase {
    let object: JSONValue = [
        "spec": ["replicas": 3, "ratio": 0.5, "name": "web", "tags": ["a", "b"], "labels": ["app": "web"], "empty": nil],
    ]

    // MARK: JSON mapping and access

    func testJSONMapsOntoCELValues() {
        assertCEL("self.spec.replicas", .int(3), self: object)
        assertCEL("self.spec.ratio", .double(0.5), self: object)
        assertCEL("self.spec.tags", .list([.string("a"), .string("b")]), self: object)
        assertCEL("self.spec.labels", .map(["app": .string("web")]), self: object)
        assertCEL("self.spec.empty", .null, self: object)
        assertCEL("self.spec.empty == null", .bool(true), self: object)
    }

    func testMissingFieldIsANoSuchKeyErrorAtTheSelection() {
        let error = assertCELError("self.spec.missing", contains: "no such key: missing", self: object)
        XCTAssertEqual(error?.position, 9)
    }

    func testSelectingFromANonMapFails() {
        assertCELError("self.spec.name.first", contains: "cannot select field 'first'", self: object)
    }

    func testIndexingListsAndMaps() {
        assertCEL("self.spec.tags[1]", .string("b"), self: object)
        assertCEL("self.spec.labels['app']", .string("web"), self: object)
        assertCEL("self['spec']['replicas']", .int(3), self: object)
        assertCEL("[10, 20][1u]", .int(20))
        assertCELError("self.spec.tags[2]", contains: "index out of range: 2", self: object)
        assertCELError("self.spec.tags[-1]", contains: "index out of range", self: object)
        assertCELError("self.spec.labels['nope']", contains: "no such key: nope", self: object)
        assertCELError("self.spec.tags['x']", contains: "list index must be an integer", self: object)
    }

    func testHasIsTrueForPresentFieldsIncludingNull() {
        assertCEL("has(self.spec)", .bool(true), self: object)
        assertCEL("has(self.spec.labels.app)", .bool(true), self: object)
        assertCEL("has(self.spec.empty)", .bool(true), self: object)
    }

    func testHasIsFalseForMissingFieldsAtAnyDepthNeverAnError() {
        assertCEL("has(self.spec.timeout)", .bool(false), self: object)
        assertCEL("has(self.status.phase)", .bool(false), self: object)
        assertCEL("has(self.a.b.c.d)", .bool(false), self: ["x": 1])
        assertCEL("has(self.spec.empty.x)", .bool(false), self: object)
    }

    func testHasOnAScalarIsAnError() {
        assertCELError("has(self.spec.name.x)", contains: "has() cannot test field 'x'", self: object)
    }

    // MARK: Arithmetic

    func testIntArithmetic() {
        assertCEL("7 + 3", .int(10))
        assertCEL("7 - 10", .int(-3))
        assertCEL("7 * 3", .int(21))
        assertCEL("7 / 2", .int(3))
        assertCEL("-7 / 2", .int(-3))
        assertCEL("7 % 3", .int(1))
        assertCEL("-7 % 3", .int(-1))
    }

    func testIntOverflowAndDivisionByZeroAreErrors() {
        assertCELError("9223372036854775807 + 1", contains: "integer overflow")
        assertCELError("-9223372036854775808 - 1", contains: "integer overflow")
        assertCELError("4611686018427387904 * 2", contains: "integer overflow")
        assertCELError("-9223372036854775808 / -1", contains: "integer overflow")
        assertCELError("-9223372036854775808 % -1", contains: "integer overflow")
        assertCELError("-(-9223372036854775808)", contains: "integer overflow")
        assertCELError("1 / 0", contains: "division by zero")
        assertCELError("1 % 0", contains: "modulus by zero")
    }

    func testUintArithmeticAndUnderflow() {
        assertCEL("3u + 4u", .uint(7))
        assertCEL("10u / 3u", .uint(3))
        assertCEL("10u % 3u", .uint(1))
        assertCELError("1u - 2u", contains: "unsigned integer overflow")
        assertCELError("18446744073709551615u + 1u", contains: "unsigned integer overflow")
        assertCELError("-1u", contains: "no such overload")
    }

    func testDoubleArithmeticFollowsIEEE() {
        assertCEL("1.5 + 2.25", .double(3.75))
        assertCEL("1.0 / 0.0", .double(.infinity))
        assertCEL("3.0 * -2.0", .double(-6))
        assertCELError("5.0 % 2.0", contains: "no such overload")
    }

    func testMixedNumericArithmeticIsNotAllowed() {
        assertCELError("1 + 1.0", contains: "no such overload: int + double")
        assertCELError("1 + 1u", contains: "no such overload: int + uint")
    }

    func testStringBytesAndListConcatenation() {
        assertCEL("'ab' + 'cd'", .string("abcd"))
        assertCEL("b'a' + b'b'", .bytes([97, 98]))
        assertCEL("[1] + [2, 3]", .list([.int(1), .int(2), .int(3)]))
        assertCEL("self.spec.tags + ['c']", .list(["a", "b", "c"].map(CELValue.string)), self: object)
        assertCELError("'a' + 1", contains: "no such overload: string + int")
    }

    // MARK: Comparison

    func testEqualityIsHeterogeneousForNumbers() {
        assertCEL("1 == 1.0", .bool(true))
        assertCEL("1u == 1", .bool(true))
        assertCEL("1 != 2.5", .bool(true))
        assertCEL("'1' == 1", .bool(false))
        assertCEL("null == false", .bool(false))
        assertCEL("[1, 2] == [1.0, 2u]", .bool(true))
        assertCEL("{'a': [1]} == {'a': [1]}", .bool(true))
        assertCEL("{'a': 1} == {'b': 1}", .bool(false))
        assertCEL("self.spec.labels == {'app': 'web'}", .bool(true), self: object)
    }

    func testOrderingAcrossNumericTypes() {
        assertCEL("1 < 1.5", .bool(true))
        assertCEL("2 > 1.5", .bool(true))
        assertCEL("1u <= 1", .bool(true))
        assertCEL("-1 < 0u", .bool(true))
        assertCEL("9223372036854775807 < 9.3e18", .bool(true))
        assertCEL("18446744073709551615u > 9223372036854775807", .bool(true))
        assertCEL("3 >= 3.0", .bool(true))
        assertCEL("self.spec.replicas > self.spec.ratio", .bool(true), self: object)
    }

    func testOrderingOfStringsBytesAndBools() {
        assertCEL("'abc' < 'abd'", .bool(true))
        assertCEL("'Z' < 'a'", .bool(true))
        assertCEL("'' < 'a'", .bool(true))
        assertCEL("b'a' < b'b'", .bool(true))
        assertCEL("false < true", .bool(true))
    }

    func testOrderingIncomparableTypesIsAnError() {
        assertCELError("'a' < 1", contains: "no such overload: string < int")
        assertCELError("[1] < [2]", contains: "no such overload")
    }

    func testNaNComparesFalse() {
        assertCEL("0.0/0.0 < 1.0", .bool(false))
        assertCEL("0.0/0.0 == 0.0/0.0", .bool(false))
    }

    // MARK: Logic

    func testLogicalOperatorsOnBools() {
        assertCEL("true && false", .bool(false))
        assertCEL("true || false", .bool(true))
        assertCEL("!false", .bool(true))
        assertCEL("!!true", .bool(true))
        assertCELError("!1", contains: "no such overload")
    }

    func testAndAbsorbsErrorsWhenEitherSideIsFalse() {
        assertCEL("false && self.missing", .bool(false), self: object)
        assertCEL("self.missing && false", .bool(false), self: object)
        assertCEL("false && 1 / 0 == 1", .bool(false))
        assertCEL("1 / 0 == 1 && false", .bool(false))
    }

    func testOrAbsorbsErrorsWhenEitherSideIsTrue() {
        assertCEL("true || self.missing", .bool(true), self: object)
        assertCEL("self.missing || true", .bool(true), self: object)
        assertCEL("'x' || true", .bool(true))
    }

    func testLogicalErrorsPropagateWhenNotDecided() {
        assertCELError("true && self.missing", contains: "no such key: missing", self: object)
        assertCELError("self.missing || false", contains: "no such key: missing", self: object)
        assertCELError("self.a || self.b", contains: "no such key: a", self: object)
        assertCELError("true && 'x'", contains: "no such overload")
    }

    func testTernaryEvaluatesOnlyTheChosenBranch() {
        assertCEL("true ? 1 : 1 / 0", .int(1))
        assertCEL("self.spec.replicas > 2 ? 'many' : 'few'", .string("many"), self: object)
        assertCELError("1 ? 2 : 3", contains: "ternary condition must be a bool")
    }

    // MARK: Membership

    func testInForListsAndMaps() {
        assertCEL("'a' in self.spec.tags", .bool(true), self: object)
        assertCEL("'z' in self.spec.tags", .bool(false), self: object)
        assertCEL("2 in [1, 2.0]", .bool(true))
        assertCEL("'app' in self.spec.labels", .bool(true), self: object)
        assertCEL("'web' in self.spec.labels", .bool(false), self: object)
        assertCEL("1 in {'a': 1}", .bool(false))
        assertCELError("'a' in 'abc'", contains: "no such overload")
    }

    // MARK: Variables

    func testOldSelfIsBoundOnUpdateAndAnErrorOtherwise() {
        assertCEL("self.x == oldSelf.x", .bool(true), self: ["x": 1], oldSelf: ["x": 1])
        assertCEL("self.x == oldSelf.x", .bool(false), self: ["x": 1], oldSelf: ["x": 2])
        assertCELError("self.x == oldSelf.x", contains: "oldSelf is only available", self: ["x": 1])
    }

    func testTypeIdentifiersEvaluateToTypes() {
        assertCEL("type(1) == int", .bool(true))
        assertCEL("type('a') == string", .bool(true))
        assertCEL("type(self.spec.labels) == map", .bool(true), self: object)
        assertCEL("type(1u)", .type("uint"))
        assertCEL("type(null)", .type("null_type"))
        assertCEL("type(int)", .type("type"))
    }
}
