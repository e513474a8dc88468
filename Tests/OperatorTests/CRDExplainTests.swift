import AgentGateAPI
import Foundation
import KubeCore
import TestSupport
import XCTest

/// `kubectl explain` on the embedded API server, which publishes each CRD's schema in its
/// OpenAPI v3 documents (`/openapi/v3/apis/agentgate.io/v1alpha1`) as kube-apiserver does.
/// The descriptions themselves are checked without a cluster by CRDManifestTests; here real
/// kubectl must print them.
final class CRDExplainTests: XCTestCase {
    func testKubectlExplainPrintsTheSpecAndANestedListsDescriptionsAndTheirFields() async throws {
        try await withOperatorHarness { h in
            let schema = try AgentGateCRDs.openAPISchema(for: AgentGateKinds.agentConnection)

            let spec = try h.kubectl(["explain", "agentconnection.spec"])
            XCTAssertEqual(spec.status, 0, spec.output)
            XCTAssertTrue(spec.stdout.contains("FIELD: spec <Object>"), spec.stdout)
            XCTAssertFalse(spec.stdout.contains("<empty>"), spec.stdout)
            XCTAssertTrue(Self.words(spec.stdout).contains(Self.words(schema[path: ["properties", "spec", "description"]]?.stringValue ?? "?")),
                          spec.stdout)
            let identity = schema[path: ["properties", "spec", "properties", "identity", "description"]]?.stringValue ?? "?"
            XCTAssertTrue(Self.words(spec.stdout).contains(Self.words(identity)), spec.stdout)

            let rules = try h.kubectl(["explain", "agentconnection.spec.approval.rules"])
            XCTAssertEqual(rules.status, 0, rules.output)
            XCTAssertTrue(rules.stdout.contains("FIELD: rules <[]Object>"), rules.stdout)
            let rulesSchema = schema[path: ["properties", "spec", "properties", "approval", "properties", "rules"]]
            XCTAssertTrue(Self.words(rules.stdout).contains(Self.words(rulesSchema?["description"]?.stringValue ?? "?")), rules.stdout)
            let scaleToZero = rulesSchema?[path: ["items", "properties", "scaleToZero", "description"]]?.stringValue ?? "?"
            XCTAssertTrue(Self.words(rules.stdout).contains(Self.words(scaleToZero)), rules.stdout)
            XCTAssertTrue(rules.stdout.contains("Default false"), rules.stdout)
        }
    }

    /// Every object in every kind's spec and status, as `kubectl explain` shows it: neither its
    /// own description nor any of its fields' reads `<empty>` or `<no description>`.
    func testKubectlExplainShowsADescriptionForEveryFieldOfEveryKind() async throws {
        try await withOperatorHarness { h in
            var explained = 0
            for kind in AgentGateKinds.all {
                let schema = try AgentGateCRDs.openAPISchema(for: kind)
                for path in Self.objectPaths(schema, prefix: []) where path.first == "spec" || path.first == "status" {
                    let field = ([kind.singular] + path).joined(separator: ".")
                    let result = try h.kubectl(["explain", field])
                    XCTAssertEqual(result.status, 0, "\(field): \(result.output)")
                    XCTAssertFalse(result.stdout.contains("<empty>"), "\(field):\n\(result.stdout)")
                    XCTAssertFalse(result.stdout.contains("<no description>"), "\(field):\n\(result.stdout)")
                    explained += 1
                }
            }
            XCTAssertGreaterThanOrEqual(explained, 20)
        }
    }

    /// Paths (as kubectl explain names them: list items are not a segment) of schema nodes
    /// that have fields of their own.
    static func objectPaths(_ node: JSONValue, prefix: [String]) -> [[String]] {
        let items = node["items"]?.objectValue != nil ? node["items"]! : node
        guard let properties = items["properties"]?.objectValue else { return [] }
        var paths = prefix.isEmpty ? [] : [prefix]
        for name in properties.keys.sorted() where !(prefix.isEmpty && name == "metadata") {
            paths += objectPaths(properties[name]!, prefix: prefix + [name])
        }
        return paths
    }

    /// Text with its line breaks and indentation collapsed, as kubectl wraps descriptions.
    static func words(_ text: String) -> String {
        text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }
}
