import Foundation
import KubeCore
import TestSupport
import XCTest
@testable import LocalCluster

/// `kubectl auth can-i` (SelfSubjectAccessReview), `can-i --list` (SelfSubjectRulesReview),
/// `auth whoami` (SelfSubjectReview), SubjectAccessReview and impersonation (`--as`,
/// `--as-group`), with real kubectl v1.32 against the embedded API server.
final class AccessReviewKubectlTests: XCTestCase {
    var tc: TestCluster!
    var adminKubeconfig = ""

    override func setUp() async throws {
        tc = try await TestCluster(useTLS: true)
        adminKubeconfig = try tc.adminKubeconfig()
        // demo/my-agent may create and list deployments in demo, nothing else.
        try admin("create", "namespace", "demo")
        try admin("create", "serviceaccount", "my-agent", "-n", "demo")
        try admin("create", "role", "deployer", "-n", "demo", "--verb=create,list", "--resource=deployments.apps")
        try admin("create", "rolebinding", "deployer", "-n", "demo", "--role=deployer", "--serviceaccount=demo:my-agent")
    }

    override func tearDown() async throws { await tc.stop() }

    @discardableResult
    func admin(_ arguments: String..., expect status: Int32 = 0, file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        try kubectl(adminKubeconfig, arguments, expect: status, file: file, line: line)
    }

    func kubectl(_ kubeconfig: String, _ arguments: [String], expect status: Int32 = 0,
                 file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let result = try ProcessRunner.run("kubectl", ["--kubeconfig", kubeconfig, "--request-timeout=20s"] + arguments, timeout: 60)
        XCTAssertEqual(result.status, status, "kubectl \(arguments.joined(separator: " ")): \(result.output)", file: file, line: line)
        return result
    }

    /// A kubeconfig with a token of demo/my-agent.
    func agentKubeconfig() throws -> String {
        let token = try admin("create", "token", "my-agent", "-n", "demo").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let file = tc.directory.appendingPathComponent("agent.kubeconfig")
        try tc.cluster.kubeconfig(user: "my-agent", token: token).write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    func testCanIAnswersYesAndNoForAServiceAccountThroughImpersonation() throws {
        let agent = "system:serviceaccount:demo:my-agent"
        XCTAssertEqual(try admin("auth", "can-i", "create", "deployments", "--as", agent, "-n", "demo").stdout, "yes\n")
        XCTAssertEqual(try admin("auth", "can-i", "delete", "deployments", "--as", agent, "-n", "demo", expect: 1).stdout, "no\n")
        XCTAssertEqual(try admin("auth", "can-i", "create", "deployments", "--as", agent, "-n", "default", expect: 1).stdout, "no\n")
        XCTAssertEqual(try admin("auth", "can-i", "create", "deployments", "-n", "demo").stdout, "yes\n", "the admin may")
        // The ServiceAccount asking for itself, with its own token.
        let own = try agentKubeconfig()
        XCTAssertEqual(try kubectl(own, ["auth", "can-i", "list", "deployments.apps", "-n", "demo"]).stdout, "yes\n")
        XCTAssertEqual(try kubectl(own, ["auth", "can-i", "get", "secrets", "-n", "demo"], expect: 1).stdout, "no\n")
        XCTAssertEqual(try kubectl(own, ["auth", "can-i", "get", "/version"]).stdout, "yes\n", "non-resource URL")
    }

    func testCanIListShowsTheRulesRBACGrants() throws {
        let listed = try admin("auth", "can-i", "--list", "-n", "demo", "--as", "system:serviceaccount:demo:my-agent").stdout
        let rows = listed.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        XCTAssertTrue(rows.contains("deployments.apps [] [] [create list]"), listed)
        XCTAssertTrue(rows.contains("selfsubjectaccessreviews.authorization.k8s.io [] [] [create]"), listed)
        XCTAssertTrue(rows.contains { $0.hasPrefix("[/version] [] [get]") }, listed)
        XCTAssertFalse(listed.contains("secrets"), listed)
    }

    func testWhoAmIShowsTheUserOrTheImpersonatedOne() throws {
        let me = try admin("auth", "whoami", "-o", "json").stdout
        let review = try JSONValue(parsing: Array(me.utf8))
        XCTAssertEqual(review["kind"], "SelfSubjectReview")
        XCTAssertEqual(review[path: ["status", "userInfo", "username"]], "kubernetes-admin")
        XCTAssertEqual(review[path: ["status", "userInfo", "groups"]], ["system:masters", "system:authenticated"])

        let other = try admin("auth", "whoami", "--as", "jane", "--as-group", "devs").stdout
        XCTAssertTrue(other.contains("jane"), other)
        XCTAssertTrue(other.contains("[devs system:authenticated]"), other)
        let account = try admin("auth", "whoami", "--as", "system:serviceaccount:demo:my-agent").stdout
        XCTAssertTrue(account.contains("[system:serviceaccounts system:serviceaccounts:demo system:authenticated]"), account)
    }

    func testImpersonationNeedsTheImpersonateVerbForEachAttribute() throws {
        let agent = try agentKubeconfig()
        let refused = try kubectl(agent, ["get", "deployments", "-n", "demo", "--as", "jane"], expect: 1)
        XCTAssertTrue(refused.stderr.contains("users \"jane\" is forbidden: User \"system:serviceaccount:demo:my-agent\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"),
                      refused.output)

        try admin("create", "clusterrole", "impersonate-jane", "--verb=impersonate", "--resource=users", "--resource-name=jane")
        try admin("create", "clusterrolebinding", "my-agent-impersonates", "--clusterrole=impersonate-jane",
                  "--serviceaccount=demo:my-agent")
        try admin("create", "rolebinding", "jane-deployer", "-n", "demo", "--role=deployer", "--user=jane")
        XCTAssertEqual(try kubectl(agent, ["get", "deployments", "-n", "demo", "--as", "jane"]).status, 0)
        let group = try kubectl(agent, ["get", "deployments", "-n", "demo", "--as", "jane", "--as-group", "system:masters"], expect: 1)
        XCTAssertTrue(group.stderr.contains("groups \"system:masters\" is forbidden"), group.output)
        let someoneElse = try kubectl(agent, ["get", "deployments", "-n", "demo", "--as", "bob"], expect: 1)
        XCTAssertTrue(someoneElse.stderr.contains("users \"bob\" is forbidden"), someoneElse.output)
        let account = try kubectl(agent, ["get", "pods", "-n", "kube-system", "--as", "system:serviceaccount:kube-system:default"], expect: 1)
        XCTAssertTrue(account.stderr.contains("serviceaccounts \"default\" is forbidden: User \"system:serviceaccount:demo:my-agent\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"kube-system\""),
                      account.output)
    }

    func testSubjectAccessReviewAnswersForAnotherUserAndIsItselfAuthorized() async throws {
        let review: JSONValue = [
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": ["user": "system:serviceaccount:demo:my-agent", "groups": ["system:serviceaccounts"],
                     "resourceAttributes": ["namespace": "demo", "verb": "create", "group": "apps", "resource": "deployments"]],
        ]
        let allowed = await tc.send("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", json: review)
        XCTAssertEqual(allowed.status, 201, allowed.message)
        XCTAssertEqual(allowed.body[path: ["status", "allowed"]], true)
        XCTAssertTrue(allowed.body[path: ["status", "reason"]]?.stringValue?.contains("RoleBinding \"deployer/demo\"") ?? false, "\(allowed.body)")

        var other = review
        other.set("delete", at: ["spec", "resourceAttributes", "verb"])
        let denied = await tc.send("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", json: other)
        XCTAssertEqual(denied.body[path: ["status", "allowed"]], false)

        var nobody = review
        nobody["spec"] = ["resourceAttributes": ["verb": "get", "resource": "pods"]]
        let invalid = await tc.send("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", json: nobody)
        XCTAssertEqual(invalid.status, 422, invalid.message)
        XCTAssertTrue(invalid.message.contains("at least one of user or group must be specified"), invalid.message)

        let token = try ProcessRunner.run("kubectl", ["--kubeconfig", adminKubeconfig, "create", "token", "my-agent", "-n", "demo"], timeout: 60)
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let forbidden = await tc.send("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", json: review, token: token)
        XCTAssertEqual(forbidden.status, 403, "asking about others needs create on subjectaccessreviews")
    }

    func testDiscoveryListsTheReviewResources() throws {
        let resources = try admin("api-resources", "-o", "name").stdout.split(separator: "\n").map(String.init)
        for name in ["selfsubjectaccessreviews.authorization.k8s.io", "selfsubjectrulesreviews.authorization.k8s.io",
                     "subjectaccessreviews.authorization.k8s.io", "localsubjectaccessreviews.authorization.k8s.io",
                     "selfsubjectreviews.authentication.k8s.io", "tokenreviews.authentication.k8s.io"] {
            XCTAssertTrue(resources.contains(name), "\(name) in \(resources)")
        }
    }
}
