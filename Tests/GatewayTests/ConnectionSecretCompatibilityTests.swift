import AgentGateAPI
import Foundation
import Gateway
import KubeCore
import Masking
import XCTest

/// A gateway of a later version keeps reading the connection Secrets this version's operator
/// wrote: the Secret below is one as agentgate 0.1 (`agentgate.io/v1alpha1`) writes it, kept
/// verbatim. Change the code, never this text: a field the gateway can no longer read here is
/// an upgrade that breaks every installed connection until the operator rewrites its Secret.
final class ConnectionSecretCompatibilityTests: XCTestCase {
    static let configWrittenBy0_1 = #"""
        {"namespace":"demo","name":"claude-ops","generation":3,"uid":"6f1c2a7e-0d1b-4b8e-9a57-3c1f0e2d4b61",
         "serviceAccountName":"claude-ops","endpoint":"https://agentgate.example.com/c/demo/claude-ops",
         "identity":{"issuer":"https://issuer.example.com","audiences":["agentgate"],"allowedSubjects":["agent-1"],
                     "allowedGroups":["agents"],"modelClaim":"model"},
         "approval":{"rules":[{"name":"deletes","verbs":["delete","deletecollection"]},
                              {"name":"scale-to-zero","apiGroups":["apps"],"resources":["deployments"],"scaleToZero":true},
                              {"name":"exec","verbs":["get","create"],"resources":["pods"],"subresources":["exec"]}],
                     "approverGroups":["sre"],"timeout":"10m","webhookURL":"https://chat.example.com/hook"},
         "access":{"rules":[{"name":"no-secrets-in-prod","action":"Deny","resources":["secrets"],"namespaces":["prod"]}]},
         "recording":{"capture":{"requestBodies":true,"responseBodies":true,"maxBodyBytes":65536,"watchEvents":true,"execStreams":true},
                      "retention":"720h","failureMode":"FailClosed",
                      "alerts":[{"name":"exec-burst","verbs":["get","create"],"resources":["pods"],"subresources":["exec"],"threshold":5,"window":"1m"}],
                      "alertWebhook":{"url":"https://alerts.example.com/agentgate"}},
         "recordingPolicyName":"standard",
         "maskingRules":[{"name":"pci","spec":{"fieldRules":[{"name":"api-keys","apiGroups":[""],"resources":["configmaps"],"paths":["data.api-key"]}],
                                               "customPatterns":[{"name":"card","regex":"4[0-9]{15}"}],
                                               "envNamePatterns":["*_DSN"],"replacement":{"style":"Hash"}}}],
         "credentialExpiresAt":"2026-12-07T18:00:00Z"}
        """#

    func testAConnectionSecretWrittenByVersion0_1IsServedAsItWasConfigured() throws {
        let registry = ConnectionRegistry()
        try registry.apply(secret: [
            "apiVersion": "v1", "kind": "Secret",
            "metadata": ["name": "agc-demo-claude-ops", "namespace": "agentgate-system",
                         "labels": ["app.kubernetes.io/managed-by": "agentgate-operator"]],
            "data": ["config.json": .string(Data(Self.configWrittenBy0_1.utf8).base64EncodedString()),
                     "token": .string(Data("sa-token-of-claude-ops".utf8).base64EncodedString())],
        ])
        let connection = try XCTUnwrap(registry.connection(namespace: "demo", name: "claude-ops"))
        XCTAssertEqual(connection.token, "sa-token-of-claude-ops")
        let config = connection.config
        XCTAssertEqual(config.identity.allowedGroups, ["agents"])
        XCTAssertEqual(config.identity.modelClaim, "model")
        XCTAssertEqual(config.approval?.rules?.map(\.name), ["deletes", "scale-to-zero", "exec"])
        XCTAssertEqual(config.approval?.rules?[1].scaleToZero, true)
        XCTAssertEqual(config.approval?.approverGroups, ["sre"])
        XCTAssertEqual(config.access?.rules?.first?.action, .deny)
        XCTAssertEqual(config.recording.failureMode, .failClosed)
        XCTAssertEqual(config.recording.capture?.maxBodyBytes, 65536)
        XCTAssertEqual(config.recording.alerts?.first?.threshold, 5)
        XCTAssertEqual(config.maskingRules.first?.spec.replacement?.style, .hash)
        XCTAssertTrue(connection.maskingProblems.isEmpty, "\(connection.maskingProblems)")
        let masked = connection.masker.maskJSON(Array(#"{"kind":"ConfigMap","data":{"api-key":"k-123","note":"card 4111111111111111"}}"#.utf8),
                                                resource: MaskedResource(group: "", resource: "configmaps"))
        let text = String(decoding: masked, as: UTF8.self)
        XCTAssertFalse(text.contains("k-123"), text)
        XCTAssertFalse(text.contains("4111111111111111"), text)
    }
}
