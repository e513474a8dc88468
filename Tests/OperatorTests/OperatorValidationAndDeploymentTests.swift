import AgentGateAPI
import ControllerRuntime
import Foundation
import KubeClient
import KubeCore
import LocalCluster
import Operator
import TestSupport
import XCTest

final class OperatorValidationAndDeploymentTests: XCTestCase {
    func testBadRegexMakesTheRuleInvalidNamingThePatternAndTheConnectionKeepsItsLastGoodConfig() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            _ = try await h.startOperator()
            let rules = MaskingRule.resourceType
            _ = try await h.admin.create(MaskingRule(metadata: ObjectMeta(name: "cards", namespace: "default", labels: ["masking": "on"]),
                                                     spec: MaskingRuleSpec(customPatterns: [CustomPattern(name: "card", regex: "[0-9]{16}")])))
            var connection = ClusterFixture.connection("masked")
            connection.spec.maskingRuleSelector = LabelSelector(matchLabels: ["masking": "on"])
            _ = try await h.admin.create(connection)
            let ready = try await h.ready("masked")
            XCTAssertEqual(ready.status?.appliedMaskingRules, ["cards"])
            let firstConfig = try await h.secret("masked")
            XCTAssertEqual(firstConfig?.config.maskingRules.map(\.name), ["cards"])

            // A catastrophic pattern and one that does not compile.
            _ = try await h.admin.mergePatch(rules, name: "cards", namespace: "default", ["spec": ["customPatterns": [
                ["name": "card", "regex": "[0-9]{16}"], ["name": "nested", "regex": "(a+)+$"], ["name": "broken", "regex": "[unclosed"],
            ]]])
            let admin = h.admin
            try await eventually(10, "the rule to be InvalidSpec") {
                let rule = try await admin.get(MaskingRule.self, name: "cards", namespace: "default")
                return rule.status?.conditions?.condition("Ready")?.reason == "InvalidSpec" && rule.status?.observedGeneration == 2
            }
            let rule = try await h.admin.get(MaskingRule.self, name: "cards", namespace: "default")
            let message = rule.status?.conditions?.condition("Ready")?.message ?? ""
            XCTAssertTrue(message.contains("spec.customPatterns[1].regex") && message.contains("nested"), message)
            XCTAssertTrue(message.contains("spec.customPatterns[2].regex") && message.contains("broken"), message)
            XCTAssertEqual(rule.status?.conditions?.condition("Stalled")?.status, "True")

            let blocked = try await h.waitFor("masked", "MaskingRuleInvalid") {
                $0.status?.conditions?.condition("Ready")?.reason == "MaskingRuleInvalid"
            }
            XCTAssertTrue(blocked.status?.conditions?.condition("Ready")?.message.contains("cards") ?? false)
            let kept = try await h.requireSecret("masked")
            XCTAssertEqual(kept.config.maskingRules.first?.spec.customPatterns?.count, 1, "the gateway keeps the last good rules")

            // Fixed: both ready again.
            _ = try await h.admin.mergePatch(rules, name: "cards", namespace: "default", ["spec": ["customPatterns": [
                ["name": "card", "regex": "[0-9]{16}"], ["name": "iban", "regex": "DE[0-9]{20}"],
            ]]])
            let fixed = try await h.ready("masked")
            XCTAssertEqual(fixed.status?.appliedMaskingRules, ["cards"])
            let fixedConfig = try await h.secret("masked")
            XCTAssertEqual(fixedConfig?.config.maskingRules.first?.spec.customPatterns?.count, 2)
        }
    }

    func testInvalidSpecsTheSchemaCannotCatchNameTheFieldAndOneBadObjectNeverStallsOthers() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            _ = try await h.startOperator()
            var badSelector = ClusterFixture.connection("bad-selector")
            badSelector.spec.maskingRuleSelector = LabelSelector(matchLabels: ["team": "has spaces!"])
            _ = try await h.admin.create(badSelector)
            // A policy stored before the CRD had its validation rules (written past admission, as an
            // older CRD version would have let it in): duplicate alert names and a 5-minute retention.
            var noisy = try JSONValue(encoding: RecordingPolicy(metadata: ObjectMeta(name: "noisy", namespace: "default"), spec: RecordingPolicySpec(
                retention: "5m", alerts: [AlertRule(name: "execs", threshold: 5), AlertRule(name: "execs", threshold: 3)])))
            noisy.set(.string(UUID().uuidString.lowercased()), at: ["metadata", "uid"])
            noisy.set(1, at: ["metadata", "generation"])
            noisy.set(.string(KubeTime.format(Date())), at: ["metadata", "creationTimestamp"])
            try h.fixture.cluster.apiServer.store.mutate(ResourceKey(group: "agentgate.io", resource: "recordingpolicies"),
                                                         namespace: "default", name: "noisy") { _ in .put(noisy) }
            var badPolicy = ClusterFixture.connection("bad-policy")
            badPolicy.spec.recordingPolicyRef = LocalObjectReference(name: "noisy")
            _ = try await h.admin.create(badPolicy)
            for index in 0..<20 { _ = try await h.admin.create(ClusterFixture.connection("good-\(index)")) }

            let stalled = try await h.waitFor("bad-selector", "InvalidSpec") {
                $0.status?.conditions?.condition("Ready")?.reason == "InvalidSpec"
            }
            XCTAssertTrue(stalled.status?.conditions?.condition("Ready")?.message.contains("spec.maskingRuleSelector") ?? false,
                          stalled.status?.conditions?.condition("Ready")?.message ?? "")
            XCTAssertEqual(stalled.status?.conditions?.condition("Stalled")?.status, "True")
            let none = try await h.secret("bad-selector")
            XCTAssertNil(none, "an invalid connection gets no credential")

            let policyBlocked = try await h.waitFor("bad-policy", "RecordingPolicyInvalid") {
                $0.status?.conditions?.condition("Ready")?.reason == "RecordingPolicyInvalid"
            }
            let policyMessage = policyBlocked.status?.conditions?.condition("Ready")?.message ?? ""
            XCTAssertTrue(policyMessage.contains("spec.alerts[1].name") && policyMessage.contains("spec.retention"), policyMessage)
            let admin = h.admin
            try await eventually(10, "the policy to report InvalidSpec") {
                let policy = try await admin.get(RecordingPolicy.self, name: "noisy", namespace: "default")
                return policy.status?.conditions?.condition("Ready")?.reason == "InvalidSpec"
            }
            for index in 0..<20 { _ = try await h.ready("good-\(index)") }
        }
    }

    func testSamplesReachReadyUnderTheShippedRBACAndOnlyTheGatewayReadsTheCredentials() async throws {
        try await withOperatorHarness { h in
            // The operator runs as its own ServiceAccount with exactly the RBAC in config/rbac.
            let rbac = try h.kubectl(["apply", "-k", OperatorHarness.repositoryRoot.appendingPathComponent("config/rbac").path])
            XCTAssertEqual(rbac.status, 0, rbac.output)
            let operatorToken = try await h.admin.createToken(namespace: "agentgate-system", serviceAccount: "agentgate-operator").token
            _ = try await h.startOperator(token: operatorToken) { $0.leaderElection = LeaderElector.Configuration(
                leaseName: "agentgate-operator", leaseNamespace: "agentgate-system") }

            let samples = try h.kubectl(["apply", "-f", OperatorHarness.repositoryRoot.appendingPathComponent("samples/scenario").path])
            XCTAssertEqual(samples.status, 0, samples.output)
            let waited = try h.kubectl(["wait", "--for=condition=Ready", "agc,mr,rp", "--all", "-n", "demo", "--timeout=30s"])
            XCTAssertEqual(waited.status, 0, waited.output)
            let stored = try await h.requireSecret("claude-ops", namespace: "demo")
            XCTAssertEqual(stored.config.recordingPolicyName, "default")
            XCTAssertFalse(stored.config.maskingRules.isEmpty)
            XCTAssertEqual(stored.config.approval?.approverGroups, ["sre"])

            let gatewayToken = try await h.admin.createToken(namespace: "agentgate-system", serviceAccount: "agentgate-gateway").token
            let asGateway = try h.fixture.client(token: gatewayToken)
            let read = try await asGateway.get(Secret.self, name: "agc-demo-claude-ops", namespace: "agentgate-system")
            XCTAssertNotNil(read.data?[GatewayConnectionConfig.tokenKey])
            let agentToken = try await h.admin.createToken(namespace: "demo", serviceAccount: "agent-sa").token
            let asAgent = try h.fixture.client(token: agentToken)
            do {
                _ = try await asAgent.get(Secret.self, name: "agc-demo-claude-ops", namespace: "agentgate-system")
                XCTFail("the agent's own ServiceAccount must not read the gateway's credential")
            } catch let error as KubeError {
                XCTAssertEqual(error.code, 403)
            }
        }
    }

    func testSecondReplicaStaysPassiveUntilTheLeaderStops() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            func election(_ options: inout OperatorOptions) {
                var configuration = LeaderElector.Configuration(leaseName: "agentgate-operator", leaseNamespace: "agentgate-system")
                configuration.leaseDuration = .seconds(4)
                configuration.renewDeadline = .seconds(3)
                configuration.retryPeriod = .milliseconds(500)
                options.leaderElection = configuration
            }
            let (leader, leaderClient) = try await h.startOperator(identity: "replica-1", configure: election)
            try await eventually(10, "replica-1 to lead") { leader.manager.elector?.isLeader == true }
            let (standby, standbyClient) = try await h.startOperator(identity: "replica-2", configure: election)
            for index in 0..<3 { _ = try await h.admin.create(ClusterFixture.connection("ha-\(index)")) }
            for index in 0..<3 { _ = try await h.ready("ha-\(index)") }
            XCTAssertFalse(standby.manager.elector?.isLeader ?? true)
            let standbyWrites = standbyClient.statistics.byResource.filter { !$0.key.hasPrefix("GET ") && !$0.key.hasPrefix("WATCH ") && !$0.key.contains("leases") }
            XCTAssertTrue(standbyWrites.isEmpty, "the passive replica wrote: \(standbyWrites)")
            XCTAssertGreaterThan(leaderClient.statistics.writes, 0)

            await h.stop(leader)
            try await eventually(10, "replica-2 to take over after the release") { standby.manager.elector?.isLeader == true }
            _ = try await h.admin.create(ClusterFixture.connection("after-failover"))
            _ = try await h.ready("after-failover")
            XCTAssertEqual(standbyClient.statistics.count("POST", "serviceaccounts/token"), 1,
                           "the new leader reuses the tokens the old one stored and mints only for the new connection")
        }
    }
}
