import AgentGateAPI
import Foundation
import KubeCore
import KubeMachinery

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

extension AgentGateCRDs {
    /// A validator for a kind's schema, with CEL rules.
    static func validator(for kind: AgentGateKind) throws -> SchemaValidator {
        SchemaValidator(schema: try JSONSchemaProps.from(try openAPISchema(for: kind)), ruleEvaluator: CELRuleEvaluator())
    }
}
