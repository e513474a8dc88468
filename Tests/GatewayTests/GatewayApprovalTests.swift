import AgentGateAPI
import AsyncHTTPClient
import Foundation
import Gateway
import HTTPServing
import KubeCore
import Sandbox
import SessionStore
import TestSupport
import XCTest

/// Per-request human approval, end to end: real kubectl through the gateway to the embedded
/// API server, held requests decided through the admin API with approver tokens from the
/// dev OIDC issuer.
class GatewayApprovalTests: XCTestCase {
    /// The session-store backend; the `...OnPostgres` subclass runs every test here on PostgreSQL.
    class var backend: GatewayStoreBackend { .sqlite }

    var harness: GatewayHarness!

    static let policy = ApprovalPolicy(rules: [
        ApprovalRule(name: "delete-deployments", verbs: [.delete], apiGroups: ["apps"], resources: ["deployments"]),
        ApprovalRule(name: "delete-namespaces", verbs: [.delete], apiGroups: [""], resources: ["namespaces"]),
        ApprovalRule(name: "scale-to-zero", apiGroups: ["apps"], resources: ["deployments"], scaleToZero: true),
        ApprovalRule(name: "bulk-configmaps", verbs: [.delete, .deletecollection], resources: ["configmaps"], namespaces: ["bulk"]),
        ApprovalRule(name: "prod-configmap-writes", verbs: [.create, .patch, .update], resources: ["configmaps"], namespaces: ["prod"]),
        ApprovalRule(name: "exec", verbs: [.get, .create], resources: ["pods"], subresources: ["exec"]),
    ], approverGroups: ["sre"], timeout: "1m")

    override func setUp() async throws {
        harness = try await GatewayHarness(backend: Self.backend, approval: Self.policy)
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    // MARK: Helpers

    /// kubectl as the agent, on a thread of its own (it waits while its request is held).
    func kubectlInBackground(_ args: [String], token: String, input: String? = nil,
                             environment: [String: String] = [:]) -> Task<ProcessResult, any Error> {
        let harness = self.harness!
        return Task {
            try await withCheckedThrowingContinuation { continuation in
                DispatchQueue.global().async {
                    continuation.resume(with: Result { try harness.kubectl(args, token: token, input: input, environment: environment) })
                }
            }
        }
    }

    func approver(_ subject: String = "alice", groups: [String] = ["sre"]) async throws -> String {
        try await harness.token(subject: subject, groups: groups, model: nil)
    }

    /// Waits for the one pending approval (optionally of `verb`) and returns it as the admin API shows it.
    func pendingApproval(verb: String? = nil, timeout: Double = 20) async throws -> JSONValue {
        let harness = self.harness!
        let found = LockedBox<JSONValue?>(nil)
        try await eventually(timeout, "a pending approval\(verb.map { " of \($0)" } ?? "")") {
            let list = try await GatewayHarness.send(.GET, "\(harness.adminURL)/api/v1/approvals?state=pending",
                                                     headers: [("Authorization", "Bearer \(harness.adminToken)")])
            let items = try JSONValue(parsing: list.body)["items"]?.arrayValue ?? []
            let match = items.first { verb == nil || $0["verb"]?.stringValue == verb }
            found.value = match
            return match != nil
        }
        return try XCTUnwrap(found.value)
    }

    func decide(_ id: String, _ action: String, token: String, reason: String) async throws -> (status: Int, body: JSONValue) {
        let reply = try await GatewayHarness.send(.POST, "\(harness.adminURL)/api/v1/approvals/\(id)/\(action)",
                                                  headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")],
                                                  body: JSONValue.object(["reason": .string(reason)]).serializedString())
        return (reply.status, (try? JSONValue(parsing: reply.body)) ?? .null)
    }

    func createDeployment(_ name: String, replicas: Int64 = 2) async throws {
        try await harness.cluster.applyObject([
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": .string(name), "namespace": "default"],
            "spec": ["replicas": .int(replicas), "selector": ["matchLabels": ["app": .string(name)]],
                     "template": ["metadata": ["labels": ["app": .string(name)]],
                                  "spec": ["containers": [["name": "c", "image": "busybox"]]]]],
        ])
    }

    func exists(_ path: String) async -> Bool {
        let reply = await harness.cluster.request(method: "GET", path: path, body: nil)
        return reply.status == 200 && reply.body[path: ["metadata", "deletionTimestamp"]] == nil
    }

    // MARK: Approve, deny, expire

    func createShellPod() async throws {
        try await harness.cluster.applyObject([
            "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "shell", "namespace": "default"],
            "spec": ["containers": [["name": "main", "image": "busybox"]]],
        ])
    }

    /// `kubectl exec` held by the `exec` rule, then approved: the command runs and its exchange
    /// names the approval. Returns the approval and the exec exchange.
    func execHeldThenApproved(environment: [String: String] = [:]) async throws -> (JSONValue, ExchangeRecord) {
        try await createShellPod()
        let agent = try await harness.token()
        let kubectl = kubectlInBackground(["exec", "shell", "--", "echo", "ran", "after", "approval"], token: agent,
                                          environment: environment)
        let approval = try await pendingApproval()
        XCTAssertEqual(approval["rule"]?.stringValue, "exec")
        XCTAssertEqual(approval["subresource"]?.stringValue, "exec")
        XCTAssertEqual(approval["name"]?.stringValue, "shell")
        XCTAssertNil(approval["dryRunStatusCode"], "exec has no dry run: \(approval)")
        let execs = try await harness.exchanges().filter { $0.subresource == "exec" }
        XCTAssertEqual(execs.count, 1)
        XCTAssertNil(execs.first?.statusCode, "nothing was streamed while held")
        let decided = try await decide(try XCTUnwrap(approval["id"]?.stringValue), "approve", token: try await approver(),
                                       reason: "reading a file")
        XCTAssertEqual(decided.status, 200, "\(decided.body)")
        let result = try await kubectl.value
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(result.stdout, "ran after approval\n")
        let recorded = try await harness.exchanges()
        let exchange = try XCTUnwrap(recorded.first { $0.subresource == "exec" })
        XCTAssertEqual(exchange.approvalID, approval["id"]?.stringValue)
        XCTAssertEqual(exchange.statusCode, 101)
        return (approval, exchange)
    }

    /// `kubectl exec` held, then denied: kubectl says who denied it and why, and the one exchange
    /// is a 403 with no frame (kubectl's SPDY retry of a refused WebSocket upgrade is answered
    /// from the refusal, not held again).
    func execHeldThenDenied(environment: [String: String] = [:]) async throws {
        try await createShellPod()
        let agent = try await harness.token()
        let kubectl = kubectlInBackground(["exec", "shell", "--", "echo", "should", "not", "run"], token: agent,
                                          environment: environment)
        let approval = try await pendingApproval()
        let decided = try await decide(try XCTUnwrap(approval["id"]?.stringValue), "deny", token: try await approver(),
                                       reason: "no shells in prod")
        XCTAssertEqual(decided.status, 200, "\(decided.body)")
        let result = try await kubectl.value
        XCTAssertNotEqual(result.status, 0)
        XCTAssertFalse(result.stdout.contains("should not run"), result.output)
        XCTAssertTrue(result.stderr.contains("denied by alice") && result.stderr.contains("no shells in prod"), result.stderr)
        let execs = try await harness.exchanges().filter { $0.subresource == "exec" }
        XCTAssertEqual(execs.map(\.statusCode), [403], "one held request, one denial")
        XCTAssertEqual(execs.first?.streamChunkCount, 0, "no frame was recorded: the stream never opened")
    }

    func testExecUpgradeIsHeldUntilApprovedThenTheCommandRuns() async throws {
        let (approval, exchange) = try await execHeldThenApproved()
        XCTAssertEqual(approval["verb"]?.stringValue, "get", "the WebSocket upgrade is a GET")
        XCTAssertEqual(exchange.verb, "get")
    }

    func testDeniedExecNeverOpensTheStreamAndKubectlSaysWhoDeniedIt() async throws {
        try await execHeldThenDenied()
    }

    func testSPDYExecUpgradeIsHeldUntilApprovedThenTheCommandRuns() async throws {
        let (approval, exchange) = try await execHeldThenApproved(environment: GatewayHarness.spdyOnly)
        XCTAssertEqual(approval["verb"]?.stringValue, "create", "the SPDY upgrade is a POST")
        XCTAssertEqual(exchange.verb, "create")
    }

    func testDeniedSPDYExecNeverOpensTheStreamAndKubectlSaysWhoDeniedIt() async throws {
        try await execHeldThenDenied(environment: GatewayHarness.spdyOnly)
    }

    func testDeleteDeploymentIsHeldWithItsDryRunUntilApprovedThenKubectlCompletes() async throws {
        try await createDeployment("web")
        let agent = try await harness.token()
        let kubectl = kubectlInBackground(["delete", "deployment", "web"], token: agent)
        let approval = try await pendingApproval()
        XCTAssertEqual(approval["rule"]?.stringValue, "delete-deployments")
        XCTAssertEqual(approval["subject"]?.stringValue, "agent-1")
        XCTAssertEqual(approval["model"]?.stringValue, "claude-test")
        XCTAssertEqual(approval["name"]?.stringValue, "web")
        XCTAssertEqual(approval["method"]?.stringValue, "DELETE")
        XCTAssertEqual(approval["dryRunStatusCode"]?.intValue, 200, "the dry run answered: \(approval)")
        XCTAssertTrue(approval["dryRunBody"]?.stringValue?.contains("\"web\"") ?? false, "the dry run shows the object: \(approval)")
        XCTAssertNotNil(approval["exchangeID"]?.stringValue)
        let stillThere = await exists("/apis/apps/v1/namespaces/default/deployments/web")
        XCTAssertTrue(stillThere, "nothing was deleted while held (the dry run wrote nothing)")

        let id = try XCTUnwrap(approval["id"]?.stringValue)
        let decided = try await decide(id, "approve", token: try await approver(), reason: "planned cleanup")
        XCTAssertEqual(decided.status, 200, "\(decided.body)")
        XCTAssertEqual(decided.body["state"]?.stringValue, "approved")
        XCTAssertEqual(decided.body["decidedBy"]?.stringValue, "alice")
        let result = try await kubectl.value
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.stdout.contains("deleted"), result.output)
        let gone = await exists("/apis/apps/v1/namespaces/default/deployments/web")
        XCTAssertFalse(gone, "the approved delete was forwarded")

        let recorded = try await harness.exchanges().first { $0.verb == "delete" && $0.resource == "deployments" }
        let exchange = try XCTUnwrap(recorded)
        XCTAssertEqual(exchange.approvalID, id, "the exchange carries its approval id")
        XCTAssertEqual(exchange.statusCode, 200)
        let stored = try await harness.store.approval(id: id)
        XCTAssertEqual(stored?.state, .approved)
        XCTAssertEqual(stored?.decidedBy, "alice")
        XCTAssertEqual(stored?.reason, "planned cleanup")
        XCTAssertEqual(stored?.exchangeID, exchange.id)
        XCTAssertTrue(harness.gateway.metrics.render().contains(#"agentgate_gateway_approvals_total{connection="default/conn",state="approved"} 1"#),
                      harness.gateway.metrics.render())
    }

    func testDeniedNamespaceDeleteTellsKubectlWhoDeniedItAndWhy() async throws {
        try await harness.cluster.applyObject(["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "team-x"]])
        let kubectl = kubectlInBackground(["delete", "namespace", "team-x"], token: try await harness.token())
        let approval = try await pendingApproval()
        XCTAssertEqual(approval["rule"]?.stringValue, "delete-namespaces")
        let id = try XCTUnwrap(approval["id"]?.stringValue)
        let decided = try await decide(id, "deny", token: try await approver(), reason: "not during the freeze")
        XCTAssertEqual(decided.status, 200, "\(decided.body)")
        let result = try await kubectl.value
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("Forbidden"), result.output)
        XCTAssertTrue(result.stderr.contains("denied by alice: not during the freeze"), result.output)
        let stillThere = await exists("/api/v1/namespaces/team-x")
        XCTAssertTrue(stillThere, "the denied delete never reached the API server")
        let recorded = try await harness.exchanges().first { $0.verb == "delete" && $0.resource == "namespaces" }
        let exchange = try XCTUnwrap(recorded)
        XCTAssertEqual(exchange.statusCode, 403)
        XCTAssertEqual(exchange.approvalID, id)
        XCTAssertEqual(exchange.state, .complete)
        let stored = try await harness.store.approval(id: id)
        XCTAssertEqual(stored?.state, .denied)
        XCTAssertEqual(stored?.reason, "not during the freeze")
    }

    func testUndecidedRequestExpiresWith403SayingSo() async throws {
        var config = harness.config
        config.approval?.timeout = "2s"
        harness.registry.put(config, token: harness.saToken)
        try await createDeployment("slow")
        let started = Date()
        let result = try await kubectlInBackground(["delete", "deployment", "slow"], token: try await harness.token()).value
        XCTAssertNotEqual(result.status, 0)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 2)
        XCTAssertTrue(result.stderr.contains("expired after 2s with no decision"), result.output)
        let stillThere = await exists("/apis/apps/v1/namespaces/default/deployments/slow")
        XCTAssertTrue(stillThere)
        let approvals = try await harness.store.listApprovals(ApprovalFilter())
        XCTAssertEqual(approvals.map(\.state), [.expired])
    }

    func testScaleToZeroIsHeldAndScalingToOneIsNot() async throws {
        try await createDeployment("api", replicas: 3)
        let agent = try await harness.token()
        let one = try harness.kubectl(["scale", "deployment", "api", "--replicas=1"], token: agent)
        XCTAssertEqual(one.status, 0, one.output)
        let approvalsAfterOne = try await harness.store.listApprovals(ApprovalFilter())
        XCTAssertEqual(approvalsAfterOne.count, 0, "scaling to 1 is not held")

        let kubectl = kubectlInBackground(["scale", "deployment", "api", "--replicas=0"], token: agent)
        let approval = try await pendingApproval()
        XCTAssertEqual(approval["rule"]?.stringValue, "scale-to-zero")
        XCTAssertEqual(approval["subresource"]?.stringValue, "scale")
        let replicasWhileHeld = await harness.cluster.request(method: "GET", path: "/apis/apps/v1/namespaces/default/deployments/api", body: nil)
        XCTAssertEqual(replicasWhileHeld.body[path: ["spec", "replicas"]]?.intValue, 1, "the dry run changed nothing")
        let decided = try await decide(try XCTUnwrap(approval["id"]?.stringValue), "approve", token: try await approver(), reason: "night")
        XCTAssertEqual(decided.status, 200, "\(decided.body)")
        let result = try await kubectl.value
        XCTAssertEqual(result.status, 0, result.output)
        let after = await harness.cluster.request(method: "GET", path: "/apis/apps/v1/namespaces/default/deployments/api", body: nil)
        XCTAssertEqual(after.body[path: ["spec", "replicas"]]?.intValue, 0)
    }

    func testDeleteAllAndDeletecollectionAreHeld() async throws {
        try await harness.cluster.applyObject(["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "bulk"]])
        for name in ["one", "two"] {
            try await harness.cluster.applyObject(["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": .string(name), "namespace": "bulk"]])
        }
        let agent = try await harness.token()
        let alice = try await approver()
        // kubectl delete --all: every delete it sends is held until approved.
        let kubectl = kubectlInBackground(["delete", "configmaps", "--all", "-n", "bulk"], token: agent)
        var decided = Set<String>()
        while decided.count < 2 {
            let approval = try await pendingApproval()
            XCTAssertEqual(approval["rule"]?.stringValue, "bulk-configmaps")
            XCTAssertEqual(approval["namespace"]?.stringValue, "bulk")
            let id = try XCTUnwrap(approval["id"]?.stringValue)
            let reply = try await decide(id, "approve", token: alice, reason: "reset")
            XCTAssertEqual(reply.status, 200, "\(reply.body)")
            decided.insert(id)
        }
        let result = try await kubectl.value
        XCTAssertEqual(result.status, 0, result.output)
        let oneGone = await exists("/api/v1/namespaces/bulk/configmaps/one")
        XCTAssertFalse(oneGone)

        // A DELETE on the collection itself (deletecollection) is held the same way.
        try await harness.cluster.applyObject(["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "three", "namespace": "bulk"]])
        let url = "\(harness.connectionURL)/api/v1/namespaces/bulk/configmaps"
        let raw = Task { try await GatewayHarness.send(.DELETE, url, headers: [("Authorization", "Bearer \(agent)")]) }
        let approval = try await pendingApproval(verb: "deletecollection")
        XCTAssertEqual(approval["dryRunStatusCode"]?.intValue, 200)
        XCTAssertTrue(approval["dryRunBody"]?.stringValue?.contains("three") ?? false, "the dry run lists what would go: \(approval)")
        let stillThere = await exists("/api/v1/namespaces/bulk/configmaps/three")
        XCTAssertTrue(stillThere)
        _ = try await decide(try XCTUnwrap(approval["id"]?.stringValue), "approve", token: alice, reason: "reset")
        let reply = try await raw.value
        XCTAssertEqual(reply.status, 200, reply.body)
        let gone = await exists("/api/v1/namespaces/bulk/configmaps/three")
        XCTAssertFalse(gone)
    }

    func testMatchingApplyIsHeldWithTheObjectItWouldWrite() async throws {
        try await harness.cluster.applyObject(["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "prod"]])
        let manifest = """
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: guarded
            data:
              mode: strict
            """
        let kubectl = kubectlInBackground(["apply", "-n", "prod", "--validate=false", "-f", "-"], token: try await harness.token(), input: manifest)
        let approval = try await pendingApproval()
        XCTAssertEqual(approval["rule"]?.stringValue, "prod-configmap-writes")
        XCTAssertEqual(approval["verb"]?.stringValue, "create")
        XCTAssertTrue(approval["requestBody"]?.stringValue?.contains("strict") ?? false, "\(approval)")
        XCTAssertEqual(approval["dryRunStatusCode"]?.intValue, 201, "\(approval)")
        XCTAssertTrue(approval["dryRunBody"]?.stringValue?.contains("strict") ?? false, "\(approval)")
        let notYet = await exists("/api/v1/namespaces/prod/configmaps/guarded")
        XCTAssertFalse(notYet)
        _ = try await decide(try XCTUnwrap(approval["id"]?.stringValue), "approve", token: try await approver(), reason: "ok")
        let result = try await kubectl.value
        XCTAssertEqual(result.status, 0, result.output)
        let created = await exists("/api/v1/namespaces/prod/configmaps/guarded")
        XCTAssertTrue(created)
    }

    func testRequestMatchingNoRuleIsNotHeld() async throws {
        let agent = try await harness.token()
        let start = Date()
        let apply = try harness.kubectl(["create", "configmap", "free", "--from-literal=a=b"], token: agent)
        XCTAssertEqual(apply.status, 0, apply.output)
        let delete = try harness.kubectl(["delete", "configmap", "free"], token: agent)
        XCTAssertEqual(delete.status, 0, delete.output)
        XCTAssertLessThan(Date().timeIntervalSince(start), 15)
        let approvals = try await harness.store.listApprovals(ApprovalFilter())
        XCTAssertEqual(approvals, [])
        let noneCarriesAnApproval = try await harness.exchanges().allSatisfy { $0.approvalID == nil }
        XCTAssertTrue(noneCarriesAnApproval)
    }

    // MARK: Who may decide

    func testTheRequestingAgentCannotApproveItsOwnRequest() async throws {
        try await createDeployment("self")
        // The agent is itself in the approver group: still not allowed to decide its own request.
        let agent = try await harness.token(groups: ["agents", "sre"])
        let kubectl = kubectlInBackground(["delete", "deployment", "self"], token: agent)
        let held = try await pendingApproval()
        let id = try XCTUnwrap(held["id"]?.stringValue)
        let selfApproval = try await decide(id, "approve", token: agent, reason: "trust me")
        XCTAssertEqual(selfApproval.status, 403, "\(selfApproval.body)")
        XCTAssertTrue(selfApproval.body["message"]?.stringValue?.contains("agent-1 made this request") ?? false, "\(selfApproval.body)")
        let state = try await harness.store.approval(id: id)?.state
        XCTAssertEqual(state, .pending)
        _ = try await decide(id, "deny", token: try await approver(), reason: "self-approval attempt")
        let result = try await kubectl.value
        XCTAssertTrue(result.stderr.contains("denied by alice"), result.output)
    }

    func testApproverOutsideTheApproverGroupsIsRefused() async throws {
        try await createDeployment("outsider")
        let kubectl = kubectlInBackground(["delete", "deployment", "outsider"], token: try await harness.token())
        let held = try await pendingApproval()
        let id = try XCTUnwrap(held["id"]?.stringValue)
        let bob = try await approver("bob", groups: ["developers"])
        let refused = try await decide(id, "approve", token: bob, reason: "lgtm")
        XCTAssertEqual(refused.status, 403, "\(refused.body)")
        XCTAssertTrue(refused.body["message"]?.stringValue?.contains("bob is not in the approver groups") ?? false, "\(refused.body)")
        let listed = try await GatewayHarness.send(.GET, "\(harness.adminURL)/api/v1/approvals", headers: [("Authorization", "Bearer \(bob)")])
        XCTAssertEqual(listed.status, 403, "bob cannot list either")
        let admin = try await decide(id, "approve", token: harness.adminToken, reason: "admin")
        XCTAssertEqual(admin.status, 403, "the admin token has no identity to decide with")
        let state = try await harness.store.approval(id: id)?.state
        XCTAssertEqual(state, .pending)
        // An approver lists what is pending with its own token.
        let alice = try await approver()
        let mine = try await GatewayHarness.send(.GET, "\(harness.adminURL)/api/v1/approvals?state=pending",
                                                 headers: [("Authorization", "Bearer \(alice)")])
        XCTAssertEqual(mine.status, 200, mine.body)
        XCTAssertEqual(try JSONValue(parsing: mine.body)["items"]?.arrayValue?.count, 1)
        _ = try await decide(id, "approve", token: alice, reason: "fine")
        let result = try await kubectl.value
        XCTAssertEqual(result.status, 0, result.output)
    }

    /// A token whose group only looks like an approver group ("\u{212A}ube-SRE" with a KELVIN
    /// SIGN, beside "Kube-SRE"; Swift's `==` calls them equal, the IdP does not) neither lists
    /// nor decides the approval.
    func testAnApproverInALookAlikeOfAnApproverGroupIsRefused() async throws {
        await harness.stop()
        var policy = Self.policy
        policy.approverGroups = ["Kube-SRE"]
        harness = try await GatewayHarness(backend: Self.backend, approval: policy)
        try await createDeployment("lookalike")
        let kubectl = kubectlInBackground(["delete", "deployment", "lookalike"], token: try await harness.token())
        let held = try await pendingApproval()
        let id = try XCTUnwrap(held["id"]?.stringValue)
        let mallory = try await approver("mallory", groups: ["\u{212A}ube-SRE"])
        let refused = try await decide(id, "approve", token: mallory, reason: "lgtm")
        XCTAssertEqual(refused.status, 403, "\(refused.body)")
        let listed = try await GatewayHarness.send(.GET, "\(harness.adminURL)/api/v1/approvals", headers: [("Authorization", "Bearer \(mallory)")])
        XCTAssertEqual(listed.status, 403, listed.body)
        let state = try await harness.store.approval(id: id)?.state
        XCTAssertEqual(state, .pending)
        let approved = try await decide(id, "approve", token: try await approver("alice", groups: ["Kube-SRE"]), reason: "fine")
        XCTAssertEqual(approved.status, 200, "\(approved.body)")
        let result = try await kubectl.value
        XCTAssertEqual(result.status, 0, result.output)
    }

    func testApproverTokenFromAnotherIssuerIsRejected() async throws {
        try await createDeployment("forged")
        let kubectl = kubectlInBackground(["delete", "deployment", "forged"], token: try await harness.token())
        let held = try await pendingApproval()
        let id = try XCTUnwrap(held["id"]?.stringValue)
        // Another connection's (or an attacker's) issuer, same claims and audience.
        let other = try DevOIDCIssuer()
        _ = try await other.start()
        let foreign = try await other.token(DevOIDCIssuer.TokenRequest(subject: "alice", audience: GatewayHarness.audience, groups: ["sre"]))
        let refused = try await decide(id, "approve", token: foreign, reason: "forged")
        await other.shutdown()
        XCTAssertEqual(refused.status, 401, "\(refused.body)")
        let state = try await harness.store.approval(id: id)?.state
        XCTAssertEqual(state, .pending)
        _ = try await decide(id, "deny", token: try await approver(), reason: "forged approval attempt")
        _ = try await kubectl.value
    }

    func testReplayedDecisionIsAConflict() async throws {
        try await createDeployment("replay")
        let kubectl = kubectlInBackground(["delete", "deployment", "replay"], token: try await harness.token())
        let held = try await pendingApproval()
        let id = try XCTUnwrap(held["id"]?.stringValue)
        let alice = try await approver()
        let first = try await decide(id, "approve", token: alice, reason: "ok")
        XCTAssertEqual(first.status, 200)
        let replayed = try await decide(id, "approve", token: alice, reason: "ok")
        XCTAssertEqual(replayed.status, 409, "\(replayed.body)")
        XCTAssertEqual(replayed.body["reason"]?.stringValue, "Conflict")
        let carol = try await approver("carol")
        let overturn = try await decide(id, "deny", token: carol, reason: "too late")
        XCTAssertEqual(overturn.status, 409, "a decision is made once: \(overturn.body)")
        let stored = try await harness.store.approval(id: id)
        XCTAssertEqual(stored?.decidedBy, "alice")
        XCTAssertEqual(stored?.state, .approved)
        let result = try await kubectl.value
        XCTAssertEqual(result.status, 0, result.output)
    }

    // MARK: Shutdown and restart

    func testGatewayShutdownAnswersHeldRequests503AndMarksThemAbandoned() async throws {
        try await createDeployment("held")
        let agent = try await harness.token()
        let url = "\(harness.connectionURL)/apis/apps/v1/namespaces/default/deployments/held"
        let raw = Task { try await GatewayHarness.send(.DELETE, url, headers: [("Authorization", "Bearer \(agent)")]) }
        let held = try await pendingApproval()
        let id = try XCTUnwrap(held["id"]?.stringValue)
        await harness.gateway.shutdown()
        let reply = try await raw.value
        XCTAssertEqual(reply.status, 503, reply.body)
        let status = try JSONValue(parsing: reply.body)
        XCTAssertEqual(status["kind"]?.stringValue, "Status")
        XCTAssertTrue(status["message"]?.stringValue?.contains("retry") ?? false, reply.body)
        let stored = try await harness.store.approval(id: id)
        XCTAssertEqual(stored?.state, .abandoned)
        let stillThere = await exists("/apis/apps/v1/namespaces/default/deployments/held")
        XCTAssertTrue(stillThere)
        let recorded = try await harness.exchanges().first { $0.approvalID == id }
        let exchange = try XCTUnwrap(recorded)
        XCTAssertEqual(exchange.statusCode, 503)
    }

    func testAgentThatGivesUpWaitingLeavesItsApprovalAbandoned() async throws {
        try await createDeployment("impatient")
        let agent = try await harness.token()
        var request = HTTPClientRequest(url: "\(harness.connectionURL)/apis/apps/v1/namespaces/default/deployments/impatient")
        request.method = .DELETE
        request.headers.add(name: "Authorization", value: "Bearer \(agent)")
        let impatient = Task { try await HTTPClient.shared.execute(request, timeout: .seconds(2)) }
        let held = try await pendingApproval()
        let id = try XCTUnwrap(held["id"]?.stringValue)
        _ = try? await impatient.value
        let store = harness.store
        try await eventually(10, "the approval of the request nobody waits for is abandoned") {
            try await store.approval(id: id)?.state == .abandoned
        }
        let decided = try await decide(id, "approve", token: try await approver(), reason: "too late")
        XCTAssertEqual(decided.status, 409, "nothing is left to approve: \(decided.body)")
        let stillThere = await exists("/apis/apps/v1/namespaces/default/deployments/impatient")
        XCTAssertTrue(stillThere)
    }

    func testGatewayProcessKilledWhileHoldingIsFoundAbandonedByTheRestartedProcess() async throws {
        try await createDeployment("web")
        let first = try await harness.startGatewayBinary(name: "gw-first")
        defer { if first.process.isRunning { kill(first.process.processIdentifier, SIGKILL) } }
        let agent = try await harness.token()
        let held = Task {
            try await GatewayHarness.send(.DELETE, "\(first.connectionURL)/apis/apps/v1/namespaces/default/deployments/web",
                                          headers: [("Authorization", "Bearer \(agent)")])
        }
        let pending = try await pendingApproval()
        let id = try XCTUnwrap(pending["id"]?.stringValue)
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        _ = try? await held.value
        let killedState = try await harness.store.approval(id: id)?.state
        XCTAssertEqual(killedState, .pending, "a killed process records nothing")
        let restarted = try await harness.startGatewayBinary(name: "gw-restarted")
        defer { kill(restarted.process.processIdentifier, SIGKILL) }
        let approval = try await GatewayHarness.send(.GET, "\(restarted.adminURL)/api/v1/approvals/\(id)",
                                                     headers: [("Authorization", "Bearer \(restarted.adminToken)")])
        XCTAssertEqual(try JSONValue(parsing: approval.body)["state"]?.stringValue, "abandoned", approval.body)
        let stillThere = await exists("/apis/apps/v1/namespaces/default/deployments/web")
        XCTAssertTrue(stillThere)
    }

    func testApprovalsLeftPendingByADeadGatewayAreAbandonedOnRestart() async throws {
        // A gateway that died holding a request (its store instance never closed).
        let dead = try await SessionStores.open(url: harness.storeURL, options: SessionStoreOptions(instanceID: "dead-gateway"))
        let now = Date()
        try await dead.createApproval(ApprovalRecord(
            id: "01DEADAPPROVAL0000000000000", connection: ConnectionRef(namespace: "default", name: "conn"), rule: "r",
            subject: "agent-1", groups: [], model: nil, sessionID: nil, exchangeID: nil, verb: "delete", apiGroup: "apps",
            resource: "deployments", subresource: "", namespace: "default", name: "web", httpMethod: "DELETE",
            path: "/apis/apps/v1/namespaces/default/deployments/web", query: "", requestBody: nil, approverGroups: ["sre"],
            createdAt: now, expiresAt: now.addingTimeInterval(600)))
        // The restarted gateway recovers at start (the dead instance never heartbeat: unknown owner).
        let restarted = try await SessionStores.open(url: harness.storeURL)
        try await restarted.recoverInterrupted()
        let stored = try await restarted.approval(id: "01DEADAPPROVAL0000000000000")
        XCTAssertEqual(stored?.state, .abandoned)
        XCTAssertNotNil(stored?.reason)
        try await restarted.close()
        try await dead.close()
    }
}

/// A value set from a `@Sendable` closure.
final class LockedBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

/// GatewayApprovalTests with the session store on PostgreSQL.
final class GatewayApprovalOnPostgresTests: GatewayApprovalTests {
    override class var backend: GatewayStoreBackend { .postgres }

    override func testDeleteDeploymentIsHeldWithItsDryRunUntilApprovedThenKubectlCompletes() async throws { try await super.testDeleteDeploymentIsHeldWithItsDryRunUntilApprovedThenKubectlCompletes() }
    override func testDeniedNamespaceDeleteTellsKubectlWhoDeniedItAndWhy() async throws { try await super.testDeniedNamespaceDeleteTellsKubectlWhoDeniedItAndWhy() }
    override func testUndecidedRequestExpiresWith403SayingSo() async throws { try await super.testUndecidedRequestExpiresWith403SayingSo() }
    override func testScaleToZeroIsHeldAndScalingToOneIsNot() async throws { try await super.testScaleToZeroIsHeldAndScalingToOneIsNot() }
    override func testDeleteAllAndDeletecollectionAreHeld() async throws { try await super.testDeleteAllAndDeletecollectionAreHeld() }
    override func testMatchingApplyIsHeldWithTheObjectItWouldWrite() async throws { try await super.testMatchingApplyIsHeldWithTheObjectItWouldWrite() }
    override func testRequestMatchingNoRuleIsNotHeld() async throws { try await super.testRequestMatchingNoRuleIsNotHeld() }
    override func testTheRequestingAgentCannotApproveItsOwnRequest() async throws { try await super.testTheRequestingAgentCannotApproveItsOwnRequest() }
    override func testApproverOutsideTheApproverGroupsIsRefused() async throws { try await super.testApproverOutsideTheApproverGroupsIsRefused() }
    override func testApproverTokenFromAnotherIssuerIsRejected() async throws { try await super.testApproverTokenFromAnotherIssuerIsRejected() }
    override func testAnApproverInALookAlikeOfAnApproverGroupIsRefused() async throws {
        try await super.testAnApproverInALookAlikeOfAnApproverGroupIsRefused()
    }
    override func testReplayedDecisionIsAConflict() async throws { try await super.testReplayedDecisionIsAConflict() }
    override func testGatewayShutdownAnswersHeldRequests503AndMarksThemAbandoned() async throws { try await super.testGatewayShutdownAnswersHeldRequests503AndMarksThemAbandoned() }
    override func testAgentThatGivesUpWaitingLeavesItsApprovalAbandoned() async throws { try await super.testAgentThatGivesUpWaitingLeavesItsApprovalAbandoned() }
    override func testGatewayProcessKilledWhileHoldingIsFoundAbandonedByTheRestartedProcess() async throws { try await super.testGatewayProcessKilledWhileHoldingIsFoundAbandonedByTheRestartedProcess() }
    override func testApprovalsLeftPendingByADeadGatewayAreAbandonedOnRestart() async throws { try await super.testApprovalsLeftPendingByADeadGatewayAreAbandonedOnRestart() }
}
