import AgentGateAPI
import ControllerRuntime
import Foundation
import Gateway
import KubeClient
import KubeCore
import Operator
import TestSupport
import XCTest

/// Cluster-level trust: `--trusted-issuer` decides which issuers a connection may name, and
/// `--watch-namespace` which namespaces the operator reconciles at all.
final class ClusterTrustTests: XCTestCase {
    static let trusted = "https://issuer.example.com"

    func testIssuersCompareExactlyAfterDroppingATrailingSlash() {
        let trust = TrustedIssuers(["https://idp.example.com/", "https://idp.example.com", "https://login.example.org/tenant/"])
        XCTAssertEqual(trust.issuers, ["https://idp.example.com", "https://login.example.org/tenant"])
        XCTAssertTrue(trust.trusts("https://idp.example.com"))
        XCTAssertTrue(trust.trusts("https://idp.example.com/"))
        XCTAssertTrue(trust.trusts("https://login.example.org/tenant"))
        // Look-alikes an attacker who may create connections would try.
        for lookalike in ["https://idp.example.com.evil.example", "https://IDP.example.com", "http://idp.example.com",
                          "https://idp.example.com:8443", "https://idp.example.com/other", "https://login.example.org",
                          "https://login.example.org/tenant/../evil", "https://login.example.org/tenant2", "https://idp.example.com?x=1",
                          "https://idp.example.com#", " https://idp.example.com"] {
            XCTAssertFalse(trust.trusts(lookalike), lookalike)
        }
        XCTAssertTrue(TrustedIssuers([]).trusts("https://anything.example"), "no list: every issuer, as before the flag")
    }

    func testConnectionNamingAnUntrustedIssuerIsStalledWithoutATokenOrSecret() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            let (_, client) = try await h.startOperator {
                $0.trustedIssuers = TrustedIssuers([Self.trusted + "/"])
            }
            _ = try await h.admin.create(ClusterFixture.connection("trusted"))
            _ = try await h.ready("trusted")

            // Whoever may create a connection picks an issuer they control to borrow agent-sa.
            var borrower = ClusterFixture.connection("borrower")
            borrower.spec.identity.issuer = "https://issuer.example.com.evil.example"
            _ = try await h.admin.create(borrower)
            let stalled = try await h.waitFor("borrower", "Stalled") { ($0.status?.conditions ?? []).isTrue("Stalled") }
            let condition = try XCTUnwrap(stalled.status?.conditions?.condition("Stalled"))
            XCTAssertEqual(condition.reason, "IssuerNotTrusted")
            XCTAssertTrue(condition.message.contains("\"https://issuer.example.com.evil.example\""), condition.message)
            XCTAssertTrue(condition.message.contains("trusted: https://issuer.example.com)"), condition.message)
            XCTAssertEqual(stalled.status?.conditions?.condition("Ready")?.status, "False")
            XCTAssertNil(stalled.status?.credential)
            let secret = try await h.secret("borrower")
            XCTAssertNil(secret, "no Secret for an untrusted issuer")
            XCTAssertEqual(client.statistics.count("POST", "serviceaccounts/token"), 1, "a token for the trusted connection only")
            let events = try await h.events(about: "borrower")
            XCTAssertTrue(events.contains { $0["reason"]?.stringValue == "IssuerNotTrusted" }, "\(events)")
        }
    }

    func testAServedConnectionWhoseIssuerIsNoLongerTrustedLosesItsSecretAndTheGatewayStopsServingIt() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            let registry = ConnectionRegistry()
            let watcher = ConnectionConfigWatcher(client: try h.fixture.client(), namespace: "agentgate-system", registry: registry)
            watcher.start()
            defer { watcher.stop() }

            // Served while every issuer is trusted.
            let (first, _) = try await h.startOperator {
                $0.issuerChecks = nil
            }
            _ = try await h.admin.create(ClusterFixture.connection("old"))
            _ = try await h.ready("old")
            _ = try await h.requireSecret("old")
            try await eventually(10, "the gateway serves default/old") { registry.connection(namespace: "default", name: "old") != nil }
            await h.stop(first)

            // The platform team restarts the operator with a list that leaves the issuer out.
            _ = try await h.startOperator {
                $0.trustedIssuers = TrustedIssuers(["https://other-issuer.example.com"])
            }
            let stalled = try await h.waitFor("old", "Stalled, IssuerNotTrusted") {
                $0.status?.conditions?.condition("Stalled")?.reason == "IssuerNotTrusted"
            }
            XCTAssertNil(stalled.status?.credential, "status no longer describes a credential that is gone")
            let withdrawn = try await h.secret("old")
            XCTAssertNil(withdrawn, "the credential is withdrawn")
            try await eventually(10, "the gateway stops serving default/old") { registry.connection(namespace: "default", name: "old") == nil }

            // Naming a trusted issuer again serves it again, with a new token.
            _ = try await h.admin.mergePatch(AgentConnection.resourceType, name: "old", namespace: "default",
                                             ["spec": ["identity": ["issuer": "https://other-issuer.example.com/"]]])
            _ = try await h.ready("old")
            _ = try await h.requireSecret("old")
            try await eventually(10, "the gateway serves default/old again") { registry.connection(namespace: "default", name: "old") != nil }
        }
    }

    func testWatchNamespacesReconcilesOnlyThoseUnderRoleBindingsAlone() async throws {
        try await withOperatorHarness { h in
            // The shipped RBAC, with the cluster-wide binding replaced by RoleBindings in the two
            // watched namespaces: the operator can list nothing cluster-wide.
            let rbac = try h.kubectl(["apply", "-k", OperatorHarness.repositoryRoot.appendingPathComponent("config/rbac").path])
            XCTAssertEqual(rbac.status, 0, rbac.output)
            try h.kubectl(["delete", "clusterrolebinding", "agentgate-operator"])
            for namespace in ["team-a", "team-b", "team-c"] {
                try h.kubectl(["create", "namespace", namespace])
                try await h.createServiceAccount("agent-sa", namespace: namespace)
            }
            for namespace in ["team-a", "team-b"] {
                let bound = try h.kubectl(["apply", "-f", "-"], input: """
                    apiVersion: rbac.authorization.k8s.io/v1
                    kind: RoleBinding
                    metadata: {name: agentgate-operator, namespace: \(namespace)}
                    roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: agentgate-operator}
                    subjects: [{kind: ServiceAccount, name: agentgate-operator, namespace: agentgate-system}]
                    """)
                XCTAssertEqual(bound.status, 0, bound.output)
            }
            // The binding-policy check's reads are cluster-scoped: granted alone, cluster-wide.
            let policyReads = try h.kubectl(["apply", "-f", "-"], input: """
                apiVersion: rbac.authorization.k8s.io/v1
                kind: ClusterRole
                metadata: {name: agentgate-operator-admission-policies}
                rules:
                - apiGroups: [admissionregistration.k8s.io]
                  resources: [validatingadmissionpolicies, validatingadmissionpolicybindings]
                  verbs: [get, list, watch]
                ---
                apiVersion: rbac.authorization.k8s.io/v1
                kind: ClusterRoleBinding
                metadata: {name: agentgate-operator-admission-policies}
                roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: agentgate-operator-admission-policies}
                subjects: [{kind: ServiceAccount, name: agentgate-operator, namespace: agentgate-system}]
                """)
            XCTAssertEqual(policyReads.status, 0, policyReads.output)
            let operatorToken = try await h.admin.createToken(namespace: "agentgate-system", serviceAccount: "agentgate-operator").token
            let (agentOperator, client) = try await h.startOperator(token: operatorToken) {
                $0.watchNamespaces = ["team-a", "team-b"]
                $0.issuerChecks = nil
            }
            for namespace in ["team-a", "team-b", "team-c"] {
                _ = try await h.admin.create(ClusterFixture.connection("agent", namespace: namespace))
            }
            _ = try await h.ready("agent", namespace: "team-a")
            _ = try await h.ready("agent", namespace: "team-b")
            try await eventually(10, "the manager's caches synced") { agentOperator.manager.cachesSynced }
            try await Task.sleep(for: .milliseconds(500))
            let outside = try await h.connection("agent", namespace: "team-c")
            XCTAssertNil(outside.status, "team-c is not watched")
            XCTAssertNil(outside.metadata.finalizers)
            let unwritten = try await h.secret("agent", namespace: "team-c")
            XCTAssertNil(unwritten)
            XCTAssertEqual(client.statistics.count("POST", "serviceaccounts/token"), 2)
        }
    }
}
