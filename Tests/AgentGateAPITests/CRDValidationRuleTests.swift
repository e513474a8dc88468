import AgentGateAPI
import KubeCore
import XCTest

/// The CRDs' schemas and CEL rules reject the specs they are written to reject, with a
/// message that names the field, and fill in their defaults.
final class CRDValidationRuleTests: XCTestCase {
    private func sample(_ file: String) throws -> JSONValue {
        try JSONValue(yaml: try RepositoryFiles.text("samples/\(file)"))
    }

    /// The error text for `object` after `change`, or "" when it is admitted.
    private func errors(_ kind: AgentGateKind, _ file: String, _ change: (inout JSONValue) -> Void) throws -> String {
        var object = try sample(file)
        change(&object)
        switch try AgentGateCRDs.validator(for: kind).admit(object) {
        case .success: return ""
        case .failure(let errors): return errors.description
        }
    }

    func testRotateBeforeMustBeShorterThanTokenTTL() throws {
        let message = try errors(AgentGateKinds.agentConnection, "agentconnection.yaml") {
            $0.set("1h", at: ["spec", "credentials", "rotateBefore"])
        }
        XCTAssertTrue(message.contains("spec.credentials"), message)
        XCTAssertTrue(message.contains("credentials.rotateBefore must be shorter than credentials.tokenTTL"), message)
    }

    func testTokenTTLBelowTheTokenRequestMinimumIsRejected() throws {
        let message = try errors(AgentGateKinds.agentConnection, "agentconnection.yaml") {
            $0.set("5m", at: ["spec", "credentials", "tokenTTL"])
            $0.set("1m", at: ["spec", "credentials", "rotateBefore"])
        }
        XCTAssertTrue(message.contains("credentials.tokenTTL must be between 10m and 24h"), message)
    }

    func testApprovalTimeoutOutsideThirtySecondsToOneDayIsRejected() throws {
        for timeout in ["10s", "25h"] {
            let message = try errors(AgentGateKinds.agentConnection, "agentconnection.yaml") {
                $0.set(.string(timeout), at: ["spec", "approval", "timeout"])
            }
            XCTAssertTrue(message.contains("approval.timeout must be between 30s and 24h"), "\(timeout): \(message)")
        }
        XCTAssertEqual(try errors(AgentGateKinds.agentConnection, "agentconnection.yaml") {
            $0.set("30s", at: ["spec", "approval", "timeout"])
        }, "")
    }

    func testDurationsMustUseGoSyntax() throws {
        let message = try errors(AgentGateKinds.agentConnection, "agentconnection.yaml") {
            $0.set("1 hour", at: ["spec", "credentials", "tokenTTL"])
        }
        XCTAssertTrue(message.contains("spec.credentials.tokenTTL"), message)
    }

    func testIdentityMustAdmitSomeoneAndUseHTTPS() throws {
        let nobody = try errors(AgentGateKinds.agentConnection, "agentconnection.yaml") {
            $0.set(nil, at: ["spec", "identity", "allowedSubjects"])
            $0.set(nil, at: ["spec", "identity", "allowedGroups"])
        }
        XCTAssertTrue(nobody.contains("identity must admit at least one subject"), nobody)
        let plainHTTP = try errors(AgentGateKinds.agentConnection, "agentconnection.yaml") {
            $0.set("http://oidc.example.com", at: ["spec", "identity", "issuer"])
        }
        XCTAssertTrue(plainHTTP.contains("identity.issuer must be an https:// URL"), plainHTTP)
        XCTAssertEqual(try errors(AgentGateKinds.agentConnection, "agentconnection.yaml") {
            $0.set("http://127.0.0.1:18443/dev", at: ["spec", "identity", "issuer"])
        }, "")
        let lookAlike = try errors(AgentGateKinds.agentConnection, "agentconnection.yaml") {
            $0.set("http://127.0.0.1.nip.io.evil.example", at: ["spec", "identity", "issuer"])
        }
        XCTAssertTrue(lookAlike.contains("identity.issuer must be an https:// URL"), "a host that starts like loopback is refused at admission: \(lookAlike)")
    }

    func testApprovalRulesNeedApproversAndVerbs() throws {
        let noApprovers = try errors(AgentGateKinds.agentConnection, "agentconnection.yaml") {
            $0.set(nil, at: ["spec", "approval", "approverGroups"])
        }
        XCTAssertTrue(noApprovers.contains("approverGroups must name at least one group"), noApprovers)
        let badVerb = try errors(AgentGateKinds.agentConnection, "agentconnection.yaml") {
            $0.set([["name": "x", "verbs": ["delet"]]], at: ["spec", "approval", "rules"])
        }
        XCTAssertTrue(badVerb.contains("spec.approval.rules[0].verbs[0]"), badVerb)
        XCTAssertTrue(badVerb.contains("delet"), badVerb)
    }

    func testMissingServiceAccountNameIsReportedByField() throws {
        let message = try errors(AgentGateKinds.agentConnection, "agentconnection.yaml") {
            $0.set(nil, at: ["spec", "serviceAccountName"])
        }
        XCTAssertTrue(message.contains("spec.serviceAccountName: Required value"), message)
    }

    func testLabelSelectorOperatorsNeedMatchingValues() throws {
        let message = try errors(AgentGateKinds.agentConnection, "agentconnection.yaml") {
            $0.set(["matchExpressions": [["key": "tier", "operator": "In"]]], at: ["spec", "maskingRuleSelector"])
        }
        XCTAssertTrue(message.contains("values must be non-empty for In and NotIn"), message)
    }

    func testMaskingRuleNeedsSomethingToMaskAndAKnownDetector() throws {
        let empty = try errors(AgentGateKinds.maskingRule, "maskingrule.yaml") {
            $0.set(["replacement": ["style": "Hash"]], at: ["spec"])
        }
        XCTAssertTrue(empty.contains("a MaskingRule must set at least one of"), empty)
        let unknown = try errors(AgentGateKinds.maskingRule, "maskingrule.yaml") {
            $0.set(["stripeKey"], at: ["spec", "detectors"])
        }
        XCTAssertTrue(unknown.contains("spec.detectors[0]"), unknown)
    }

    func testRecordingPolicyBoundsAndEnums() throws {
        let retention = try errors(AgentGateKinds.recordingPolicy, "recordingpolicy.yaml") {
            $0.set("30m", at: ["spec", "retention"])
        }
        XCTAssertTrue(retention.contains("retention must be at least 1h"), retention)
        let mode = try errors(AgentGateKinds.recordingPolicy, "recordingpolicy.yaml") {
            $0.set("Sometimes", at: ["spec", "failureMode"])
        }
        XCTAssertTrue(mode.contains("spec.failureMode"), mode)
        let bytes = try errors(AgentGateKinds.recordingPolicy, "recordingpolicy.yaml") {
            $0.set(.int(1 << 30), at: ["spec", "capture", "maxBodyBytes"])
        }
        XCTAssertTrue(bytes.contains("spec.capture.maxBodyBytes"), bytes)
    }

    func testDefaultsFillAnEmptyRecordingPolicyAndMinimalConnection() throws {
        let policy: JSONValue = [
            "apiVersion": "agentgate.io/v1alpha1", "kind": "RecordingPolicy",
            "metadata": ["name": "p", "namespace": "demo"], "spec": [:],
        ]
        let admittedPolicy = try AgentGateCRDs.validator(for: AgentGateKinds.recordingPolicy).admit(policy).get()
        let spec = try admittedPolicy.decode(RecordingPolicy.self).spec
        XCTAssertEqual(spec.failureMode, .failClosed)
        XCTAssertEqual(spec.retention, RecordingPolicySpec.defaultRetention)
        XCTAssertEqual(spec.capture?.maxBodyBytes, CaptureSettings.defaultMaxBodyBytes)
        XCTAssertEqual(spec.capture?.execStreams, true)

        let connection = AgentConnection(
            metadata: ObjectMeta(name: "c", namespace: "demo"),
            spec: AgentConnectionSpec(serviceAccountName: "agent-sa",
                                      identity: AgentIdentity(issuer: "https://oidc.example.com", audiences: ["agentgate"],
                                                              allowedGroups: ["agents"])))
        let admitted = try AgentGateCRDs.validator(for: AgentGateKinds.agentConnection)
            .admit(try JSONValue(encoding: connection)).get().decode(AgentConnection.self)
        XCTAssertEqual(admitted.spec.credentials?.tokenTTL, CredentialPolicy.defaultTokenTTL)
        XCTAssertEqual(admitted.spec.credentials?.rotateBefore, CredentialPolicy.defaultRotateBefore)
        XCTAssertEqual(admitted.spec.identity.modelClaim, AgentIdentity.defaultModelClaim)
        XCTAssertEqual(admitted.spec.identity.subjectClaim, AgentIdentity.defaultSubjectClaim)
    }

    func testNilOptionalsAreOmittedNotNull() throws {
        let connection = AgentConnection(
            metadata: ObjectMeta(name: "c", namespace: "demo"),
            spec: AgentConnectionSpec(serviceAccountName: "agent-sa",
                                      identity: AgentIdentity(issuer: "https://oidc.example.com", audiences: ["a"])))
        let text = String(decoding: try JSONValue(encoding: connection).serialized(), as: UTF8.self)
        XCTAssertFalse(text.contains("null"), text)
        XCTAssertEqual(try JSONValue(encoding: connection)["status"], nil)
    }
}
