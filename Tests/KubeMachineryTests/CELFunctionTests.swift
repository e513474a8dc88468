import KubeCore
import KubeMachinery
import XCTest

final class CELFunctionTests: XCTestCase {
    // MARK: size

    func testSizeInFunctionAndMethodFormCountsCodePoints() {
        assertCEL("size('héllo')", .int(5))
        assertCEL("'😀👍'.size()", .int(2))
        assertCEL("size(b'\\xff\\x00')", .int(2))
        assertCEL("[1, 2, 3].size()", .int(3))
        assertCEL("size({'a': 1})", .int(1))
        assertCEL("size(self.items) > 0", .bool(true), self: ["items": [1]])
        assertCELError("size(1)", contains: "no such overload: size(int)")
    }

    // MARK: Strings

    func testStringPrefixSuffixAndContainment() {
        assertCEL("'https://x'.startsWith('https://')", .bool(true))
        assertCEL("'http://x'.startsWith('https://')", .bool(false))
        assertCEL("'file.yaml'.endsWith('.yaml')", .bool(true))
        assertCEL("'abc'.endsWith('')", .bool(true))
        assertCEL("'kubernetes'.contains('bern')", .bool(true))
        assertCEL("'kubernetes'.contains('x')", .bool(false))
        assertCELError("'a'.startsWith(1)", contains: "no such overload: string.startsWith(int)")
    }

    func testMatchesFindsThePatternAnywhereLikeRE2() {
        assertCEL("'abc-123'.matches('[0-9]+')", .bool(true))
        assertCEL("'abc-123'.matches('^[0-9]+$')", .bool(false))
        assertCEL("matches('v1beta1', '^v[0-9]+(alpha|beta)[0-9]+$')", .bool(true))
        assertCEL("self.name.matches(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')", .bool(true), self: ["name": "my-app"])
        assertCEL("self.name.matches(self.pattern)", .bool(true), self: ["name": "ab", "pattern": "^a"])
        assertCELError("'a'.matches(self.p)", contains: "invalid regular expression", self: ["p": "("])
    }

    func testAsciiCaseAndTrim() {
        assertCEL("'MiXeD Ünï'.lowerAscii()", .string("mixed Ünï"))
        assertCEL("'MiXeD ünï'.upperAscii()", .string("MIXED üNï"))
        assertCEL("'  \\t padded \\n'.trim()", .string("padded"))
    }

    func testKubernetesStringExtensions() {
        assertCEL("'a,b,c'.split(',')", .list(["a", "b", "c"].map(CELValue.string)))
        assertCEL("'a,b,c'.split(',', 2)", .list(["a", "b,c"].map(CELValue.string)))
        assertCEL("['a', 'b'].join('-')", .string("a-b"))
        assertCEL("['a', 'b'].join()", .string("ab"))
        assertCEL("'aXbX'.replace('X', '.')", .string("a.b."))
        assertCEL("'hello'.indexOf('l')", .int(2))
        assertCEL("'hello'.lastIndexOf('l')", .int(3))
        assertCEL("'hello'.indexOf('z')", .int(-1))
        assertCEL("'hello'.indexOf('l', 4)", .int(-1))
        assertCEL("'héllo'.substring(1, 3)", .string("él"))
        assertCEL("'hello'.charAt(1)", .string("e"))
        assertCELError("'abc'.substring(2, 9)", contains: "out of range")
        assertCELError("[1].join()", contains: "list of strings")
    }

    func testKubernetesListExtensions() {
        assertCEL("[1, 2, 2, 5].isSorted()", .bool(true))
        assertCEL("['b', 'a'].isSorted()", .bool(false))
        assertCEL("[1, 2, 3].sum()", .int(6))
        assertCEL("[1.5, 2.5].sum()", .double(4))
        assertCEL("[3, 1, 2].min()", .int(1))
        assertCEL("[3, 1, 2].max()", .int(3))
        assertCEL("['a', 'b', 'a'].indexOf('a')", .int(0))
        assertCEL("['a', 'b', 'a'].lastIndexOf('a')", .int(2))
        assertCELError("[].max()", contains: "empty list")
    }

    func testUnknownFunctionIsAnError() {
        assertCELError("frobnicate(1)", contains: "undeclared reference to function 'frobnicate'")
        assertCELError("'a'.frobnicate()", contains: "no such overload: string.frobnicate()")
    }

    // MARK: Macros

    let rules: JSONValue = ["rules": [["verbs": ["get"]], ["verbs": ["list", "watch"]]]]

    func testAllHoldsWhenEveryElementSatisfies() {
        assertCEL("self.rules.all(r, r.verbs.size() > 0)", .bool(true), self: rules)
        assertCEL("self.rules.all(r, r.verbs.size() > 1)", .bool(false), self: rules)
        assertCEL("[].all(x, x > 0)", .bool(true))
    }

    func testExistsAndExistsOne() {
        assertCEL("self.rules.exists(r, 'watch' in r.verbs)", .bool(true), self: rules)
        assertCEL("[1, 2, 3].exists(x, x > 5)", .bool(false))
        assertCEL("[1, 2, 3].exists_one(x, x > 2)", .bool(true))
        assertCEL("[1, 2, 3].exists_one(x, x > 1)", .bool(false))
    }

    func testMapAndFilter() {
        assertCEL("[1, 2, 3].map(x, x * 10)", .list([.int(10), .int(20), .int(30)]))
        assertCEL("[1, 2, 3, 4].filter(x, x % 2 == 0)", .list([.int(2), .int(4)]))
        assertCEL("[1, 2, 3, 4].map(x, x > 2, x * x)", .list([.int(9), .int(16)]))
        assertCEL("self.rules.map(r, r.verbs.size())", .list([.int(1), .int(2)]), self: rules)
    }

    func testMacrosOverMapsIterateKeys() {
        assertCEL("{'b': 1, 'a': 2}.map(k, k)", .list([.string("a"), .string("b")]))
        assertCEL("self.all(k, self[k] > 0)", .bool(true), self: ["x": 1, "y": 2])
        assertCEL("self.labels.exists(k, k.startsWith('app'))", .bool(true), self: ["labels": ["app.kubernetes.io/name": "x"]])
    }

    func testNestedMacrosAndShadowing() {
        assertCEL("[[1, 2], [3]].all(l, l.all(x, x > 0))", .bool(true))
        assertCEL("[1, 2].map(x, [10, 20].map(x, x + 1))", .list([.list([.int(11), .int(21)]), .list([.int(11), .int(21)])]))
    }

    func testAllAndExistsAreCommutativeOverErrors() {
        // A false element decides `all` even when another element errors, in either order.
        assertCEL("[0, 1].all(x, 1 / x > 0 && x > 5)", .bool(false))
        assertCEL("[1, 0].all(x, x > 5 && 1 / x > 0)", .bool(false))
        assertCEL("[0, 2].exists(x, 4 / x == 2)", .bool(true))
        assertCELError("[0, 1].all(x, 1 / x > 0)", contains: "division by zero")
        assertCELError("[0, 1].exists(x, 1 / x > 5)", contains: "division by zero")
        assertCELError("[1, 0].exists_one(x, 1 / x == 1)", contains: "division by zero")
    }

    func testMacroPredicateMustBeBool() {
        assertCELError("[1].filter(x, x)", contains: "must return bool")
        assertCELError("1.all(x, true)", contains: "applies to lists and maps")
    }

    // MARK: Conversions

    func testIntConversions() {
        assertCEL("int('42')", .int(42))
        assertCEL("int(-3.9)", .int(-3))
        assertCEL("int(7u)", .int(7))
        assertCEL("int(timestamp('1970-01-01T00:01:00Z'))", .int(60))
        assertCELError("int('4x')", contains: "cannot convert '4x' of type string to int")
        assertCELError("int(1e19)", contains: "cannot convert")
        assertCELError("int(18446744073709551615u)", contains: "cannot convert")
    }

    func testUintAndDoubleConversions() {
        assertCEL("uint(5)", .uint(5))
        assertCEL("uint('7')", .uint(7))
        assertCELError("uint(-1)", contains: "cannot convert")
        assertCEL("double(2)", .double(2))
        assertCEL("double('1.5')", .double(1.5))
        assertCEL("double(3u)", .double(3))
    }

    func testStringConversions() {
        assertCEL("string(42)", .string("42"))
        assertCEL("string(42u)", .string("42"))
        assertCEL("string(1.5)", .string("1.5"))
        assertCEL("string(1e21)", .string("1e+21"))
        assertCEL("string(100000.0)", .string("100000"))
        assertCEL("string(0.0001)", .string("0.0001"))
        assertCEL("string(0.00001)", .string("1e-05"))
        assertCEL("string(true)", .string("true"))
        assertCEL("string(b'abc')", .string("abc"))
        assertCEL("string(duration('1h30m'))", .string("5400s"))
        assertCEL("string(duration('1.5s'))", .string("1.5s"))
        assertCEL("string(timestamp('2024-05-01T12:00:00+02:00'))", .string("2024-05-01T10:00:00Z"))
        assertCELError("string(b'\\xff')", contains: "invalid UTF-8")
        assertCELError("string([1])", contains: "cannot convert")
    }

    func testBoolBytesAndDynConversions() {
        assertCEL("bool('true')", .bool(true))
        assertCEL("bool('F')", .bool(false))
        assertCELError("bool('yes')", contains: "cannot convert")
        assertCEL("bytes('é')", .bytes([0xC3, 0xA9]))
        assertCEL("dyn(1) == 1", .bool(true))
    }
}
