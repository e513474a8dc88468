import AgentGateAPI
import Foundation
import KubeCore
import TestSupport
import XCTest
@testable import LocalCluster

/// Real kubectl (v1.32) against the embedded API server over HTTPS: the commands of
/// API-SEMANTICS.md item 14, run as a newcomer would.
final class KubectlEndToEndTests: XCTestCase {
    var tc: TestCluster!
    var kubeconfig = ""
    var workdir: URL!

    override func setUp() async throws {
        tc = try await TestCluster(useTLS: true)
        workdir = tc.directory.appendingPathComponent("work")
        try FileManager.default.createDirectory(at: workdir, withIntermediateDirectories: true)
        let file = workdir.appendingPathComponent("admin.kubeconfig")
        try tc.cluster.writeAdminKubeconfig(to: file)
        kubeconfig = file.path
    }

    override func tearDown() async throws { await tc.stop() }

    @discardableResult
    func kubectl(_ arguments: String..., input: String? = nil, expectSuccess: Bool = true,
                 file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        try KubectlWorkloadTests.kubectl(kubeconfig: kubeconfig, workdir: workdir, arguments, input: input,
                                         expectSuccess: expectSuccess, file: file, line: line)
    }

    static let connectionYAML = """
        apiVersion: agentgate.io/v1alpha1
        kind: AgentConnection
        metadata:
          name: demo
          namespace: default
        spec:
          serviceAccountName: agent-sa
          identity:
            issuer: https://issuer.example.com
            audiences: [agentgate]
            allowedSubjects: [agent-1]
        """

    func testApplyGetDescribePatchLabelAnnotateAndDelete() throws {
        let created = try kubectl("apply", "--validate=false", "-f", "-", input: Self.connectionYAML)
        XCTAssertTrue(created.stdout.contains("agentconnection.agentgate.io/demo created"), created.output)
        let unchanged = try kubectl("apply", "--validate=false", "-f", "-", input: Self.connectionYAML)
        XCTAssertTrue(unchanged.stdout.contains("unchanged"), unchanged.output)
        let changed = try kubectl("apply", "--validate=false", "-f", "-",
                                  input: Self.connectionYAML.replacingOccurrences(of: "agent-sa", with: "other-sa"))
        XCTAssertTrue(changed.stdout.contains("configured"), changed.output)
        XCTAssertEqual(try kubectl("get", "agc", "demo", "-o", "jsonpath={.spec.serviceAccountName}").stdout, "other-sa")

        let table = try kubectl("get", "agc")
        for column in ["NAME", "READY", "ENDPOINT", "SESSIONS", "PENDING", "AGE"] {
            XCTAssertTrue(table.stdout.contains(column), "column \(column) missing: \(table.stdout)")
        }
        XCTAssertTrue(try kubectl("get", "agentgate").stdout.contains("demo"), "the agentgate category lists the connection")
        XCTAssertTrue(try kubectl("get", "agc", "demo", "-o", "yaml").stdout.contains("serviceAccountName: other-sa"))
        XCTAssertTrue(try kubectl("get", "agc", "demo", "-o", "json").stdout.contains("\"serviceAccountName\": \"other-sa\""))
        XCTAssertTrue(try kubectl("get", "agc", "-o", "wide").stdout.contains("demo"))
        XCTAssertTrue(try kubectl("describe", "agc", "demo").stdout.contains("Service Account Name:  other-sa"))

        try kubectl("patch", "agc", "demo", "--type=merge", "-p", "{\"spec\":{\"serviceAccountName\":\"merged\"}}")
        try kubectl("patch", "agc", "demo", "--type=json", "-p", "[{\"op\":\"replace\",\"path\":\"/spec/serviceAccountName\",\"value\":\"jsonpatched\"}]")
        try kubectl("label", "agc", "demo", "team=platform")
        try kubectl("annotate", "agc", "demo", "note=hello")
        let final = try kubectl("get", "agc", "demo", "-o", "json").stdout
        let object = try JSONValue(parsing: final)
        XCTAssertEqual(object[path: ["spec", "serviceAccountName"]], "jsonpatched")
        XCTAssertEqual(object[path: ["metadata", "labels", "team"]], "platform")
        XCTAssertEqual(object[path: ["metadata", "annotations", "note"]], "hello")

        // kubectl puts the dry run in the DeleteOptions body, which is where the server reads it.
        let dryRun = try kubectl("delete", "agc", "demo", "--dry-run=server")
        XCTAssertTrue(dryRun.stdout.contains("deleted (server dry run)"), dryRun.output)
        XCTAssertTrue(try kubectl("get", "agc", "demo", "-o", "name").stdout.contains("demo"), "a server dry run keeps the object")

        let deleted = try kubectl("delete", "agc", "demo")
        XCTAssertTrue(deleted.stdout.contains("deleted"), deleted.output)
        let gone = try kubectl("get", "agc", "demo", expectSuccess: false)
        XCTAssertNotEqual(gone.status, 0)
        XCTAssertTrue(gone.stderr.contains("NotFound") || gone.stderr.contains("not found"), gone.stderr)
    }

    func testServerSideApplyAndConflicts() throws {
        let applied = try kubectl("apply", "--server-side", "--validate=false", "-f", "-", input: Self.connectionYAML)
        XCTAssertTrue(applied.stdout.contains("serverside-applied"), applied.output)
        let conflict = try kubectl("apply", "--server-side", "--validate=false", "--field-manager=other", "-f", "-",
                                   input: Self.connectionYAML.replacingOccurrences(of: "agent-sa", with: "x-sa"), expectSuccess: false)
        XCTAssertNotEqual(conflict.status, 0)
        XCTAssertTrue(conflict.stderr.contains("conflict"), conflict.stderr)
        try kubectl("apply", "--server-side", "--force-conflicts", "--validate=false", "--field-manager=other", "-f", "-",
                    input: Self.connectionYAML.replacingOccurrences(of: "agent-sa", with: "x-sa"))
        XCTAssertEqual(try kubectl("get", "agc", "demo", "-o", "jsonpath={.spec.serviceAccountName}").stdout, "x-sa")
    }

    func testPlainApplyValidatesAgainstServedOpenAPI() throws {
        try kubectl("apply", "-f", "-", input: Self.connectionYAML)
        let again = try kubectl("apply", "-f", "-", input: Self.connectionYAML.replacingOccurrences(of: "agent-sa", with: "b-sa"))
        XCTAssertTrue(again.stdout.contains("configured"), again.output)
    }

    func testWaitForReadyConditionAndWatch() async throws {
        try kubectl("apply", "--validate=false", "-f", "-", input: Self.connectionYAML)
        let (watchProcess, pipe) = try ProcessRunner.start("kubectl", ["--kubeconfig", kubeconfig, "get", "agc", "-w", "--no-headers"])
        let watcher = RunningProcess(process: watchProcess, pipe: pipe)
        defer { watchProcess.terminate() }
        let (waiter, waitPipe) = try ProcessRunner.start("kubectl", ["--kubeconfig", kubeconfig, "wait", "--for=condition=Ready",
                                                                     "agc/demo", "--timeout=30s"])
        // `get -w` lists, then watches from the list's resourceVersion: once the list is printed,
        // the status change below arrives as a watch event. (`kubectl wait` needs no head start:
        // it reads the object before it watches.)
        try await eventually(15, "get -w lists demo: \(watcher.output)") { watcher.output.contains("demo") }
        var object = await tc.send("GET", "/apis/agentgate.io/v1alpha1/namespaces/default/agentconnections/demo").body
        object["status"] = ["conditions": [["type": "Ready", "status": "True", "reason": "Reconciled", "message": "ok",
                                            "lastTransitionTime": .string(KubeTime.format(Date()))]]]
        let status = await tc.send("PUT", "/apis/agentgate.io/v1alpha1/namespaces/default/agentconnections/demo/status", json: object)
        XCTAssertEqual(status.status, 200, status.message)
        waiter.waitUntilExit()
        let waitOutput = String(decoding: waitPipe.fileHandleForReading.availableData, as: UTF8.self)
        XCTAssertEqual(waiter.terminationStatus, 0, waitOutput)
        XCTAssertTrue(waitOutput.contains("condition met"), waitOutput)
        try await eventually(15, "get -w prints the change: \(watcher.output)") { watcher.output.contains("True") }
        let watched = watcher.output
        XCTAssertGreaterThanOrEqual(watched.components(separatedBy: "demo").count - 1, 2, "get -w printed the change: \(watched)")
        XCTAssertTrue(watched.contains("True"), watched)
    }

    func testCreateTokenAndLogs() throws {
        try kubectl("create", "serviceaccount", "bot")
        let token = try kubectl("create", "token", "bot", "--duration=1h").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(token.split(separator: ".").count, 3, "a JWT: \(token)")
        let pod = """
            apiVersion: v1
            kind: Pod
            metadata:
              name: p
            spec:
              containers:
              - name: c
                image: busybox
            """
        try kubectl("apply", "--validate=false", "-f", "-", input: pod)
        let logs = try kubectl("logs", "p", "-c", "c")
        XCTAssertTrue(logs.stdout.contains("log line 1 from p"), logs.output)
        let whoami = try ProcessRunner.run("kubectl", ["--kubeconfig", kubeconfig, "--token", token, "get", "pods"])
        XCTAssertNotEqual(whoami.status, 0, "the bot has no RBAC: \(whoami.output)")
        XCTAssertTrue(whoami.stderr.contains("forbidden"), whoami.stderr)
    }

    func testExecRunsScriptedCommandsAndReportsExitCodes() throws {
        let pod = """
            apiVersion: v1
            kind: Pod
            metadata:
              name: shell
            spec:
              containers:
              - name: main
                image: busybox
                env:
                - name: GREETING
                  value: hello-from-env
            """
        try kubectl("apply", "--validate=false", "-f", "-", input: pod)
        let echo = try kubectl("exec", "shell", "--", "echo", "hello", "world")
        XCTAssertEqual(echo.stdout, "hello world\n", echo.output)
        XCTAssertEqual(try kubectl("exec", "shell", "--", "printenv", "GREETING").stdout, "hello-from-env\n")
        let failing = try kubectl("exec", "shell", "--", "sh", "-c", "echo partial; exit 3", expectSuccess: false)
        XCTAssertEqual(failing.status, 3, "kubectl exits with the command's exit code: \(failing.output)")
        XCTAssertTrue(failing.stdout.contains("partial"), failing.output)
        let missing = try kubectl("exec", "shell", "--", "nosuchcommand", expectSuccess: false)
        XCTAssertEqual(missing.status, 127, missing.output)
        XCTAssertTrue(missing.stderr.contains("nosuchcommand: not found"), missing.output)
    }
}
