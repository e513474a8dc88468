import AgentGateAPI
import KubeCore
import XCTest

/// The Swift types and the CRD schemas describe the same fields: a field added, removed,
/// retyped, made optional or given another enum value on one side only fails here.
final class CRDSchemaDriftTests: XCTestCase {
    func testAgentConnectionTypeMatchesItsCRDSchema() throws {
        let schema = try AgentGateCRDs.openAPISchema(for: AgentGateKinds.agentConnection)
        XCTAssertEqual(SchemaDriftChecker.check(AgentConnection.self, against: schema), [])
    }

    func testMaskingRuleTypeMatchesItsCRDSchema() throws {
        let schema = try AgentGateCRDs.openAPISchema(for: AgentGateKinds.maskingRule)
        XCTAssertEqual(SchemaDriftChecker.check(MaskingRule.self, against: schema), [])
    }

    func testRecordingPolicyTypeMatchesItsCRDSchema() throws {
        let schema = try AgentGateCRDs.openAPISchema(for: AgentGateKinds.recordingPolicy)
        XCTAssertEqual(SchemaDriftChecker.check(RecordingPolicy.self, against: schema), [])
    }

    // MARK: The checker catches drift (each test drifts one side on purpose)

    func testFieldAddedOnlyToTheCRDIsReported() throws {
        var schema = try AgentGateCRDs.openAPISchema(for: AgentGateKinds.agentConnection)
        schema.set(["type": "string"], at: ["properties", "spec", "properties", "priorityClassName"])
        schema.set(["type": "integer"], at: ["properties", "status", "properties", "credential", "properties", "failures"])

        XCTAssertEqual(SchemaDriftChecker.check(AgentConnection.self, against: schema), [
            "CRD field spec.priorityClassName has no Swift field",
            "CRD field status.credential.failures has no Swift field",
        ])
    }

    func testFieldAddedOnlyToTheSwiftTypeIsReported() throws {
        let schema = try AgentGateCRDs.openAPISchema(for: AgentGateKinds.recordingPolicy)
        XCTAssertEqual(SchemaDriftChecker.check(DriftedRecordingPolicy.self, against: schema), [
            "Swift field spec.capture.compressBodies is not in the CRD schema",
        ])
    }

    func testEnumValueAddedOnOneSideIsReported() throws {
        var schema = try AgentGateCRDs.openAPISchema(for: AgentGateKinds.recordingPolicy)
        let path = ["properties", "spec", "properties", "failureMode", "enum"]
        schema.set(["FailClosed", "FailOpen", "FailSoft"], at: path)
        XCTAssertEqual(SchemaDriftChecker.check(RecordingPolicy.self, against: schema), [
            "CRD enum values [\"FailSoft\"] at spec.failureMode have no case in Swift enum FailureMode",
        ])
        schema.set(["FailClosed"], at: path)
        XCTAssertEqual(SchemaDriftChecker.check(RecordingPolicy.self, against: schema), [
            "Swift enum FailureMode values [\"FailOpen\"] are not in the CRD enum at spec.failureMode",
        ])
    }

    func testEnumDriftInsideAListIsReported() throws {
        var schema = try AgentGateCRDs.openAPISchema(for: AgentGateKinds.maskingRule)
        let path = ["properties", "spec", "properties", "detectors", "items", "enum"]
        let detectors = schema[path: path]?.arrayValue ?? []
        schema.set(.array(detectors + ["stripeKey"]), at: path)
        XCTAssertEqual(SchemaDriftChecker.check(MaskingRule.self, against: schema), [
            "CRD enum values [\"stripeKey\"] at spec.detectors[] have no case in Swift enum SecretDetector",
        ])
    }

    func testRetypedAndOptionalityDriftIsReported() throws {
        var schema = try AgentGateCRDs.openAPISchema(for: AgentGateKinds.agentConnection)
        schema.set(["type": "string"], at: ["properties", "status", "properties", "pendingApprovals"])
        schema.set(["identity"], at: ["properties", "spec", "required"])
        schema.set(["name", "verbs"], at: ["properties", "spec", "properties", "approval", "properties", "rules",
                                          "items", "required"])

        XCTAssertEqual(SchemaDriftChecker.check(AgentConnection.self, against: schema), [
            "CRD requires spec.approval.rules[].verbs but the Swift field is optional",
            "Swift field spec.serviceAccountName is non-optional but the CRD does not require it",
            "Swift field status.pendingApprovals is Int32 but the CRD declares type string",
        ])
    }
}

/// RecordingPolicy with one field the CRD lacks (`spec.capture.compressBodies`).
private struct DriftedRecordingPolicy: Decodable {
    struct Spec: Decodable {
        var capture: Capture?
        var retention: String?
        var failureMode: FailureMode?
        var alerts: [AlertRule]?
        var alertWebhook: AlertWebhook?
    }
    struct Capture: Decodable {
        var requestBodies: Bool?
        var responseBodies: Bool?
        var maxBodyBytes: Int64?
        var watchEvents: Bool?
        var execStreams: Bool?
        var compressBodies: Bool?
    }
    var apiVersion: String
    var kind: String
    var metadata: ObjectMeta
    var spec: Spec
    var status: RecordingPolicyStatus?
}
