import KubeCore
import KubeMachinery
import XCTest

final class CELSyntaxTests: XCTestCase {
    func testIntegerLiteralsIncludingHexAndMinimumInt() {
        assertCEL("42", .int(42))
        assertCEL("0x1F", .int(31))
        assertCEL("-9223372036854775808", .int(Int64.min))
        assertCEL("9223372036854775807", .int(Int64.max))
    }

    func testIntegerLiteralOutOfRangeIsACompileError() {
        assertCELError("9223372036854775808", contains: "out of range")
        assertCELError("99999999999999999999", contains: "out of range")
    }

    func testUnsignedLiteralsTakeTheUSuffix() {
        assertCEL("1u", .uint(1))
        assertCEL("18446744073709551615U", .uint(UInt64.max))
        assertCEL("0xFFu", .uint(255))
    }

    func testDoubleLiteralsWithFractionAndExponent() {
        assertCEL("1.5", .double(1.5))
        assertCEL(".25", .double(0.25))
        assertCEL("1e3", .double(1000))
        assertCEL("2.5E-1", .double(0.25))
        assertCEL("-0.5", .double(-0.5))
    }

    func testStringLiteralsInAllQuoteStylesWithEscapes() {
        assertCEL(#"'single'"#, .string("single"))
        assertCEL(#""double""#, .string("double"))
        assertCEL(#"'tab\tnewline\n quote\' dq\" backslash\\'"#, .string("tab\tnewline\n quote' dq\" backslash\\"))
        assertCEL(#"'\x41\u00e9\U0001F600\101'"#, .string("Aé😀A"))
        assertCEL("'''multi\nline 'quoted' '''", .string("multi\nline 'quoted' "))
        assertCEL(#""""triple "double" quotes""""#, .string(#"triple "double" quotes"#))
    }

    func testRawStringsKeepBackslashes() {
        assertCEL(#"r'\d+\.\w'"#, .string(#"\d+\.\w"#))
        assertCEL(#"R"a\nb""#, .string(#"a\nb"#))
        assertCEL(#"r'''x\y'''"#, .string(#"x\y"#))
    }

    func testBytesLiterals() {
        assertCEL(#"b'abc'"#, .bytes([97, 98, 99]))
        assertCEL(#"b'\xff\000'"#, .bytes([255, 0]))
        assertCEL(#"b'é'"#, .bytes([0xC3, 0xA9]))
        assertCEL(#"rb'\x'"#, .bytes([92, 120]))
    }

    func testBoolNullListAndMapLiterals() {
        assertCEL("true", .bool(true))
        assertCEL("false", .bool(false))
        assertCEL("null", .null)
        assertCEL("[1, 'a', [true]]", .list([.int(1), .string("a"), .list([.bool(true)])]))
        assertCEL("[]", .list([]))
        assertCEL("[1, 2,]", .list([.int(1), .int(2)]))
        assertCEL("{'a': 1, 'b': [2]}", .map(["a": .int(1), "b": .list([.int(2)])]))
        assertCEL("{}", .map([:]))
    }

    func testCommentsAndWhitespaceAreIgnored() {
        assertCEL("1 + // one\n 2", .int(3))
    }

    func testSyntaxErrorReportsPositionLineAndColumn() {
        let error = assertCELError("self.a +", contains: "syntax error")
        XCTAssertEqual(error?.position, 8)
        XCTAssertEqual(error?.line, 1)
        XCTAssertEqual(error?.column, 9)

        let second = assertCELError("self.a &&\n  (self.b || self.c", contains: "expected ')'")
        XCTAssertEqual(second?.line, 2)
        XCTAssertEqual(second?.column, 20)

        let third = assertCELError("[1, 2", contains: "expected ']'")
        XCTAssertEqual(third?.position, 5)
    }

    func testUnexpectedCharacterIsReportedWhereItIs() {
        let error = assertCELError("self.x # 2", contains: "unexpected character '#'")
        XCTAssertEqual(error?.position, 7)
        XCTAssertEqual(error?.description, "1:8: unexpected character '#'")
    }

    func testUnterminatedStringAndBadEscapeAreCompileErrors() {
        XCTAssertEqual(assertCELError("'abc", contains: "unterminated")?.position, 0)
        XCTAssertEqual(assertCELError(#"'a\qb'"#, contains: "invalid escape")?.position, 2)
        assertCELError("'line\nbreak'", contains: "newline")
    }

    func testUndeclaredIdentifiersAreRejectedAtCompileTime() {
        let error = assertCELError("self.a == other", contains: "undeclared reference to 'other'")
        XCTAssertEqual(error?.position, 10)
        assertCELError("self.all(x, y > 0)", contains: "undeclared reference to 'y'")
    }

    func testReservedWordsAndMessageConstructionAreRejected() {
        assertCELError("if", contains: "reserved identifier")
        assertCELError("Foo{a: 1}", contains: "not supported")
    }

    func testInvalidLiteralRegexIsACompileErrorAtThePattern() {
        let error = assertCELError("self.matches('([a-z')", contains: "invalid regular expression")
        XCTAssertEqual(error?.position, 13)
    }

    func testMacroArgumentsAreChecked() {
        assertCELError("[1].all(1, true)", contains: "variable name")
        assertCELError("[1].exists(x)", contains: "takes 2")
        assertCELError("has(self)", contains: "field selection")
    }

    func testDeepNestingIsRejectedNotCrashing() {
        let deep = String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000)
        assertCELError(deep, contains: "nested too deeply")
        assertCELError(String(repeating: "!", count: 5000) + "true", contains: "nested too deeply")
        assertCELError(String(repeating: "1 + ", count: 5000) + "1", contains: "nested too deeply")
        assertCELError("self" + String(repeating: ".a", count: 5000), contains: "nested too deeply")
        assertCELError(String(repeating: "[", count: 5000), contains: "nested too deeply")
    }

    func testLongConjunctionsStayShallowBecauseTheyAreBalanced() throws {
        let source = Array(repeating: "true", count: 2000).joined(separator: " && ")
        XCTAssertEqual(try celEval(source), .bool(true))
    }

    func testOperatorPrecedence() {
        assertCEL("1 + 2 * 3", .int(7))
        assertCEL("(1 + 2) * 3", .int(9))
        assertCEL("10 - 4 - 3", .int(3))
        assertCEL("true || false && false", .bool(true))
        assertCEL("1 < 2 == true", .bool(true))
        assertCEL("!true || true", .bool(true))
        assertCEL("-2 * 3", .int(-6))
        assertCEL("false ? 1 : true ? 2 : 3", .int(2))
        assertCEL("1 + 1 in [2]", .bool(true))
    }

    func testNegationBindsLooserThanMemberAccess() {
        assertCEL("-'abc'.size()", .int(-3))
        assertCEL("-[1, 2][1]", .int(-2))
        assertCEL("--1", .int(1))
    }
}
