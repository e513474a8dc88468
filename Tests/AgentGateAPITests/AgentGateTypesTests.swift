import AgentGateAPI
import KubeCore
import XCTest

/// Behaviour of the Swift types beyond their fields: kind lookup, lists, duration helpers.
final class AgentGateTypesTests: XCTestCase {
    func testKindsAreFoundByAnyNameKubectlAccepts() {
        for name in ["agc", "AgentConnection", "agentconnections", "agentconnection"] {
            XCTAssertEqual(AgentGateKinds.lookup(name), AgentGateKinds.agentConnection, name)
        }
        XCTAssertEqual(AgentGateKinds.lookup("mr"), AgentGateKinds.maskingRule)
        XCTAssertEqual(AgentGateKinds.lookup("RP"), AgentGateKinds.recordingPolicy)
        XCTAssertNil(AgentGateKinds.lookup("pods"))
        XCTAssertEqual(AgentGateKinds.recordingPolicy.crdName, "recordingpolicies.agentgate.io")
    }

    func testListDecodesWithoutItemsAndKeepsItsKind() throws {
        let document: JSONValue = ["apiVersion": "agentgate.io/v1alpha1", "kind": "MaskingRuleList",
                                   "metadata": ["resourceVersion": "7"]]
        let empty = try document.decode(AgentGateList<MaskingRule>.self)
        XCTAssertEqual(empty.items, [])
        XCTAssertEqual(empty.metadata.resourceVersion, "7")
        let list = AgentGateList(items: [RecordingPolicy(metadata: ObjectMeta(name: "p", namespace: "demo"))])
        XCTAssertEqual(list.kind, "RecordingPolicyList")
        XCTAssertEqual(try JSONValue(encoding: list)["items"]?.arrayValue?.first?["kind"], "RecordingPolicy")
        XCTAssertEqual(list.items.first?.key, "demo/p")
    }

    func testDurationHelpersApplyDefaultsAndParseGoSyntax() {
        XCTAssertEqual(CredentialPolicy().tokenTTLSeconds, 3600)
        XCTAssertEqual(CredentialPolicy().rotateBeforeSeconds, 600)
        XCTAssertEqual(CredentialPolicy(tokenTTL: "1h30m").tokenTTLSeconds, 5400)
        XCTAssertEqual(ApprovalPolicy().timeoutSeconds, 600)
        XCTAssertEqual(RecordingPolicySpec().retentionSeconds, 720 * 3600)
        XCTAssertEqual(AlertRule(name: "a", threshold: 1).windowSeconds, 60)
        XCTAssertNil(CredentialPolicy(tokenTTL: "an hour").tokenTTLSeconds)
    }
}
