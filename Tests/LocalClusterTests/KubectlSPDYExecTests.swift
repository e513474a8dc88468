import Foundation
import KubeCore
import TestSupport
import XCTest
@testable import LocalCluster

/// Real kubectl (v1.32) forced onto its SPDY/3.1 executor (`KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`,
/// what kubectl before 1.30 and its fallback use) against the embedded API server: exec
/// output and exit codes, piped stdin, attach.
final class KubectlSPDYExecTests: XCTestCase {
    var tc: TestCluster!
    var kubeconfig = ""

    override func setUp() async throws {
        tc = try await TestCluster(useTLS: true)
        kubeconfig = try tc.adminKubeconfig()
        let pod: JSONValue = [
            "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "shell", "namespace": "default"],
            "spec": ["containers": [["name": "main", "image": "busybox", "env": [["name": "GREETING", "value": "hello-from-env"]]]]],
        ]
        await tc.createPod(pod)
    }

    override func tearDown() async throws { await tc?.stop() }

    func spdyKubectl(_ args: [String], input: String? = nil) throws -> ProcessResult {
        try ProcessRunner.run("kubectl", ["--kubeconfig", kubeconfig, "--request-timeout=20s", "-v=6"] + args,
                              environment: ["KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"], input: input, timeout: 60)
    }

    func testExecOverSPDYPrintsOutputAndReturnsTheExitCode() throws {
        let echo = try spdyKubectl(["exec", "shell", "--", "echo", "hello", "spdy"])
        XCTAssertEqual(echo.status, 0, echo.stderr)
        XCTAssertEqual(echo.stdout, "hello spdy\n")
        XCTAssertTrue(echo.stderr.contains("Upgrade: SPDY/3.1") || echo.stderr.contains("POST"),
                      "the SPDY executor was used (it POSTs the upgrade): \(echo.stderr)")
        XCTAssertFalse(echo.stderr.contains("websocket"), echo.stderr)

        let failing = try spdyKubectl(["exec", "shell", "--", "sh", "-c", "echo partial; exit 3"])
        XCTAssertEqual(failing.status, 3, "v4's error stream carries the exit code: \(failing.stderr)")
        XCTAssertEqual(failing.stdout, "partial\n")
        XCTAssertTrue(failing.stderr.contains("command terminated with exit code 3"), failing.stderr)

        let missing = try spdyKubectl(["exec", "shell", "--", "nosuchcommand"])
        XCTAssertEqual(missing.status, 127, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("nosuchcommand: not found"), "stderr has its own stream: \(missing.stderr)")
    }

    func testExecOverSPDYWithPipedStdinRunsTheLinesUntilEndOfInput() throws {
        let cat = try spdyKubectl(["exec", "-i", "shell", "--", "cat"], input: "line one\nline two\n")
        XCTAssertEqual(cat.status, 0, cat.stderr)
        XCTAssertEqual(cat.stdout, "line one\nline two\n", "stdin's end ends cat")

        let shell = try spdyKubectl(["exec", "-i", "shell", "--", "sh"], input: "printenv GREETING\nexit 5\n")
        XCTAssertEqual(shell.status, 5, shell.stderr)
        XCTAssertEqual(shell.stdout, "hello-from-env\n")
    }

    func testAttachOverSPDYRunsTypedLines() throws {
        let attached = try spdyKubectl(["attach", "-i", "shell"], input: "echo attached over spdy\nexit 0\n")
        XCTAssertEqual(attached.status, 0, attached.stderr)
        XCTAssertTrue(attached.stdout.contains("attached over spdy\n"), attached.stdout)
    }
}
