import XCTest
@testable import KubeCore

/// Label selector parsing and matching, cases and messages taken from apimachinery's
/// `labels` package behaviour, plus the `metav1.LabelSelector` contract.
final class LabelSelectorTests: XCTestCase {
    private func parse(_ text: String) throws -> Labels.Selector { try Labels.Selector(parsing: text) }

    private func parseError(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            let selector = try parse(text)
            XCTFail("expected \(text) to fail, got \(selector)", file: file, line: line)
            return ""
        } catch {
            return (error as? SelectorError)?.message ?? "\(error)"
        }
    }

    func testValidSelectorsParseToTheirCanonicalForm() throws {
        let cases: [(String, String)] = [
            ("", ""),
            ("   ", ""),
            ("x=a", "x=a"),
            ("x==a", "x==a"),
            ("x!=a", "x!=a"),
            ("x=a,y!=b", "x=a,y!=b"),
            ("y!=b,x=a", "x=a,y!=b"),
            (" x = a , y != b ", "x=a,y!=b"),
            ("x in (b,a)", "x in (a,b)"),
            ("x notin (a)", "x notin (a)"),
            ("x in ( a , b )", "x in (a,b)"),
            ("x", "x"),
            ("!x", "!x"),
            ("! x", "!x"),
            ("x>1", "x>1"),
            ("x<1", "x<1"),
            ("x=", "x="),
            ("x=,z=", "x=,z="),
            ("x in ()", "x in ()"),
            ("x in (a,)", "x in (,a)"),
            ("x in (,a)", "x in (,a)"),
            ("x in (a,,b)", "x in (,a,b)"),
            ("example.com/app=web", "example.com/app=web"),
            ("in=notin", "in=notin"),
            ("x in (in,notin)", "x in (in,notin)"),
            ("x=a,\ty=b\n", "x=a,y=b"),
            // From apimachinery's TestSelectorParse / TestSetSelectorParser.
            ("x=a,y=b,z=c", "x=a,y=b,z=c"),
            ("x= ", "x="),
            ("x= ,z= ", "x=,z="),
            ("x>1,z<5", "x>1,z<5"),
            ("\rx", "x"),
            ("foo  in\t (abc)", "foo in (abc)"),
            ("x notin\n (abc)", "x notin (abc)"),
            ("0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)", "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)"),
            ("x notin (abc,def),bar,z in (),w", "bar,w,x notin (abc,def),z in ()"),
            ("this-is-a-dns.domain.com/key-with-dash", "this-is-a-dns.domain.com/key-with-dash"),
        ]
        for (input, canonical) in cases {
            XCTAssertEqual(try parse(input).description, canonical, "input: \(input)")
            // The canonical form is stable.
            XCTAssertEqual(try parse(canonical), try parse(input), "input: \(input)")
        }
    }

    func testMalformedSelectorsFailWithApimachineryWording() {
        let cases: [(String, String)] = [
            ("x=a||y=b", "unable to parse requirement: values[0][x]: Invalid value: \"a||y\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
            ("x,,y", "found ',', expected: identifier after ','"),
            ("x=a,", "found '', expected: identifier after ','"),
            (",x", "found ',', expected: !, identifier, or 'end of string'"),
            ("x in a", "unable to parse requirement: found 'a' expected: '('"),
            ("x in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
            ("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"),
            ("x in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
            ("x (a)", "unable to parse requirement: found '(', expected: '=', '!=', '==', 'in', notin'"),
            ("x y", "unable to parse requirement: found 'y', expected: '=', '!=', '==', 'in', notin'"),
            ("x=(a)", "unable to parse requirement: found '(', expected: identifier"),
            ("!x=a", "found '=', expected: ',' or 'end of string'"),
            ("x=a=b", "found '=', expected: ',' or 'end of string'"),
            ("x==a==b", "found '==', expected: ',' or 'end of string'"),
            ("x<a", "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer"),
            ("!", "unable to parse requirement: found '', expected: identifier"),
            ("x>a", "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer"),
            ("app:web", "unable to parse requirement: <nil>: Invalid value: \"app:web\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
            ("a/b/c=d", "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"),
            ("app.kubernetes_io/name=x", "unable to parse requirement: <nil>: Invalid value: \"app.kubernetes_io/name\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
        ]
        for (input, message) in cases {
            XCTAssertEqual(parseError(input), message, "input: \(input)")
        }
    }

    func testOverlongKeysAndValuesAreRejected() {
        let long = String(repeating: "a", count: 64)
        XCTAssertTrue(parseError("\(long)=x").contains("name part must be no more than 63 characters"))
        XCTAssertTrue(parseError("x=\(long)").contains("must be no more than 63 characters"))
        let longPrefix = String(repeating: "a", count: 254) + "/x"
        XCTAssertTrue(parseError(longPrefix).contains("prefix part must be no more than 253 characters"))
        XCTAssertNoThrow(try parse(String(repeating: "a", count: 63) + "=" + String(repeating: "b", count: 63)))
    }

    func testMatchingFollowsKubernetesSemantics() throws {
        let labels = ["app": "web", "tier": "front", "replicas": "3"]
        let cases: [(String, Bool)] = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("app!=web", false),
            ("missing!=x", true),
            ("missing=x", false),
            ("missing=", false),
            ("app in (db,web)", true),
            ("app in (db)", false),
            ("missing in (x)", false),
            ("app notin (db)", true),
            ("app notin (web)", false),
            ("missing notin (x)", true),
            ("app", true),
            ("missing", false),
            ("!missing", true),
            ("!app", false),
            ("replicas>2", true),
            ("replicas>3", false),
            ("replicas<4", true),
            ("app>1", false),
            ("missing<9", false),
            ("app=web,tier=front", true),
            ("app=web,tier=back", false),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(try parse(text).matches(labels), expected, "selector: \(text)")
        }
    }

    func testRequiresExactMatchFindsSingleValueEqualities() throws {
        XCTAssertEqual(try parse("a=1,b!=2").requiresExactMatch("a"), "1")
        XCTAssertEqual(try parse("a in (1)").requiresExactMatch("a"), "1")
        XCTAssertNil(try parse("a in (1,2)").requiresExactMatch("a"))
        XCTAssertNil(try parse("b!=2").requiresExactMatch("b"))
    }

    // MARK: - metav1.LabelSelector

    func testEmptyStructSelectorMatchesEverythingAndNilMatchesNothing() throws {
        XCTAssertTrue(try LabelSelector().asSelector().matches([:]))
        XCTAssertTrue(try LabelSelector(matchLabels: [:], matchExpressions: []).asSelector().matches(["a": "b"]))
        XCTAssertFalse(try LabelSelector.asSelector(nil).matches([:]))
        XCTAssertFalse(try LabelSelector.asSelector(nil).matches(["a": "b"]))
        XCTAssertTrue(try LabelSelector.asSelector(LabelSelector()).matches(["a": "b"]))
    }

    func testStructSelectorAndsMatchLabelsAndExpressions() throws {
        let selector = LabelSelector(
            matchLabels: ["app": "web"],
            matchExpressions: [
                LabelSelectorRequirement(key: "tier", operator: "In", values: ["front", "edge"]),
                LabelSelectorRequirement(key: "canary", operator: "DoesNotExist"),
                LabelSelectorRequirement(key: "env", operator: "NotIn", values: ["prod"]),
                LabelSelectorRequirement(key: "team", operator: "Exists"),
            ])
        XCTAssertEqual(try selector.asSelector().description,
                       "app=web,!canary,env notin (prod),team,tier in (edge,front)")
        XCTAssertTrue(selector.matches(["app": "web", "tier": "edge", "team": "a"]))
        XCTAssertFalse(selector.matches(["app": "web", "tier": "edge", "team": "a", "canary": "1"]))
        XCTAssertFalse(selector.matches(["app": "web", "tier": "edge", "team": "a", "env": "prod"]))
        XCTAssertFalse(selector.matches(["app": "web", "tier": "back", "team": "a"]))
        XCTAssertFalse(selector.matches(["app": "web", "tier": "edge"]))
    }

    func testStructSelectorValidationNamesTheField() {
        let selector = LabelSelector(
            matchLabels: ["bad key": "ok", "good": "bad value"],
            matchExpressions: [
                LabelSelectorRequirement(key: "a", operator: "In"),
                LabelSelectorRequirement(key: "b", operator: "Exists", values: ["x"]),
                LabelSelectorRequirement(key: "c", operator: "Gt", values: ["1"]),
                LabelSelectorRequirement(key: "d", operator: "NotIn", values: ["ok", "not ok"]),
            ])
        let errors = selector.validate(fieldPath: "spec.selector")
        XCTAssertEqual(errors.map(\.field), [
            "spec.selector.matchLabels",
            "spec.selector.matchLabels",
            "spec.selector.matchExpressions[0].values",
            "spec.selector.matchExpressions[1].values",
            "spec.selector.matchExpressions[2].operator",
            "spec.selector.matchExpressions[3].values[1]",
        ])
        XCTAssertEqual(errors[2].description,
                       "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'")
        XCTAssertEqual(errors[3].description,
                       "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        XCTAssertEqual(errors[4].description,
                       "spec.selector.matchExpressions[2].operator: Invalid value: \"Gt\": not a valid selector operator")
        XCTAssertEqual(LabelSelector(matchExpressions: [LabelSelectorRequirement(key: "a", operator: "In")])
            .validate().first?.field, "matchExpressions[0].values")
        XCTAssertEqual(LabelSelector(matchLabels: ["a": "b"]).validate(), [])
    }

    func testInvalidStructSelectorDoesNotConvert() {
        XCTAssertThrowsError(try LabelSelector(matchExpressions: [LabelSelectorRequirement(key: "a", operator: "Gt", values: ["1"])]).asSelector()) {
            XCTAssertEqual(($0 as? SelectorError)?.message, "\"Gt\" is not a valid label selector operator")
        }
        XCTAssertThrowsError(try LabelSelector(matchExpressions: [LabelSelectorRequirement(key: "a", operator: "In", values: [])]).asSelector()) {
            XCTAssertEqual(($0 as? SelectorError)?.message,
                           "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty")
        }
        XCTAssertFalse(LabelSelector(matchExpressions: [LabelSelectorRequirement(key: "a", operator: "Exists", values: ["x"])]).matches(["a": "x"]))
    }

    func testStructSelectorCodableOmitsAbsentFields() throws {
        let empty = try JSONValue(encoding: LabelSelector()).serializedString()
        XCTAssertEqual(empty, "{}")
        let withExpression = try JSONValue(encoding: LabelSelector(matchExpressions: [
            LabelSelectorRequirement(key: "a", operator: "Exists"),
        ]))
        XCTAssertEqual(withExpression, try JSONValue(parsing: #"{"matchExpressions":[{"key":"a","operator":"Exists"}]}"#))
        let decoded = try JSONValue(parsing: #"{"matchLabels":{"app":"web"},"matchExpressions":[{"key":"t","operator":"In","values":["a"]}]}"#)
            .decode(LabelSelector.self)
        XCTAssertEqual(decoded, LabelSelector(matchLabels: ["app": "web"],
                                              matchExpressions: [LabelSelectorRequirement(key: "t", operator: "In", values: ["a"])]))
    }

    // MARK: - Name validation helpers

    func testNameValidationHelpersUseApimachineryMessages() {
        XCTAssertEqual(NameValidation.isDNS1123Label("my-name"), [])
        XCTAssertEqual(NameValidation.isDNS1123Label("a.b"), ["must not contain dots"])
        XCTAssertEqual(NameValidation.isDNS1123Label("My"), [
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ])
        XCTAssertEqual(NameValidation.isDNS1123Label(String(repeating: "a", count: 64)), ["must be no more than 63 characters"])
        XCTAssertEqual(NameValidation.isDNS1123Subdomain("example.com"), [])
        XCTAssertEqual(NameValidation.isDNS1123Subdomain("-x").count, 1)
        XCTAssertEqual(NameValidation.isDNS1123Subdomain("a..b").count, 1)
        XCTAssertEqual(NameValidation.isDNS1123Subdomain(""), NameValidation.isDNS1123Subdomain("-"))
        XCTAssertEqual(NameValidation.isQualifiedName("example.com/My_Name.1"), [])
        XCTAssertEqual(NameValidation.isQualifiedName("/x"), ["prefix part must be non-empty"])
        XCTAssertEqual(NameValidation.isQualifiedName("x/").first, "name part must be non-empty")
        XCTAssertEqual(NameValidation.isValidLabelValue(""), [])
        XCTAssertEqual(NameValidation.isValidLabelValue("-x").count, 1)
        XCTAssertEqual(NameValidation.isValidLabelValue("é").count, 1)
    }
}
