import XCTest
@testable import KubeCore

/// Field selector parsing, escaping, matching and supported-field validation, following
/// apimachinery's `fields.ParseSelector`.
final class FieldSelectorTests: XCTestCase {
    private func parse(_ text: String) throws -> Fields.Selector { try Fields.Selector(parsing: text) }

    private func parseError(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            let selector = try parse(text)
            XCTFail("expected \(text) to fail, got \(selector)", file: file, line: line)
            return ""
        } catch {
            return (error as? SelectorError)?.message ?? "\(error)"
        }
    }

    func testValidSelectorsParseIntoSortedTerms() throws {
        let cases: [(String, String)] = [
            ("", ""),
            (",", ""),
            ("metadata.name=a", "metadata.name=a"),
            ("metadata.name==a", "metadata.name=a"),
            ("metadata.name!=a", "metadata.name!=a"),
            ("metadata.namespace!=b,metadata.name=a", "metadata.name=a,metadata.namespace!=b"),
            ("x=", "x="),
            ("x=a\\,b", "x=a\\,b"),
            ("x=a\\=b\\\\c", "x=a\\=b\\\\c"),
        ]
        for (input, canonical) in cases {
            XCTAssertEqual(try parse(input).description, canonical, "input: \(input)")
        }
        let escaped = try parse("x=a\\,b,y!=c\\=d")
        XCTAssertEqual(escaped.requirements, [
            Fields.Requirement(field: "x", operator: .equals, value: "a,b"),
            Fields.Requirement(field: "y", operator: .notEquals, value: "c=d"),
        ])
        XCTAssertEqual(try parse("a==b").requirements, [Fields.Requirement(field: "a", operator: .doubleEquals, value: "b")])
    }

    func testMalformedSelectorsFailWithApimachineryWording() {
        XCTAssertEqual(parseError("metadata.name"), "invalid selector: 'metadata.name'; can't understand 'metadata.name'")
        XCTAssertEqual(parseError("metadata.name=name1,foo"), "invalid selector: 'metadata.name=name1,foo'; can't understand 'foo'")
        XCTAssertEqual(parseError("x=a\\b"), "invalid field selector: invalid escape sequence: \\b")
        XCTAssertEqual(parseError("x=a\\"), "invalid field selector: invalid escape sequence: \\")
        XCTAssertEqual(parseError("x=a=b"), "invalid field selector: unescaped character in value: '='")
    }

    func testMatchingTreatsAbsentFieldsAsEmpty() throws {
        let fields = ["metadata.name": "a", "metadata.namespace": "ns"]
        let cases: [(String, Bool)] = [
            ("", true),
            ("metadata.name=a", true),
            ("metadata.name==a", true),
            ("metadata.name=b", false),
            ("metadata.name!=b", true),
            ("metadata.name!=a", false),
            ("metadata.name=a,metadata.namespace=ns", true),
            ("metadata.name=a,metadata.namespace!=ns", false),
            ("spec.nodeName!=x", true),
            ("spec.nodeName=", true),
            ("spec.nodeName=x", false),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(try parse(text).matches(fields), expected, "selector: \(text)")
        }
    }

    func testRequiredFieldsAndExactMatch() throws {
        let selector = try parse("metadata.namespace!=b,metadata.name=a,metadata.name!=c")
        XCTAssertEqual(selector.requiredFields, ["metadata.name", "metadata.namespace"])
        XCTAssertEqual(selector.requiresExactMatch("metadata.name"), "a")
        XCTAssertNil(selector.requiresExactMatch("metadata.namespace"))
        XCTAssertNil(try parse("").requiresExactMatch("metadata.name"))
        XCTAssertEqual(try parse("metadata.name==x").requiresExactMatch("metadata.name"), "x")
    }

    func testUnsupportedFieldIsRejectedWithKubeApiserverMessage() throws {
        XCTAssertNoThrow(try parse("metadata.name=a,metadata.namespace=b").validate(supported: Fields.commonSupportedFields))
        XCTAssertThrowsError(try parse("metadata.name=a,spec.nodeName=n").validate(supported: Fields.commonSupportedFields)) {
            XCTAssertEqual(($0 as? SelectorError)?.message, "field label not supported: spec.nodeName")
        }
        XCTAssertNoThrow(try parse("").validate(supported: []))
    }

    func testEscapeValueRoundTrips() throws {
        for value in ["plain", "a,b", "a=b", "a\\b", "\\,=", ""] {
            let selector = try parse("f=" + Fields.escapeValue(value))
            XCTAssertEqual(selector.requirements.first?.value ?? "", value)
            XCTAssertTrue(selector.matches(["f": value]))
        }
    }
}
