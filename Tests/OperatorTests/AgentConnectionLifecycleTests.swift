import AgentGateAPI
import ControllerRuntime
import Foundation
import Gateway
import KubeClient
import KubeCore
import Operator
import TestSupport
import XCTest

final class AgentConnectionLifecycleTests: XCTestCase {
    func testNewConnectionGetsTokenConfigAndReadyStatusInFourWrites() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            let (_, client) = try await h.startOperator()
            _ = try await h.admin.create(ClusterFixture.connection("fresh"))
            let connection = try await h.ready("fresh")
            try await Task.sleep(for: .milliseconds(500)) // let any follow-up reconcile happen

            XCTAssertEqual(connection.metadata.finalizers, ["agentgate.io/credentials"])
            XCTAssertEqual(connection.status?.endpoint, "https://gateway.example.com/c/default/fresh")
            XCTAssertEqual(connection.status?.credential?.rotations, 0)
            XCTAssertEqual(connection.status?.credential?.secretName, "agc-default-fresh")
            let ready = try XCTUnwrap(connection.status?.conditions?.condition("Ready"))
            XCTAssertEqual(ready.observedGeneration, 1)
            XCTAssertNil(connection.status?.conditions?.condition("Reconciling"))

            let stored = try await h.requireSecret("fresh")
            XCTAssertEqual(stored.config.serviceAccountName, "agent-sa")
            XCTAssertEqual(stored.config.endpoint, "https://gateway.example.com/c/default/fresh")
            XCTAssertEqual(stored.config.generation, 1)
            XCTAssertEqual(stored.secret.metadata.labels?[GatewayConnectionConfig.managedByLabel], GatewayConnectionConfig.managedByValue)
            // The stored token is a real ServiceAccount token: the API server knows it as agent-sa.
            let asAgent = try h.fixture.client(token: stored.token)
            do {
                _ = try await asAgent.list(.secrets, namespace: "kube-system")
                XCTFail("agent-sa has no RBAC for Secrets in kube-system")
            } catch let error as KubeError {
                XCTAssertEqual(error.code, 403)
                XCTAssertTrue("\(error)".contains("system:serviceaccount:default:agent-sa"), "\(error)")
            }

            let writes = client.statistics.byResource.filter { !$0.key.hasPrefix("GET ") && !$0.key.hasPrefix("WATCH ") }
            print("writes for one new connection: \(writes)")
            XCTAssertEqual(client.statistics.count("POST", "serviceaccounts/token"), 1)
            XCTAssertLessThanOrEqual(client.statistics.writes, 4, "at most 4 API writes per connection: \(writes)")
        }
    }

    func testShortTTLIsRotatedOnTimeAndTheGatewaySwitchesToTheNewToken() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            let (_, client) = try await h.startOperator()
            // 10 minutes is TokenRequest's minimum; rotating 9m57s early makes it due after 3 s.
            _ = try await h.admin.create(ClusterFixture.connection("short", ttl: "10m", rotateBefore: "9m57s"))
            _ = try await h.ready("short")
            let first = try await h.requireSecret("short")

            // The gateway's own view of the operator's Secrets.
            let registry = ConnectionRegistry()
            let watcher = ConnectionConfigWatcher(client: try h.fixture.client(), namespace: "agentgate-system", registry: registry)
            watcher.start()
            defer { watcher.stop() }
            try await eventually(10, "the gateway to load the connection") { registry.connection(namespace: "default", name: "short") != nil }
            XCTAssertEqual(registry.connection(namespace: "default", name: "short")?.token, first.token)

            let started = ContinuousClock.now
            let rotated = try await h.waitFor("short", "rotations=1", timeout: 15) { $0.status?.credential?.rotations == 1 }
            let elapsed = ContinuousClock.now - started
            XCTAssertLessThan(elapsed, .seconds(8), "rotation is due 3 s after issue; requeued for that time, not polled")
            let second = try await h.requireSecret("short")
            XCTAssertNotEqual(second.token, first.token)
            XCTAssertNotEqual(rotated.status?.credential?.issuedAt, nil)
            try await eventually(10, "the gateway to use the new token") {
                registry.connection(namespace: "default", name: "short")?.token == second.token
            }
            let events = try await h.events(about: "short")
            XCTAssertTrue(events.contains { $0["reason"]?.stringValue == "CredentialRotated" }, "\(events)")
            // One TokenRequest per rotation, none in between (a rotation may land between the two reads).
            let rotations = (try await h.connection("short")).status?.credential?.rotations ?? 0
            let requests = Int64(client.statistics.count("POST", "serviceaccounts/token"))
            XCTAssertTrue((rotations + 1)...(rotations + 2) ~= requests, "\(requests) TokenRequests for \(rotations) rotations")
        }
    }

    func testASelectorThatSelectsNoMaskingRuleIsReadyWithAConditionSayingSo() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            _ = try await h.startOperator()
            var typo = ClusterFixture.connection("typo")
            typo.spec.maskingRuleSelector = LabelSelector(matchLabels: ["agentgate.io/masking": "standrad"])
            _ = try await h.admin.create(typo)
            let ready = try await h.ready("typo")
            let condition = try XCTUnwrap(ready.status?.conditions?.condition("MaskingRulesSelected"))
            XCTAssertEqual(condition.status, "False")
            XCTAssertEqual(condition.reason, "NoMaskingRuleSelected")
            XCTAssertTrue(condition.message.contains("namespace default"), "\(condition)")
            XCTAssertTrue(ready.status?.conditions?.condition("Ready")?.message.contains("selects none") == true)
            _ = try await h.admin.create(MaskingRule(metadata: ObjectMeta(name: "standard", namespace: "default",
                                                                          labels: ["agentgate.io/masking": "standrad"]),
                                                     spec: MaskingRuleSpec(detectors: [.jwt])))
            let selected = try await h.waitFor("typo", "the new rule selected") {
                $0.status?.conditions?.condition("MaskingRulesSelected")?.status == "True"
            }
            XCTAssertEqual(selected.status?.conditions?.condition("MaskingRulesSelected")?.message, "1 MaskingRule(s): standard")
        }
    }

    func testSpecChangeBumpsGenerationAndObservedGenerationFollowsWithoutANewToken() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            let (_, client) = try await h.startOperator()
            _ = try await h.admin.create(ClusterFixture.connection("evolving"))
            _ = try await h.ready("evolving")
            let before = try await h.requireSecret("evolving")
            _ = try await h.admin.mergePatch(AgentConnection.resourceType, name: "evolving", namespace: "default",
                                             ["spec": ["identity": ["allowedSubjects": ["agent-1", "agent-2"]]]])
            let updated = try await h.ready("evolving")
            XCTAssertEqual(updated.metadata.generation, 2)
            XCTAssertEqual(updated.status?.observedGeneration, 2)
            XCTAssertEqual(updated.status?.conditions?.condition("Ready")?.observedGeneration, 2)
            let after = try await h.requireSecret("evolving")
            XCTAssertEqual(after.config.generation, 2)
            XCTAssertEqual(after.config.identity.allowedSubjects, ["agent-1", "agent-2"])
            XCTAssertEqual(after.token, before.token, "a spec change that does not touch the credential keeps the token")
            XCTAssertEqual(client.statistics.count("POST", "serviceaccounts/token"), 1)
        }
    }

    func testMissingServiceAccountReportsReconcilingThenReadyWhenItAppearsAndRecreationMintsANewToken() async throws {
        try await withOperatorHarness { h in
            _ = try await h.startOperator()
            _ = try await h.admin.create(ClusterFixture.connection("waiting", serviceAccount: "late-sa"))
            let waiting = try await h.waitFor("waiting", "ServiceAccountNotFound") {
                $0.status?.conditions?.condition("Ready")?.reason == "ServiceAccountNotFound"
            }
            XCTAssertEqual(waiting.status?.conditions?.condition("Ready")?.status, "False")
            XCTAssertEqual(waiting.status?.conditions?.condition("Reconciling")?.status, "True")
            XCTAssertTrue(waiting.status?.conditions?.condition("Ready")?.message.contains("default/late-sa") ?? false)
            // kubectl wait reads the same conditions.
            let notYet = try h.kubectl(["wait", "--for=condition=Ready", "agc/waiting", "-n", "default", "--timeout=1s"])
            XCTAssertNotEqual(notYet.status, 0)

            try await h.createServiceAccount("late-sa")
            let wait = try h.kubectl(["wait", "--for=condition=Ready", "agc/waiting", "-n", "default", "--timeout=15s"])
            XCTAssertEqual(wait.status, 0, wait.output)
            let first = try await h.requireSecret("waiting")

            // Deleted: not ready again. Recreated (new uid, old tokens invalid): a new token.
            try await h.admin.delete(ServiceAccount.self, name: "late-sa", namespace: "default")
            _ = try await h.waitFor("waiting", "ServiceAccountNotFound again") {
                $0.status?.conditions?.condition("Ready")?.reason == "ServiceAccountNotFound"
            }
            try await h.createServiceAccount("late-sa")
            let back = try await h.ready("waiting")
            XCTAssertEqual(back.status?.credential?.rotations, 1)
            let second = try await h.requireSecret("waiting")
            XCTAssertNotEqual(second.token, first.token)
            let events = try await h.events(about: "waiting")
            XCTAssertTrue(events.contains { $0["reason"]?.stringValue == "ServiceAccountNotFound" && $0["type"]?.stringValue == "Warning" })
        }
    }

    func testDeletingTheConnectionDeletesItsCredentialAndConfiguration() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            _ = try await h.startOperator()
            _ = try await h.admin.create(ClusterFixture.connection("doomed"))
            _ = try await h.ready("doomed")
            let present = try await h.secret("doomed")
            XCTAssertNotNil(present)
            let deleted = try h.kubectl(["delete", "agc", "doomed", "-n", "default", "--wait=true", "--timeout=15s"])
            XCTAssertEqual(deleted.status, 0, deleted.output)
            try await eventually(10, "the Secret to go") { (try? await h.secret("doomed")) == nil }
            let gone = await notFoundProblem { try await h.connection("doomed") }
            XCTAssertNil(gone)
        }
    }

    func testRestartedOperatorReusesTheStoredTokenAndWritesNothing() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            let (first, _) = try await h.startOperator(identity: "first")
            for index in 0..<5 { _ = try await h.admin.create(ClusterFixture.connection("keep-\(index)")) }
            for index in 0..<5 { _ = try await h.ready("keep-\(index)") }
            let tokens = try await (0..<5).asyncMap { try await h.secret("keep-\($0)")?.token }
            await h.kill(first) // mid-way: no drain

            let (_, client) = try await h.startOperator(identity: "second")
            try await Task.sleep(for: .seconds(2))
            XCTAssertEqual(client.statistics.count("POST", "serviceaccounts/token"), 0, "a still-good token must not be replaced")
            XCTAssertEqual(client.statistics.writes, 0, "nothing changed, so nothing is written: \(client.statistics.byResource)")
            let after = try await (0..<5).asyncMap { try await h.secret("keep-\($0)")?.token }
            XCTAssertEqual(after, tokens)
        }
    }

    func testTheGatewaysStatusFieldsAreNeverOverwritten() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            _ = try await h.startOperator()
            _ = try await h.admin.create(ClusterFixture.connection("shared-status"))
            _ = try await h.ready("shared-status")
            // The gateway reports sessions with its own field manager.
            _ = try await h.admin.apply(AgentConnection.resourceType, [
                "apiVersion": "agentgate.io/v1alpha1", "kind": "AgentConnection",
                "metadata": ["name": "shared-status", "namespace": "default"],
                "status": ["sessions": ["active": 2, "total": 7, "lastSessionID": "s-7"], "pendingApprovals": 1],
            ], namespace: "default", fieldManager: "agentgate-gateway", subresource: "status")
            // A spec change makes the operator write status again.
            _ = try await h.admin.mergePatch(AgentConnection.resourceType, name: "shared-status", namespace: "default",
                                             ["spec": ["identity": ["audiences": ["agentgate", "other"]]]])
            let updated = try await h.ready("shared-status")
            XCTAssertEqual(updated.status?.observedGeneration, 2)
            XCTAssertEqual(updated.status?.sessions?.total, 7)
            XCTAssertEqual(updated.status?.sessions?.lastSessionID, "s-7")
            XCTAssertEqual(updated.status?.pendingApprovals, 1)
        }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var values: [T] = []
        for element in self { values.append(try await transform(element)) }
        return values
    }
}
