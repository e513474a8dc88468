import AgentGateAPI
import Foundation
import KubeCore
import TestSupport
import XCTest
@testable import LocalCluster

/// The shipped `config/admission` policy on the embedded cluster, with real kubectl as two
/// users who may both create AgentConnections in namespace `team`: alice may `use`
/// ServiceAccount `agent-sa`, mallory may not. (The users are ServiceAccounts of namespace
/// `people`, whose tokens the cluster issues; RBAC and the policy see their usernames.)
final class KubectlServiceAccountBindingTests: XCTestCase {
    var tc: TestCluster!
    var workdir: URL!
    var admin = ""
    var alice = ""
    var mallory = ""
    static let aliceName = "system:serviceaccount:people:alice"
    static let malloryName = "system:serviceaccount:people:mallory"
    static let denial = "ValidatingAdmissionPolicy 'agentgate-serviceaccount-binding' with binding 'agentgate-serviceaccount-binding' denied request"

    /// The policy file exactly as `kubectl apply -k config/default` installs it.
    static var policyFile: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("config/admission/serviceaccount_binding_policy.yaml")
    }

    override func setUp() async throws {
        tc = try await TestCluster(useTLS: true)
        workdir = tc.directory.appendingPathComponent("work")
        try FileManager.default.createDirectory(at: workdir, withIntermediateDirectories: true)
        admin = try kubeconfig("admin", token: tc.cluster.adminToken)
        try run(admin, "apply", "-f", Self.policyFile.path)
        for namespace in ["people", "team"] { try run(admin, "create", "namespace", namespace) }
        for account in ["alice", "mallory"] { try run(admin, "create", "serviceaccount", account, "-n", "people") }
        try run(admin, "create", "serviceaccount", "agent-sa", "-n", "team")
        try run(admin, "create", "role", "connection-author", "-n", "team", "--verb=get,list,watch,create,update,patch,delete",
                "--resource=agentconnections.agentgate.io")
        try run(admin, "create", "rolebinding", "connection-authors", "-n", "team", "--role=connection-author",
                "--serviceaccount=people:alice", "--serviceaccount=people:mallory")
        // What the policy's message tells a refused user to ask for, granted to alice only.
        try run(admin, "apply", "-f", "-", input: """
            apiVersion: rbac.authorization.k8s.io/v1
            kind: Role
            metadata: {name: use-agent-sa, namespace: team}
            rules:
              - {apiGroups: [""], resources: [serviceaccounts], resourceNames: [agent-sa], verbs: [use]}
            """)
        try run(admin, "create", "rolebinding", "use-agent-sa", "-n", "team", "--role=use-agent-sa", "--user=\(Self.aliceName)")
        alice = try kubeconfig("alice", token: try token("alice"))
        mallory = try kubeconfig("mallory", token: try token("mallory"))
    }

    override func tearDown() async throws { await tc.stop() }

    func testAliceWhoMayUseTheServiceAccountCreatesAConnectionNamingIt() throws {
        let created = try run(alice, "apply", "-f", "-", input: Self.connection("alice-agent", serviceAccount: "agent-sa"))
        XCTAssertTrue(created.stdout.contains("agentconnection.agentgate.io/alice-agent created"), created.output)
        XCTAssertEqual(try run(admin, "get", "agc", "alice-agent", "-n", "team", "-o", "jsonpath={.spec.serviceAccountName}").stdout,
                       "agent-sa")
    }

    func testMalloryWhoMayNotUseTheServiceAccountIsRefusedWithWhatToGrant() throws {
        let refused = try run(mallory, "apply", "-f", "-", input: Self.connection("mallory-agent", serviceAccount: "agent-sa"),
                              expectSuccess: false)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("Error from server (Forbidden)"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("agentconnections.agentgate.io \"mallory-agent\" is forbidden: \(Self.denial): "
                                              + "user \(Self.malloryName) may not use ServiceAccount team/agent-sa (spec.serviceAccountName): "
                                              + "bind the user, in namespace team, to a Role with the rule {apiGroups: [\"\"], "
                                              + "resources: [serviceaccounts], resourceNames: [agent-sa], verbs: [use]}"), refused.stderr)
        XCTAssertEqual(try run(admin, "get", "agc", "-n", "team", "-o", "name").stdout, "", "nothing was created")
        let dryRun = try run(mallory, "create", "--dry-run=server", "-f", "-",
                             input: Self.connection("mallory-agent", serviceAccount: "agent-sa"), expectSuccess: false)
        XCTAssertTrue(dryRun.stderr.contains(Self.denial), "a server-side dry run is refused too: \(dryRun.stderr)")

        // The alternative the message names, granted with kubectl's own commands, admits her.
        try run(admin, "create", "role", "impersonate-agent-sa", "-n", "team", "--verb=impersonate",
                "--resource=serviceaccounts", "--resource-name=agent-sa")
        try run(admin, "create", "rolebinding", "impersonate-agent-sa", "-n", "team", "--role=impersonate-agent-sa",
                "--user=\(Self.malloryName)")
        let admitted = try run(mallory, "apply", "-f", "-", input: Self.connection("mallory-agent", serviceAccount: "agent-sa"))
        XCTAssertTrue(admitted.stdout.contains("created"), admitted.output)
    }

    func testMalloryCannotPointAlicesConnectionAtAServiceAccountSheMayNotUse() throws {
        try run(admin, "create", "serviceaccount", "deployer", "-n", "team")
        try run(alice, "apply", "-f", "-", input: Self.connection("alice-agent", serviceAccount: "agent-sa"))
        let patched = try run(mallory, "patch", "agc", "alice-agent", "-n", "team", "--type=merge",
                              "-p", #"{"spec":{"serviceAccountName":"deployer"}}"#, expectSuccess: false)
        XCTAssertNotEqual(patched.status, 0)
        XCTAssertTrue(patched.stderr.contains("\(Self.denial): user \(Self.malloryName) may not use ServiceAccount team/deployer"),
                      patched.stderr)
        let applied = try run(mallory, "apply", "-f", "-", input: Self.connection("alice-agent", serviceAccount: "deployer"),
                              expectSuccess: false)
        XCTAssertTrue(applied.stderr.contains("may not use ServiceAccount team/deployer"), applied.stderr)
        XCTAssertEqual(try run(admin, "get", "agc", "alice-agent", "-n", "team", "-o", "jsonpath={.spec.serviceAccountName}").stdout,
                       "agent-sa", "the connection still names the ServiceAccount alice may use")
    }

    func testUnrelatedUpdatesByMalloryOnAlicesConnectionPass() throws {
        try run(alice, "apply", "-f", "-", input: Self.connection("alice-agent", serviceAccount: "agent-sa"))
        try run(mallory, "label", "agc", "alice-agent", "-n", "team", "reviewed-by=mallory")
        try run(mallory, "patch", "agc", "alice-agent", "-n", "team", "--type=merge",
                "-p", #"{"spec":{"identity":{"allowedSubjects":["agent-1","agent-2"]}}}"#)
        let connection = try run(admin, "get", "agc", "alice-agent", "-n", "team", "-o", "json").stdout
        XCTAssertTrue(connection.contains("\"reviewed-by\": \"mallory\""), connection)
        XCTAssertTrue(connection.contains("agent-2"), connection)
        // She may also delete it: the policy guards which ServiceAccount is named, nothing else.
        try run(mallory, "delete", "agc", "alice-agent", "-n", "team", "--wait=false")
    }

    // MARK: Helpers

    static func connection(_ name: String, serviceAccount: String) -> String {
        """
        apiVersion: agentgate.io/v1alpha1
        kind: AgentConnection
        metadata:
          name: \(name)
          namespace: team
        spec:
          serviceAccountName: \(serviceAccount)
          identity:
            issuer: https://issuer.example.com
            audiences: [agentgate]
            allowedSubjects: [agent-1]
        """
    }

    private func token(_ account: String) throws -> String {
        let issued = try run(admin, "create", "token", account, "-n", "people")
        return issued.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func kubeconfig(_ user: String, token: String) throws -> String {
        let file = workdir.appendingPathComponent("\(user).kubeconfig")
        try Data(tc.cluster.kubeconfig(user: user, token: token).utf8).write(to: file)
        return file.path
    }

    @discardableResult
    private func run(_ kubeconfig: String, _ arguments: String..., input: String? = nil, expectSuccess: Bool = true,
                     file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        try run(kubeconfig, arguments, input: input, expectSuccess: expectSuccess, file: file, line: line)
    }

    @discardableResult
    private func run(_ kubeconfig: String, _ arguments: [String], input: String? = nil, expectSuccess: Bool = true,
                     file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let result = try ProcessRunner.run("kubectl", ["--kubeconfig", kubeconfig, "--request-timeout=20s"] + arguments,
                                           input: input, timeout: 60)
        if expectSuccess {
            XCTAssertEqual(result.status, 0, "kubectl \(arguments.joined(separator: " ")): \(result.output)", file: file, line: line)
        }
        return result
    }
}
