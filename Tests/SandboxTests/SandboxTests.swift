import Foundation
import HTTPServing
import KubeCore
import TestSupport
import XCTest

/// `agentgate dev` end to end: the binary, real kubectl, the real web page in Chromium, and
/// the README's walkthrough executed as written.
final class SandboxTests: XCTestCase {
    private var sandbox: SandboxProcess?

    override func tearDown() async throws {
        if let sandbox {
            sandbox.stop()
            sandbox.removeWorkDirectory()
        }
        sandbox = nil
    }

    /// The README's walkthrough: its first block must be the command that starts the sandbox;
    /// every later `sh` block is run, in order, in one shell, exactly as written.
    func testReadmeWalkthroughRunsAsWritten() throws {
        let blocks = try Self.walkthroughBlocks()
        XCTAssertEqual(blocks.first, "swift run agentgate dev", "the walkthrough must start with the sandbox command")
        XCTAssertGreaterThanOrEqual(blocks.count, 6, "apply, kubeconfig, kubectl, approval and sessions steps")
        if let busy = [16443, 18443, 18444, 18445].first(where: { LoopbackPort.bindProblem($0) != nil }) {
            XCTFail("the walkthrough uses the default ports and \(busy) is taken (an `agentgate dev` left running?)")
            return
        }
        let dev = try SandboxProcess()  // `swift run agentgate dev`: the same binary, default ports and data dir
        sandbox = dev
        let script = "set -euo pipefail\n" + blocks.dropFirst().joined(separator: "\n")
        let result = try dev.shell(script, timeout: 240)
        let output = result.output
        XCTAssertEqual(result.status, 0, "the walkthrough failed:\n\(output)\n--- sandbox ---\n\(dev.text)")
        // 1: the connection became Ready.
        XCTAssertTrue(output.contains("agentconnection.agentgate.io/my-agent condition met"), output)
        // 3: kubectl as the agent saw the workload, and the Secret only masked.
        XCTAssertTrue(output.contains("deployment.apps/web"), output)
        XCTAssertFalse(output.contains("s3cr3t-demo-password"), "the Secret's value reached the agent:\n\(output)")
        XCTAssertTrue(output.contains("MASKED") || output.contains("****"), output)
        // 4: the held delete completed after the approval.
        XCTAssertTrue(output.contains("deployment.apps \"web\" deleted"), output)
        XCTAssertTrue(output.contains("approved"), output)
        // 5: the session lists and replays the delete.
        XCTAssertTrue(output.contains("demo/my-agent"), output)
        XCTAssertTrue(output.contains("DELETE /apis/apps/v1/namespaces/demo/deployments/web"), output)
        // And the cluster agrees: the Deployment is gone.
        let check = try dev.shell("kubectl get deployment web -n demo")
        XCTAssertNotEqual(check.status, 0)
        XCTAssertTrue(check.output.contains("NotFound") || check.output.contains("not found"), check.output)
    }

    /// The page logs in through the sandbox issuer (authorization code with PKCE, as the
    /// sandbox approver), lists a recorded session,
    /// and its Approve button releases a `kubectl scale --replicas=0` the gateway is holding (a
    /// delete the agent's ServiceAccount may not do is answered Forbidden at once, not held).
    func testWebPageListsSessionsAndItsApproveButtonReleasesAHeldKubectlScaleToZero() throws {
        guard Self.which("chromium") != nil else {
            XCTFail("chromium is not installed (apt-get install chromium; .ci/run installs it)")
            return
        }
        let dev = try SandboxProcess(ports: try .free())
        sandbox = dev
        // The scenario's claude-ops holds every delete for an SRE, but its agent-sa may not
        // delete Deployments: the delete's dry run says so, and that answer comes at once,
        // without asking a human to approve a delete that would fail.
        let claude = try dev.shell("agentgate kubeconfig --connection demo/claude-ops --data-dir .agentgate > claude.kubeconfig")
        XCTAssertEqual(claude.status, 0, claude.output)
        let read = try dev.shell("kubectl --kubeconfig claude.kubeconfig get pods,deployments")
        XCTAssertEqual(read.status, 0, read.output)
        let forbidden = try dev.shell("kubectl --kubeconfig claude.kubeconfig delete deployment web", timeout: 30)
        XCTAssertNotEqual(forbidden.status, 0)
        XCTAssertTrue(forbidden.output.contains("forbidden"), "RBAC's answer to the dry run, at once: \(forbidden.output)")
        // Scaling web to zero, which agent-sa may do, is held until the page approves it.
        let (held, heldOutput) = try ProcessRunner.start("bash", ["-c", "cd '\(dev.workDirectory.path)' && kubectl --kubeconfig claude.kubeconfig scale deployment web --replicas=0"],
                                                         environment: ["PATH": "\(SandboxProcess.binDirectory.path):\(ProcessInfo.processInfo.environment["PATH"] ?? "")"])
        defer { if held.isRunning { held.terminate() } }
        let link = try XCTUnwrap(dev.text.split(separator: "\n").first { $0.contains("Web page:") }?
            .split(separator: " ").first { $0.hasPrefix("http") }.map(String.init))
        let screenshot = FileManager.default.temporaryDirectory.appendingPathComponent("agentgate-webpage.png")
        try? FileManager.default.removeItem(at: screenshot)
        let page = try ProcessRunner.run("python3", [SandboxProcess.repositoryRoot.appendingPathComponent("scripts/e2e/webpage_check.py").path,
                                                     link, screenshot.path, "--approve", "--timeout", "30"], timeout: 120)
        XCTAssertEqual(page.status, 0, page.output)
        let report = try JSONValue(parsing: Array(page.stdout.utf8))
        XCTAssertFalse(report["sessions"]?.arrayValue?.isEmpty ?? true, page.output)
        XCTAssertNotNil(report["clicked"]?.stringValue, page.output)
        // Released: kubectl ends, the scale forwarded with the connection's credential.
        let deadline = Date().addingTimeInterval(30)
        while held.isRunning && Date() < deadline { usleep(100_000) }
        XCTAssertFalse(held.isRunning, "kubectl scale is still held after the page approved it")
        let kubectlOutput = String(decoding: heldOutput.fileHandleForReading.availableData, as: UTF8.self)
        XCTAssertTrue(kubectlOutput.contains("deployment.apps/web scaled"), "the approved scale was done: \(kubectlOutput)")
        XCTAssertFalse(kubectlOutput.contains("denied by"), kubectlOutput)
        // The decision is recorded as the page's: the sandbox approver, with the reason typed in.
        let decided = try dev.shell("agentgate approvals list --state approved -o json")
        let approval = try XCTUnwrap(try JSONValue(parsing: Array(decided.stdout.utf8))["items"]?.arrayValue?.first, decided.output)
        XCTAssertEqual(approval["id"]?.stringValue, report["clicked"]?.stringValue)
        XCTAssertEqual(approval["decidedBy"]?.stringValue, "sandbox-approver")
        XCTAssertEqual(approval["reason"]?.stringValue, "approved from the web page")
        let png = try Data(contentsOf: screenshot)
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47], "the screenshot is not a PNG")
        let kept = SandboxProcess.repositoryRoot.appendingPathComponent(".build/webpage-screenshot.png")
        try? FileManager.default.removeItem(at: kept)
        try? FileManager.default.copyItem(at: screenshot, to: kept)
    }

    func testDevPrintsWhereEverythingIsAndServesTheScenarioConnectionWithMaskedSecrets() throws {
        let ports = try SandboxProcess.Ports.free()
        let dev = try SandboxProcess(ports: ports)
        sandbox = dev
        XCTAssertTrue(dev.text.contains("Admin kubeconfig: \(dev.dataDirectory.path)/admin.kubeconfig"), dev.text)
        XCTAssertTrue(dev.text.contains("Gateway:          https://127.0.0.1:\(ports.gateway)/c/"), dev.text)
        XCTAssertTrue(dev.text.contains("Web page:         http://127.0.0.1:\(ports.admin)/  (logs in"), dev.text)
        XCTAssertTrue(dev.text.contains("agentgate kubeconfig --connection demo/claude-ops"), dev.text)
        let ready = try dev.shell("kubectl get agentconnection claude-ops -n demo -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status} {.status.endpoint}'")
        XCTAssertEqual(ready.stdout, "True https://127.0.0.1:\(ports.gateway)/c/demo/claude-ops", ready.output)
        XCTAssertEqual(try dev.shell("agentgate kubeconfig --connection demo/claude-ops > agent.kubeconfig").status, 0)
        let secret = try dev.shell("kubectl --kubeconfig agent.kubeconfig get secret db-credentials -o json")
        XCTAssertEqual(secret.status, 0, secret.output)
        XCTAssertFalse(secret.stdout.contains(Data("s3cr3t-demo-password".utf8).base64EncodedString()), secret.stdout)
        XCTAssertFalse(secret.stdout.contains("s3cr3t-demo-password"), secret.stdout)
        // The agent's kubeconfig holds no cluster credential: only the exec plugin.
        let agentKubeconfig = try String(contentsOf: dev.workDirectory.appendingPathComponent("agent.kubeconfig"), encoding: .utf8)
        XCTAssertTrue(agentKubeconfig.contains("exec-credential"), agentKubeconfig)
        XCTAssertFalse(agentKubeconfig.contains("token:"), agentKubeconfig)
        let sessions = try dev.shell("agentgate sessions list --connection demo/claude-ops -o name")
        XCTAssertEqual(sessions.status, 0, sessions.output)
        XCTAssertEqual(sessions.stdout.split(separator: "\n").count, 1, "one agent, one session: \(sessions.output)")
    }

    func testDevTokenIsAcceptedForItsConnectionAndCarriesTheRequestedIdentity() throws {
        let dev = try SandboxProcess(ports: try .free())
        sandbox = dev
        let token = try dev.shell("agentgate dev token --connection demo/claude-ops --subject alice --group sre --model claude-test")
        XCTAssertEqual(token.status, 0, token.output)
        let claims = try Self.claims(of: token.stdout)
        XCTAssertEqual(claims["sub"]?.stringValue, "alice")
        XCTAssertEqual(claims["groups"], ["sre"])
        XCTAssertEqual(claims["model"]?.stringValue, "claude-test")
        XCTAssertEqual(claims["aud"]?.stringValue, "agentgate")
        XCTAssertEqual(claims["iss"]?.stringValue, "http://127.0.0.1:\(dev.ports.issuer)")
        // The default identity is the connection's: the gateway serves it.
        let agent = try dev.shell("agentgate dev token --connection demo/claude-ops")
        XCTAssertEqual(try Self.claims(of: agent.stdout)["sub"]?.stringValue, "agent:claude-ops")
        let withToken = try dev.shell("agentgate kubeconfig --connection demo/claude-ops --token '\(agent.stdout.trimmingCharacters(in: .whitespacesAndNewlines))' > t.kubeconfig && kubectl --kubeconfig t.kubeconfig get deployments -o name")
        XCTAssertEqual(withToken.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "deployment.apps/web", withToken.output)
        // alice is not an allowed subject of the connection: the gateway refuses her.
        let alice = try dev.shell("agentgate kubeconfig --connection demo/claude-ops --token '\(token.stdout.trimmingCharacters(in: .whitespacesAndNewlines))' > a.kubeconfig && kubectl --kubeconfig a.kubeconfig get pods")
        XCTAssertNotEqual(alice.status, 0)
        XCTAssertTrue(alice.output.contains("Forbidden") || alice.output.contains("forbidden"), alice.output)
        let credential = try dev.shell("agentgate dev token --connection demo/claude-ops --output exec-credential")
        let parsed = try JSONValue(parsing: Array(credential.stdout.utf8))
        XCTAssertEqual(parsed["kind"]?.stringValue, "ExecCredential")
        XCTAssertNotNil(parsed[path: ["status", "expirationTimestamp"]]?.stringValue)
    }

    func testBadInputToDevTokenAndKubeconfigNamesTheProblem() throws {
        let dev = try SandboxProcess(ports: try .free())
        sandbox = dev
        let cases: [(String, String)] = [
            ("agentgate dev token --connection demo/nope", "agentconnection demo/nope not found"),
            ("agentgate dev token --connection demo", "--connection demo: expected NAMESPACE/NAME"),
            ("agentgate dev token --connection demo/claude-ops --lifetime 0", "--lifetime 0"),
            ("agentgate kubeconfig --connection demo/claude-ops --certificate-authority /nonexistent", "--certificate-authority /nonexistent"),
            ("agentgate dev token --connection demo/claude-ops --data-dir /nonexistent-dir", "no kubeconfig at /nonexistent-dir/admin.kubeconfig"),
        ]
        for (command, expected) in cases {
            let result = try dev.shell(command)
            XCTAssertNotEqual(result.status, 0, command)
            XCTAssertTrue(result.stderr.contains(expected), "\(command): \(result.output)")
        }
    }

    func testAPortInUseNamesTheFlagThatChangesIt() throws {
        var ports = try SandboxProcess.Ports.free()
        let blocker = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(blocker) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(blocker, $0, length) == 0 && listen(blocker, 1) == 0 && getsockname(blocker, $0, &length) == 0 }
        }
        ports.admin = Int(UInt16(bigEndian: address.sin_port))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentgate-busy-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try ProcessRunner.run(SandboxProcess.binary, ["dev", "--data-dir", directory.path] + ports.flags, timeout: 60)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("127.0.0.1:\(ports.admin)"), result.output)
        XCTAssertTrue(result.output.contains("Choose another port with --admin-port"), result.output)
        XCTAssertFalse(result.output.contains("Starting the embedded"), "nothing should start before the ports are checked: \(result.output)")
    }

    func testARestartKeepsTheClusterAndDoesNotReapplyTheScenario() throws {
        let ports = try SandboxProcess.Ports.free()
        let first = try SandboxProcess(ports: ports)
        sandbox = first
        XCTAssertEqual(try first.shell("kubectl delete secret db-credentials -n demo").status, 0)
        XCTAssertEqual(first.stop(), 0, first.text)
        let second = try SandboxProcess(ports: ports, workDirectory: first.workDirectory)
        sandbox = second
        XCTAssertFalse(second.text.contains("Applying the demo scenario"), second.text)
        let gone = try second.shell("kubectl get secret db-credentials -n demo")
        XCTAssertNotEqual(gone.status, 0, "the scenario was applied again: \(gone.output)")
        let agc = try second.shell("kubectl get agentconnection claude-ops -n demo -o name")
        XCTAssertEqual(agc.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "agentconnection.agentgate.io/claude-ops", agc.output)
        // The agent still gets through after the restart (issuer keys and CA kept).
        XCTAssertEqual(try second.shell("agentgate kubeconfig --connection demo/claude-ops > agent.kubeconfig && kubectl --kubeconfig agent.kubeconfig get deployments").status, 0)
    }

    func testEmptySkipsTheScenario() throws {
        let dev = try SandboxProcess(ports: try .free(), extraArguments: ["--empty"])
        sandbox = dev
        let namespaces = try dev.shell("kubectl get namespaces -o name")
        XCTAssertFalse(namespaces.stdout.contains("namespace/demo"), namespaces.output)
        XCTAssertTrue(namespaces.stdout.contains("namespace/agentgate-system"), namespaces.output)
    }

    // MARK: - helpers

    static func walkthroughBlocks() throws -> [String] {
        let readme = try String(contentsOf: SandboxProcess.repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        guard let start = readme.range(of: "## Five-minute walkthrough") else { throw SandboxTestError("README has no walkthrough") }
        var section = String(readme[start.upperBound...])
        if let end = section.range(of: "\n## ") { section = String(section[..<end.lowerBound]) }
        var blocks: [String] = []
        var current: [String]?
        for line in section.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil, line == "```sh" { current = [] } else if current != nil, line == "```" {
                blocks.append(current!.joined(separator: "\n"))
                current = nil
            } else if current != nil { current!.append(String(line)) }
        }
        return blocks
    }

    static func claims(of token: String) throws -> JSONValue {
        let parts = token.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".")
        guard parts.count == 3 else { throw SandboxTestError("not a JWT: \(token)") }
        var payload = String(parts[1]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while payload.count % 4 != 0 { payload += "=" }
        return try JSONValue(parsing: Array(Data(base64Encoded: payload) ?? Data()))
    }

    static func which(_ program: String) -> String? {
        let result = try? ProcessRunner.run("bash", ["-c", "command -v \(program)"])
        guard let result, result.status == 0 else { return nil }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The embedded copies the binary carries match their files (scripts/embed-assets.py).
final class EmbeddedAssetTests: XCTestCase {
    func testEmbeddedScenarioMatchesSamplesScenario() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.path("samples/scenario").path)
            .filter { $0.hasSuffix(".yaml") }.sorted()
        try assertEmbedded("Sources/Sandbox/ScenarioFiles.swift", equal: files, in: "samples/scenario")
    }

    func testEmbeddedGatewayRBACMatchesConfigRBAC() throws {
        try assertEmbedded("Sources/Sandbox/GatewayRBACFiles.swift",
                           equal: ["service_accounts.yaml", "gateway_role.yaml", "gateway_cluster_role.yaml"], in: "config/rbac")
    }

    static func path(_ relative: String) -> URL { SandboxProcess.repositoryRoot.appendingPathComponent(relative) }

    /// The generated `swiftFile` embeds exactly `names`, each equal to its file in `directory`.
    func assertEmbedded(_ swiftFile: String, equal names: [String], in directory: String,
                        file: StaticString = #filePath, line: UInt = #line) throws {
        let embedded = try Self.embedded(swiftFile)
        XCTAssertEqual(embedded.map(\.0), names, "run python3 scripts/embed-assets.py", file: file, line: line)
        for (name, text) in embedded {
            let original = try String(contentsOf: Self.path(directory).appendingPathComponent(name), encoding: .utf8)
            XCTAssertEqual(text, original.trimmingCharacters(in: .newlines),
                           "\(name) differs from its embedded copy: run python3 scripts/embed-assets.py", file: file, line: line)
        }
    }

    /// Reads the generated Swift file back: `("name", #"""` … `"""#),` blocks.
    static func embedded(_ relativePath: String) throws -> [(String, String)] {
        let source = try String(contentsOf: SandboxProcess.repositoryRoot.appendingPathComponent(relativePath), encoding: .utf8)
        var result: [(String, String)] = []
        var name: String?
        var lines: [Substring] = []
        for line in source.split(separator: "\n", omittingEmptySubsequences: false) {
            if name == nil, line.hasPrefix("        (\""), line.hasSuffix("\", #\"\"\"") {
                name = String(line.dropFirst(10).dropLast(7))
                lines = []
            } else if let current = name, line == "\"\"\"#)," {
                result.append((current, lines.joined(separator: "\n")))
                name = nil
            } else if name != nil {
                lines.append(line)
            }
        }
        return result
    }
}
