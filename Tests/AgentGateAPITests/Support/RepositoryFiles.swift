import AgentGateAPI
import Foundation
import KubeCore

/// Files of this repository the tests read (crds/, samples/, config/), found relative to this
/// source file so `swift test` works from any directory.
enum RepositoryFiles {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Support
        .deletingLastPathComponent()  // AgentGateAPITests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    static func url(_ relativePath: String) -> URL {
        root.appendingPathComponent(relativePath)
    }

    static func text(_ relativePath: String) throws -> String {
        try String(contentsOf: url(relativePath), encoding: .utf8)
    }

    /// YAML files directly in a directory, sorted by name.
    static func yamlFiles(in relativeDirectory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: url(relativeDirectory).path)
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
            .sorted()
            .map { "\(relativeDirectory)/\($0)" }
    }
}

/// Runs CRD `x-kubernetes-validations` rules with KubeCore's CEL evaluator, so schema
/// validation in these tests checks the cross-field rules too.
struct CELRuleEvaluator: ValidationRuleEvaluator {
    func evaluate(_ rule: ValidationRule, value: JSONValue, oldValue: JSONValue?) -> RuleFailure? {
        do {
            let program = try CELProgram(compiling: rule.rule)
            if program.referencesOldSelf && oldValue == nil { return nil }
            if try program.validate(self: value, oldSelf: oldValue) { return nil }
            return RuleFailure(message: rule.message ?? "failed rule: \(rule.rule)")
        } catch {
            return RuleFailure(message: "rule \(rule.rule) could not be evaluated: \(error)")
        }
    }
}

extension AgentGateCRDs {
    /// A validator for a kind's schema, with CEL rules.
    static func validator(for kind: AgentGateKind) throws -> SchemaValidator {
        SchemaValidator(schema: try JSONSchemaProps.from(try openAPISchema(for: kind)), ruleEvaluator: CELRuleEvaluator())
    }
}
