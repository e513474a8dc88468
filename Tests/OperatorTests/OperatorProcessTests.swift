import AgentGateAPI
import Foundation
import KubeClient
import KubeCore
import TestSupport
import XCTest

/// The `agentgate operator` binary as a platform engineer runs it.
final class OperatorProcessTests: XCTestCase {
    static var binary: String { OperatorHarness.repositoryRoot.appendingPathComponent(".build/debug/agentgate").path }

    func testSIGTERMDrainsAndReleasesTheLeaseSoTheProcessExitsCleanly() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else { throw XCTSkip("build the agentgate product first") }
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            let (process, pipe) = try ProcessRunner.start(Self.binary, [
                "operator", "--kubeconfig", h.kubeconfigPath, "--leader-elect", "--metrics-address", "127.0.0.1:0",
                "--health-address", "127.0.0.1:0", "--gateway-url", "https://gw.example.com",
            ])
            let output = LockedText()
            pipe.fileHandleForReading.readabilityHandler = { handle in output.append(String(decoding: handle.availableData, as: UTF8.self)) }
            defer { if process.isRunning { process.terminate() } }
            _ = try await h.admin.create(ClusterFixture.connection("from-binary"))
            let ready = try await h.ready("from-binary", timeout: 30)
            XCTAssertEqual(ready.status?.endpoint, "https://gw.example.com/c/default/from-binary")
            let lease = try await h.admin.get(.leases, name: "agentgate-operator", namespace: "agentgate-system")
            XCTAssertFalse((lease[path: ["spec", "holderIdentity"]]?.stringValue ?? "").isEmpty)

            kill(process.processIdentifier, SIGTERM)
            try await eventually(10, "SIGTERM stops the operator within seconds") { !process.isRunning }
            XCTAssertEqual(process.terminationStatus, 0, output.text)
            let released = try await h.admin.get(.leases, name: "agentgate-operator", namespace: "agentgate-system")
            XCTAssertEqual(released[path: ["spec", "holderIdentity"]]?.stringValue, "", "the lease is released on a clean shutdown")
            XCTAssertTrue(output.text.contains("released lease"), output.text)
            XCTAssertEqual(output.text.components(separatedBy: "no --trusted-issuer given: every OIDC issuer").count - 1, 1,
                           "without --trusted-issuer the operator warns once that every issuer is trusted: \(output.text)")
        }
    }

    func testHelpNamesEveryFlagAndBadFlagsAreRejectedWithTheFlagName() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else { throw XCTSkip("build the agentgate product first") }
        let help = try ProcessRunner.run(Self.binary, ["operator", "--help"])
        for flag in ["--kubeconfig", "--context", "--leader-elect", "--metrics-address", "--health-address",
                     "--gateway-namespace", "--gateway-url", "--workers", "--trusted-issuer", "--watch-namespace"] {
            XCTAssertTrue(help.stdout.contains(flag), "--help must mention \(flag)")
        }
        let badAddress = try ProcessRunner.run(Self.binary, ["operator", "--metrics-address", "nonsense"])
        XCTAssertNotEqual(badAddress.status, 0)
        XCTAssertTrue(badAddress.stderr.contains("--metrics-address nonsense"), badAddress.stderr)
        let badURL = try ProcessRunner.run(Self.binary, ["operator", "--gateway-url", "ftp://x"])
        XCTAssertNotEqual(badURL.status, 0)
        XCTAssertTrue(badURL.stderr.contains("--gateway-url"), badURL.stderr)
        let badIssuer = try ProcessRunner.run(Self.binary, ["operator", "--trusted-issuer", "issuer.example.com"])
        XCTAssertEqual(badIssuer.status, 64)
        XCTAssertTrue(badIssuer.stderr.contains("--trusted-issuer issuer.example.com"), badIssuer.stderr)
        let badNamespace = try ProcessRunner.run(Self.binary, ["operator", "--watch-namespace", "Team_A"])
        XCTAssertEqual(badNamespace.status, 64)
        XCTAssertTrue(badNamespace.stderr.contains("--watch-namespace Team_A"), badNamespace.stderr)
        let noCluster = try ProcessRunner.run(Self.binary, ["operator", "--kubeconfig", "/nonexistent/kubeconfig"])
        XCTAssertNotEqual(noCluster.status, 0)
        XCTAssertTrue(noCluster.stderr.contains("/nonexistent/kubeconfig"), noCluster.stderr)
    }
}
