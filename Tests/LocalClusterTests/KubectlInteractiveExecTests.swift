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
    var terminal: TmuxTerminal!

    override func setUp() async throws {
        guard let terminal = TmuxTerminal(width: 100, height: 30) else {
            throw XCTSkip("tmux is not installed (apt-get install -y tmux; .ci/run installs it)")
        }
        self.terminal = terminal
        tc = try await TestCluster(useTLS: true)
        kubeconfig = try tc.adminKubeconfig()
        let pod: JSONValue = [
            "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "shell", "namespace": "default"],
            "spec": ["containers": [["name": "main", "image": "busybox"]]],
        ]
        await tc.createPod(pod)
    }

    override func tearDown() async throws {
        terminal?.kill()
        await tc?.stop()
    }

    func testInteractiveExecInTerminalRunsTypedCommandsAndReturnsExitCode() throws {
        let command = "kubectl --kubeconfig \(kubeconfig) exec -it shell -- sh; echo KUBECTL-EXIT=$?; sleep 60"
        XCTAssertEqual(try terminal.start(command), 0, "tmux new-session")
        _ = try terminal.screen(containing: "/ #") // capture-pane drops trailing blanks

        try terminal.send("echo hello from tmux", "Enter")
        let afterEcho = try terminal.screen(containing: "\nhello from tmux")
        XCTAssertTrue(afterEcho.contains("/ # echo hello from tmux"), "typed input is echoed by the TTY: \(afterEcho)")

        try terminal.send("stty size", "Enter")
        _ = try terminal.screen(containing: "\n30 100")

        try terminal.send("exit 7", "Enter")
        let end = try terminal.screen(containing: "KUBECTL-EXIT=")
        XCTAssertTrue(end.contains("KUBECTL-EXIT=7"), "kubectl exits with the shell's exit code: \(end)")
        XCTAssertTrue(end.contains("command terminated with exit code 7"), end)
    }
}
