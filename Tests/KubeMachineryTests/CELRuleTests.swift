import Foundation
import KubeCore
import KubeMachinery
import XCTest

/// The rules this project's CRDs carry, evaluated the way the API server will: compile once,
/// `validate` against the value at the rule's schema node.
final class CELRuleTests: XCTestCase {
    private func valid(_ rule: String, _ value: JSONValue, oldSelf: JSONValue? = nil, file: StaticString = #filePath, line: UInt = #line) -> Bool? {
        do {
            return try CELProgram(compiling: rule).validate(self: value, oldSelf: oldSelf)
        } catch {
            XCTFail("\(rule) failed: \(error)", file: file, line: line)
            return nil
        }
    }

    func testRotateBeforeMustBeShorterThanTokenTTL() {
        let rule = "duration(self.rotateBefore) < duration(self.tokenTTL)"
        XCTAssertEqual(valid(rule, ["rotateBefore": "5m", "tokenTTL": "1h"]), true)
        XCTAssertEqual(valid(rule, ["rotateBefore": "1h", "tokenTTL": "1h"]), false)
        XCTAssertEqual(valid(rule, ["rotateBefore": "90m", "tokenTTL": "1h"]), false)
    }

    func testOptionalTimeoutMustBeWithinBounds() {
        let rule = "!has(self.timeout) || (duration(self.timeout) >= duration('30s') && duration(self.timeout) <= duration('24h'))"
        XCTAssertEqual(valid(rule, [:]), true)
        XCTAssertEqual(valid(rule, ["timeout": "5m"]), true)
        XCTAssertEqual(valid(rule, ["timeout": "30s"]), true)
        XCTAssertEqual(valid(rule, ["timeout": "24h"]), true)
        XCTAssertEqual(valid(rule, ["timeout": "10s"]), false)
        XCTAssertEqual(valid(rule, ["timeout": "25h"]), false)
        XCTAssertThrowsError(try CELProgram(compiling: rule).validate(self: ["timeout": "soon"])) { error in
            XCTAssertTrue("\(error)".contains("invalid duration 'soon'"), "\(error)")
        }
    }

    func testEveryRuleNeedsVerbs() {
        let rule = "self.rules.all(r, r.verbs.size() > 0)"
        XCTAssertEqual(valid(rule, ["rules": [["verbs": ["get"]], ["verbs": ["list"]]]]), true)
        XCTAssertEqual(valid(rule, ["rules": [["verbs": ["get"]], ["verbs": []]]]), false)
        XCTAssertEqual(valid(rule, ["rules": []]), true)
    }

    func testTransitionRuleKeepsAFieldImmutable() throws {
        let program = try CELProgram(compiling: "self.x == oldSelf.x")
        XCTAssertTrue(program.referencesOldSelf)
        XCTAssertEqual(try program.validate(self: ["x": "a"], oldSelf: ["x": "a"]), true)
        XCTAssertEqual(try program.validate(self: ["x": "b"], oldSelf: ["x": "a"]), false)
        XCTAssertFalse(try CELProgram(compiling: "self.x == 'a'").referencesOldSelf)
        XCTAssertFalse(try CELProgram(compiling: "[1].all(oldSelf, oldSelf > 0)").referencesOldSelf)
    }

    func testAgentConnectionRules() {
        let issuer = #"self.issuer.matches("^https://[^/?#@ ]+([/?#].*)?$") || self.issuer.matches("^http://(127[.]0[.]0[.]1|localhost|\\[::1\\])(:[0-9]+)?([/?#].*)?$")"#
        XCTAssertEqual(valid(issuer, ["issuer": "https://idp.example.com"]), true)
        XCTAssertEqual(valid(issuer, ["issuer": "https://idp.example.com/realms/agents"]), true)
        XCTAssertEqual(valid(issuer, ["issuer": "http://localhost:5556"]), true)
        XCTAssertEqual(valid(issuer, ["issuer": "http://127.0.0.1:18445/dev"]), true)
        XCTAssertEqual(valid(issuer, ["issuer": "http://[::1]:5556"]), true)
        XCTAssertEqual(valid(issuer, ["issuer": "http://idp.example.com"]), false)
        // A loopback-looking prefix of another host is not loopback.
        XCTAssertEqual(valid(issuer, ["issuer": "http://127.0.0.1.nip.io.evil.example"]), false)
        XCTAssertEqual(valid(issuer, ["issuer": "http://localhost.evil.example"]), false)
        XCTAssertEqual(valid(issuer, ["issuer": "http://127.0.0.1@evil.example"]), false)
        XCTAssertEqual(valid(issuer, ["issuer": "https://"]), false, "https needs a host")

        let subjects = "(has(self.allowedSubjects) && size(self.allowedSubjects) > 0) || (has(self.allowedGroups) && size(self.allowedGroups) > 0)"
        XCTAssertEqual(valid(subjects, ["allowedGroups": ["sre"]]), true)
        XCTAssertEqual(valid(subjects, ["allowedSubjects": []]), false)
        XCTAssertEqual(valid(subjects, [:]), false)

        let ttl = "!has(self.tokenTTL) || !has(self.rotateBefore) || duration(self.rotateBefore) < duration(self.tokenTTL)"
        XCTAssertEqual(valid(ttl, ["tokenTTL": "1h"]), true)
        XCTAssertEqual(valid(ttl, ["tokenTTL": "1h", "rotateBefore": "2h"]), false)

        let selector = "(self.operator == \"In\" || self.operator == \"NotIn\") ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)"
        XCTAssertEqual(valid(selector, ["operator": "In", "values": ["a"]]), true)
        XCTAssertEqual(valid(selector, ["operator": "In"]), false)
        XCTAssertEqual(valid(selector, ["operator": "Exists"]), true)
        XCTAssertEqual(valid(selector, ["operator": "Exists", "values": ["a"]]), false)

        let verbs = "(has(self.verbs) && size(self.verbs) > 0) || (has(self.scaleToZero) && self.scaleToZero)"
        XCTAssertEqual(valid(verbs, ["scaleToZero": true]), true)
        XCTAssertEqual(valid(verbs, ["scaleToZero": false]), false)

        let approvers = "!has(self.rules) || size(self.rules) == 0 || (has(self.approverGroups) && size(self.approverGroups) > 0)"
        XCTAssertEqual(valid(approvers, ["rules": [["verbs": ["delete"]]]]), false)
        XCTAssertEqual(valid(approvers, ["rules": [["verbs": ["delete"]]], "approverGroups": ["sre"]]), true)
    }

    func testMaskingRuleAndRecordingPolicyRules() {
        let any = "has(self.fieldRules) || has(self.detectors) || has(self.customPatterns) || has(self.envNamePatterns)"
        XCTAssertEqual(valid(any, ["detectors": ["jwt"]]), true)
        XCTAssertEqual(valid(any, [:]), false)

        XCTAssertEqual(valid("duration(self) >= duration(\"1h\")", "720h"), true)
        XCTAssertEqual(valid("duration(self) >= duration(\"1h\")", "59m"), false)

        let window = "!has(self.window) || (duration(self.window) >= duration(\"1s\") && duration(self.window) <= duration(\"24h\"))"
        XCTAssertEqual(valid(window, ["window": "500ms"]), false)
        XCTAssertEqual(valid(window, ["window": "1m"]), true)
    }

    func testAlreadyConvertedValuesCanBeEvaluatedDirectly() throws {
        let spec = CELValue(json: ["rules": [["verbs": ["get"]]]])
        XCTAssertEqual(spec, .map(["rules": .list([.map(["verbs": .list([.string("get")])])])]))
        let program = try CELProgram(compiling: "self.rules.all(r, r.verbs.size() > 0)")
        XCTAssertEqual(try program.evaluate(self: spec), .bool(true))
    }

    func testValidateRequiresABoolResult() {
        XCTAssertThrowsError(try CELProgram(compiling: "self.x").validate(self: ["x": 1])) { error in
            XCTAssertTrue("\(error)".contains("must evaluate to a bool, got int"), "\(error)")
        }
    }

    // MARK: Limits

    func testStepLimitStopsRunawayEvaluation() throws {
        let items = JSONValue.array((0..<200).map { JSONValue.int(Int64($0)) })
        let program = try CELProgram(compiling: "self.all(a, self.all(b, self.all(c, a + b + c >= 0)))")
        XCTAssertThrowsError(try program.evaluate(self: items)) { error in
            let celError = error as? CELError
            XCTAssertEqual(celError?.isResourceLimit, true)
            XCTAssertTrue(celError?.message.contains("cost limit of 1000000 steps") == true, "\(error)")
        }
    }

    func testStepLimitIsNotAbsorbedByLogicalOperators() throws {
        let program = try CELProgram(compiling: "self.all(a, self.all(b, a >= 0)) || true", maxSteps: 1_000)
        XCTAssertThrowsError(try program.evaluate(self: .array((0..<100).map { JSONValue.int(Int64($0)) }))) { error in
            XCTAssertEqual((error as? CELError)?.isResourceLimit, true)
        }
    }

    func testStepLimitCountsWorkInsideBuiltins() throws {
        let program = try CELProgram(compiling: "self.x + self.x + self.x", maxSteps: 500)
        let big = JSONValue.array(Array(repeating: .int(1), count: 1_000))
        XCTAssertThrowsError(try program.evaluate(self: ["x": big]))
        XCTAssertNoThrow(try program.evaluate(self: ["x": [1, 2]]))
    }

    func testDeepestAcceptedRuleParsesAndEvaluatesOnASmallThreadStack() throws {
        // The API server may evaluate on a thread with a 512 KiB stack.
        let nested = String(repeating: "(", count: 60) + "self" + String(repeating: " + 1)", count: 60)
        let chain = "self" + String(repeating: " + 1", count: 120)
        let macros = "self.all(a, self.all(b, self.all(c, self.exists(d, [a, b, c, d].map(x, x + 1).filter(y, y > 0).size() == 4))))"
        final class Box: @unchecked Sendable { var results: [Result<CELValue, Error>] = [] }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            for source in [nested, chain, macros] {
                box.results.append(Result { try CELProgram(compiling: source).evaluate(self: source == macros ? [1, 2] : 0) })
            }
            done.signal()
        }
        thread.stackSize = 512 * 1024
        thread.start()
        done.wait()
        XCTAssertEqual(box.results.count, 3)
        XCTAssertEqual(try box.results[0].get(), .int(60))
        XCTAssertEqual(try box.results[1].get(), .int(120))
        XCTAssertEqual(try box.results[2].get(), .bool(true))
    }

    // MARK: Sharing and speed

    func testOneCompiledProgramIsSafeToEvaluateConcurrently() throws {
        let program = try CELProgram(compiling: "self.name.matches('^[a-z]+-[0-9]+$') && duration(self.ttl) < duration('1h')")
        let outcomes = UnsafeMutableBufferPointer<Bool>.allocate(capacity: 2_000)
        defer { outcomes.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 2_000) { i in
            let value: JSONValue = ["name": .string(i.isMultiple(of: 2) ? "web-\(i)" : "Web-\(i)"), "ttl": "30m"]
            outcomes[i] = (try? program.validate(self: value)) ?? false
        }
        for i in 0..<2_000 { XCTAssertEqual(outcomes[i], i.isMultiple(of: 2)) }
    }

    func testEvaluatingACompiledRuleIsCheap() throws {
        let program = try CELProgram(compiling: "!has(self.timeout) || (duration(self.timeout) >= duration('30s') && duration(self.timeout) <= duration('24h'))")
        let value: JSONValue = ["timeout": "5m", "other": ["a": [1, 2, 3]]]
        let start = Date()
        for _ in 0..<10_000 { XCTAssertEqual(try program.validate(self: value), true) }
        let perEvaluation = Date().timeIntervalSince(start) / 10_000
        print("CEL: \(Int(perEvaluation * 1e9)) ns per evaluation of the timeout rule")
        XCTAssertLessThan(perEvaluation, 0.001)
    }
}
