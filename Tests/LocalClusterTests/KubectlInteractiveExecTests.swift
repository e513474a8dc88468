import Foundation
import KubeCore
import TestSupport
import XCTest
@testable import LocalCluster

/// `kubectl exec -it` in a real terminal: tmux runs kubectl, types into it and reads the
/// screen, so the TTY path (raw input echoed by the scripted shell, resize, exit code) is
/// exercised as a person at a keyboard would.
final class KubectlInteractiveExecTests: XCTestCase {
    var tc: TestCluster!
    var kubeconfig = ""
    /// A tmux server of this test's own, so nothing else's sessions are touched.
    let socket = "agentgate-test-\(UUID().uuidString.prefix(8))"

    override func setUp() async throws {
        guard (try? ProcessRunner.run("tmux", ["-V"]))?.status == 0 else {
            throw XCTSkip("tmux is not installed (apt-get install -y tmux; .ci/run installs it)")
        }
        tc = try await TestCluster(useTLS: true)
        let file = tc.directory.appendingPathComponent("admin.kubeconfig")
        try FileManager.default.createDirectory(at: tc.directory, withIntermediateDirectories: true)
        try tc.cluster.writeAdminKubeconfig(to: file)
        kubeconfig = file.path
        let pod: JSONValue = [
            "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "shell", "namespace": "default"],
            "spec": ["containers": [["name": "main", "image": "busybox"]]],
        ]
        let created = await tc.send("POST", "/api/v1/namespaces/default/pods", json: pod)
        XCTAssertEqual(created.status, 201, "\(created.body)")
    }

    override func tearDown() async throws {
        _ = try? ProcessRunner.run("tmux", ["-L", socket, "kill-server"], timeout: 10)
        await tc?.stop()
    }

    func tmux(_ arguments: String...) throws -> ProcessResult {
        try ProcessRunner.run("tmux", ["-L", socket] + arguments, timeout: 10)
    }

    /// Starts the tmux server with one detached session running `command`. The server tmux
    /// forks inherits every descriptor its client had — the output pipes, and the one
    /// Foundation's Process watches to learn that the client exited — and would hold them
    /// for its lifetime; so the client starts with only stdin, stdout and stderr, all null.
    func startSession(_ command: String) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        let closeInherited = #"for fd in /proc/$$/fd/*; do n=${fd##*/}; if [ "$n" -gt 2 ]; then eval "exec $n>&-"; fi; done 2>/dev/null; exec "$@""#
        process.arguments = ["-c", closeInherited, "bash", "tmux", "-L", socket, "new-session", "-d", "-s", "exec", "-x", "100", "-y", "30", command]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// The pane's text once it contains `marker`; fails after `timeout`.
    func screen(containing marker: String, timeout: Double = 20, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var text = ""
        while Date() < deadline {
            text = try tmux("capture-pane", "-p", "-t", "exec").stdout
            if text.contains(marker) { return text }
            usleep(100_000)
        }
        XCTFail("screen never showed \(marker.debugDescription):\n\(text)", file: file, line: line)
        return text
    }

    func testInteractiveExecInTerminalRunsTypedCommandsAndReturnsExitCode() throws {
        let command = "kubectl --kubeconfig \(kubeconfig) exec -it shell -- sh; echo KUBECTL-EXIT=$?; sleep 60"
        XCTAssertEqual(try startSession(command), 0, "tmux new-session")
        _ = try screen(containing: "/ #") // capture-pane drops trailing blanks

        _ = try tmux("send-keys", "-t", "exec", "echo hello from tmux", "Enter")
        let afterEcho = try screen(containing: "\nhello from tmux")
        XCTAssertTrue(afterEcho.contains("/ # echo hello from tmux"), "typed input is echoed by the TTY: \(afterEcho)")

        _ = try tmux("send-keys", "-t", "exec", "stty size", "Enter")
        _ = try screen(containing: "\n30 100")

        _ = try tmux("send-keys", "-t", "exec", "exit 7", "Enter")
        let end = try screen(containing: "KUBECTL-EXIT=")
        XCTAssertTrue(end.contains("KUBECTL-EXIT=7"), "kubectl exits with the shell's exit code: \(end)")
        XCTAssertTrue(end.contains("command terminated with exit code 7"), end)
    }
}
