import KubeCore
import KubeMachinery
import XCTest

/// Compiles and evaluates `source` with `self` (and optionally `oldSelf`).
func celEval(_ source: String, self selfValue: JSONValue = .null, oldSelf: JSONValue? = nil) throws -> CELValue {
    try CELProgram(compiling: source).evaluate(self: selfValue, oldSelf: oldSelf)
}

/// Asserts that `source` evaluates to `expected`.
func assertCEL(
    _ source: String, _ expected: CELValue, self selfValue: JSONValue = .null, oldSelf: JSONValue? = nil,
    file: StaticString = #filePath, line: UInt = #line
) {
    do {
        let value = try celEval(source, self: selfValue, oldSelf: oldSelf)
        XCTAssertEqual(value, expected, source, file: file, line: line)
    } catch {
        XCTFail("\(source) failed: \(error)", file: file, line: line)
    }
}

/// Asserts that evaluating (or compiling) `source` fails with a message containing `fragment`;
/// returns the error for further checks.
@discardableResult
func assertCELError(
    _ source: String, contains fragment: String, self selfValue: JSONValue = .null, oldSelf: JSONValue? = nil,
    file: StaticString = #filePath, line: UInt = #line
) -> CELError? {
    do {
        let value = try celEval(source, self: selfValue, oldSelf: oldSelf)
        XCTFail("\(source) evaluated to \(value), expected an error containing '\(fragment)'", file: file, line: line)
    } catch let error as CELError {
        XCTAssertTrue(error.message.contains(fragment), "\(source): '\(error.message)' lacks '\(fragment)'", file: file, line: line)
        return error
    } catch {
        XCTFail("\(source) threw a non-CEL error \(error)", file: file, line: line)
    }
    return nil
}
