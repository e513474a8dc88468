import AgentGateAPI
import ControllerRuntime
import Foundation
import KubeClient
import KubeCore
import Operator
import TestSupport
import XCTest

/// The operator mints no token while the `agentgate-serviceaccount-binding` admission policy
/// or its binding is missing: connections are Stalled (BindingPolicyMissing) with how to
/// install it, and resume when it is back; `allowMissingBindingPolicy` turns the check off.
final class BindingPolicyCheckTests: XCTestCase {
    func connection(_ name: String) -> AgentConnection {
        AgentConnection(metadata: ObjectMeta(name: name, namespace: "default"), spec: AgentConnectionSpec(
            serviceAccountName: "agent-sa",
            identity: AgentIdentity(issuer: "https://issuer.example.com", audiences: ["agentgate"], allowedSubjects: ["agent-1"])))
    }

    func stalledForMissingPolicy(_ h: OperatorHarness, _ name: String) async throws -> AgentConnection {
        try await h.waitFor(name, "Stalled, BindingPolicyMissing") { connection in
            let conditions = connection.status?.conditions ?? []
            return conditions.first { $0.type == "Stalled" }?.reason == "BindingPolicyMissing" && !conditions.isTrue("Ready")
        }
    }

    func testWithoutThePolicyNoTokenIsMintedUntilItIsInstalled() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            let deleted = try h.kubectl(["delete", "validatingadmissionpolicy", ServiceAccountBindingPolicy.name])
            XCTAssertEqual(deleted.status, 0, deleted.output)
            try await h.startOperator()
            _ = try await h.admin.create(connection("borrower"))

            let stalled = try await stalledForMissingPolicy(h, "borrower")
            let message = stalled.status?.conditions?.first { $0.type == "Stalled" }?.message ?? ""
            XCTAssertTrue(message.contains("ValidatingAdmissionPolicy agentgate-serviceaccount-binding not found"), message)
            XCTAssertTrue(message.contains("kubectl apply -k config/admission"), message)
            XCTAssertTrue(message.contains("--allow-missing-binding-policy"), message)
            let secret = try await h.secret("borrower")
            XCTAssertNil(secret, "no token was requested")
            let events = try await h.events(about: "borrower")
            XCTAssertTrue(events.contains { $0["reason"]?.stringValue == "BindingPolicyMissing" }, "\(events)")

            try await h.installBindingPolicy()
            _ = try await h.ready("borrower")
            _ = try await h.requireSecret("borrower")

            // The binding alone going away stops the next reconcile again.
            let unbound = try h.kubectl(["delete", "validatingadmissionpolicybinding", ServiceAccountBindingPolicy.name])
            XCTAssertEqual(unbound.status, 0, unbound.output)
            let again = try await stalledForMissingPolicy(h, "borrower")
            XCTAssertTrue(again.status?.conditions?.first { $0.type == "Stalled" }?.message
                .contains("ValidatingAdmissionPolicyBinding agentgate-serviceaccount-binding not found") ?? false)
        }
    }

    func testAllowMissingBindingPolicyMintsWithoutIt() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            XCTAssertEqual(try h.kubectl(["delete", "validatingadmissionpolicybinding", ServiceAccountBindingPolicy.name]).status, 0)
            try await h.startOperator { $0.allowMissingBindingPolicy = true }
            _ = try await h.admin.create(connection("trusted"))
            _ = try await h.ready("trusted")
            _ = try await h.requireSecret("trusted")
        }
    }

    func testADeletedConnectionIsCleanedUpEvenWithoutThePolicy() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            try await h.startOperator()
            _ = try await h.admin.create(connection("leaving"))
            _ = try await h.ready("leaving")
            XCTAssertEqual(try h.kubectl(["delete", "validatingadmissionpolicy", ServiceAccountBindingPolicy.name]).status, 0)
            _ = try await stalledForMissingPolicy(h, "leaving")
            XCTAssertEqual(try h.kubectl(["delete", "agc", "leaving", "--timeout=20s"]).status, 0, "the finalizer is removed")
            let secret = try await h.secret("leaving")
            XCTAssertNil(secret, "the credential went with the connection")
        }
    }
}
