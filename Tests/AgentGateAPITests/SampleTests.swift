import AgentGateAPI
import KubeCore
import XCTest

/// Every object under `samples/` decodes into its Swift type and is admitted by its CRD's
/// schema (pruning, defaults, types, patterns, CEL rules) without changes other than defaults.
final class SampleTests: XCTestCase {
    private func documents(in relativeDirectory: String) throws -> [(file: String, object: JSONValue)] {
        try RepositoryFiles.yamlFiles(in: relativeDirectory).flatMap { file in
            try JSONValue.parseYAMLDocuments(try RepositoryFiles.text(file)).map { (file: file, object: $0) }
        }
    }

    private func allSampleDocuments() throws -> [(file: String, object: JSONValue)] {
        try documents(in: "samples") + documents(in: "samples/scenario") + documents(in: "samples/sandbox")
    }

    func testThereIsOneSamplePerKind() throws {
        let kinds = try documents(in: "samples").compactMap { $0.object["kind"]?.stringValue }
        XCTAssertEqual(kinds.sorted(), ["AgentConnection", "MaskingRule", "RecordingPolicy"])
    }

    func testEveryAgentGateSampleDecodesIntoItsSwiftType() throws {
        var decoded = 0
        for (file, object) in try allSampleDocuments() {
            guard object["apiVersion"]?.stringValue == AgentGateGroup.apiVersion else { continue }
            let kind = object["kind"]?.stringValue ?? ""
            switch AgentGateKinds.lookup(kind) {
            case AgentGateKinds.agentConnection:
                let connection = try object.decode(AgentConnection.self)
                XCTAssertTrue(["agent-sa", "my-agent"].contains(connection.spec.serviceAccountName), file)
                XCTAssertEqual(try JSONValue(encoding: connection), object, "\(file) does not round-trip")
            case AgentGateKinds.maskingRule:
                let rule = try object.decode(MaskingRule.self)
                XCTAssertFalse(rule.spec.detectors?.isEmpty ?? true, file)
                XCTAssertEqual(try JSONValue(encoding: rule), object, "\(file) does not round-trip")
            case AgentGateKinds.recordingPolicy:
                let policy = try object.decode(RecordingPolicy.self)
                XCTAssertEqual(policy.spec.failureMode, .failClosed, file)
                XCTAssertEqual(try JSONValue(encoding: policy), object, "\(file) does not round-trip")
            default:
                XCTFail("\(file): unknown AgentGate kind \(kind)")
            }
            decoded += 1
        }
        XCTAssertEqual(decoded, 7, "three samples, three in the scenario, the sandbox connection")
    }

    func testEveryAgentGateSampleIsValidAgainstItsCRD() throws {
        for (file, object) in try allSampleDocuments() {
            guard object["apiVersion"]?.stringValue == AgentGateGroup.apiVersion,
                  let kind = AgentGateKinds.lookup(object["kind"]?.stringValue ?? "")
            else { continue }
            switch try AgentGateCRDs.validator(for: kind).admit(object) {
            case .success(let admitted):
                // Pruning removed nothing: every field a sample sets is in the schema.
                XCTAssertEqual(Self.droppedFields(from: object, in: admitted), [], file)
            case .failure(let errors):
                XCTFail("\(file) is invalid: \(errors)")
            }
        }
    }

    func testScenarioHasTheObjectsTheWalkthroughNeeds() throws {
        let objects = try documents(in: "samples/scenario").map(\.object)
        func names(_ kind: String) -> [String] {
            objects.filter { $0["kind"]?.stringValue == kind }.compactMap { $0[path: ["metadata", "name"]]?.stringValue }
        }
        XCTAssertEqual(names("Namespace"), ["demo"])
        XCTAssertEqual(names("ServiceAccount"), ["agent-sa"])
        XCTAssertEqual(names("Role"), ["agent-sa"])
        XCTAssertEqual(names("RoleBinding"), ["agent-sa"])
        XCTAssertEqual(names("Deployment"), ["web"])
        XCTAssertEqual(names("Secret"), ["db-credentials"])
        for object in objects where object["kind"] != "Namespace" {
            XCTAssertEqual(object[path: ["metadata", "namespace"]], "demo", "\(object["kind"] ?? nil)")
        }
        // Least privilege: the agent's Role grants no wildcard and nothing on RBAC.
        let role = try XCTUnwrap(objects.first { $0["kind"] == "Role" })
        for rule in role["rules"]?.arrayValue ?? [] {
            XCTAssertFalse(rule["verbs"]?.arrayValue?.contains("*") ?? true)
            XCTAssertFalse(rule["resources"]?.arrayValue?.contains("*") ?? true)
            XCTAssertFalse(rule["apiGroups"]?.arrayValue?.contains("rbac.authorization.k8s.io") ?? true)
        }
        // The connection references the policy and selects the masking rule of the scenario.
        let connection = try XCTUnwrap(objects.first { $0["kind"] == "AgentConnection" }).decode(AgentConnection.self)
        let masking = try XCTUnwrap(objects.first { $0["kind"] == "MaskingRule" }).decode(MaskingRule.self)
        XCTAssertEqual(connection.spec.recordingPolicyRef?.name, names("RecordingPolicy").first)
        XCTAssertEqual(connection.spec.maskingRuleSelector?.matchLabels?["agentgate.io/masking"],
                       masking.metadata.labels?["agentgate.io/masking"])
    }

    /// Paths present in `original` but missing after admission.
    static func droppedFields(from original: JSONValue, in admitted: JSONValue, path: String = "") -> [String] {
        switch (original, admitted) {
        case (.object(let a), .object(let b)):
            return a.keys.sorted().flatMap { key -> [String] in
                let childPath = path.isEmpty ? key : "\(path).\(key)"
                guard let other = b[key], let value = a[key] else { return [childPath] }
                return droppedFields(from: value, in: other, path: childPath)
            }
        case (.array(let a), .array(let b)):
            return zip(a, b).enumerated().flatMap { droppedFields(from: $1.0, in: $1.1, path: "\(path)[\($0)]") }
        default:
            return []
        }
    }
}
