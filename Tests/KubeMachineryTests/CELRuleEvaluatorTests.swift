import KubeCore
import KubeMachinery
import XCTest

final class CELRuleEvaluatorTests: XCTestCase {
    let evaluator = CELRuleEvaluator()

    func testHoldingRuleReportsNothing() {
        XCTAssertNil(evaluator.evaluate(ValidationRule(rule: "self.a > 0"), value: ["a": 1], oldValue: nil))
    }

    func testFalseRuleReportsFailedRuleOrTheTrimmedMessage() {
        XCTAssertEqual(evaluator.evaluate(ValidationRule(rule: " self.a > 0 "), value: ["a": 0], oldValue: nil)?.message, "failed rule: self.a > 0")
        XCTAssertEqual(evaluator.evaluate(ValidationRule(rule: "self.a > 0", message: " a must be positive "), value: ["a": 0], oldValue: nil)?.message, "a must be positive")
    }

    func testEvaluationErrorNamesTheErrorAndTheRule() {
        let failure = evaluator.evaluate(ValidationRule(rule: "duration(self.t) < duration('1h')"), value: ["t": "soon"], oldValue: nil)
        XCTAssertEqual(failure?.message, "invalid duration 'soon': expected a Go duration such as '30s', '1h30m' or '500ms' evaluating rule: duration(self.t) < duration('1h')")
        XCTAssertEqual(evaluator.evaluate(ValidationRule(rule: "self.missing"), value: [:], oldValue: nil)?.message, "no such key: missing evaluating rule: self.missing")
    }

    func testTransitionRuleSeesTheOldValue() {
        let rule = ValidationRule(rule: "self == oldSelf", message: "Value is immutable")
        XCTAssertNil(evaluator.evaluate(rule, value: "a", oldValue: "a"))
        XCTAssertEqual(evaluator.evaluate(rule, value: "b", oldValue: "a")?.message, "Value is immutable")
    }

    func testRulesCompileOnceAndCompileErrorsAreCached() throws {
        let first = try evaluator.program(for: "self.x == 1").get()
        let second = try evaluator.program(for: "self.x == 1").get()
        XCTAssertEqual(first.source, second.source)
        guard case .failure(let error) = evaluator.program(for: "self.x ==") else { return XCTFail("expected a compile error") }
        XCTAssertEqual(error.position, 9)
        XCTAssertEqual(evaluator.evaluate(ValidationRule(rule: "self.x =="), value: ["x": 1], oldValue: nil)?.message,
                       "syntax error: expected expression but found end of input evaluating rule: self.x ==")
    }

    func testPluggedIntoTheSchemaValidatorRejectsAnInvalidObject() throws {
        let schema = try JSONValue(yaml: """
            type: object
            properties:
              spec:
                type: object
                properties:
                  timeout: {type: string}
                x-kubernetes-validations:
                - rule: "!has(self.timeout) || duration(self.timeout) >= duration('30s')"
                  message: timeout must be at least 30s
            """).decode(JSONSchemaProps.self)
        let validator = SchemaValidator(schema: schema, ruleEvaluator: evaluator)
        guard case .failure(let errors) = validator.admit(["spec": ["timeout": "5s"]]) else { return XCTFail("expected rejection") }
        XCTAssertTrue("\(errors)".contains("timeout must be at least 30s"), "\(errors)")
        guard case .success = validator.admit(["spec": ["timeout": "1m"]]) else { return XCTFail("expected admission") }
    }
}
