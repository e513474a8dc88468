import Foundation
import TestSupport
import XCTest
@testable import LocalCluster

/// Two more Python clients from PyPI against the embedded API server (HTTPS, admin
/// kubeconfig): kr8s (tests/e2e/kr8s_client.py) and lightkube (tests/e2e/lightkube_client.py),
/// each doing CRUD, watch, patch and server-side apply. .ci/run installs both.
final class Kr8sAndLightkubeTests: XCTestCase {
    func testKr8sCRUDWatchPatchAndServerSideApplyAgainstTheLocalCluster() async throws {
        try await run(script: "kr8s_client.py", module: "kr8s",
                      checks: ["discovery", "create-get-list", "patch", "watch-resume", "watch-live",
                               "server-side-apply", "deployment-scale", "delete"])
    }

    func testLightkubeCRUDWatchPatchReplaceAndServerSideApplyAgainstTheLocalCluster() async throws {
        try await run(script: "lightkube_client.py", module: "lightkube",
                      checks: ["create-get-list", "patch", "replace-conflict", "watch-resume", "watch-live",
                               "server-side-apply", "deployment-scale", "delete"])
    }

    private func run(script: String, module: String, checks: [String]) async throws {
        let probe = try ProcessRunner.run("python3", ["-c", "import \(module)"])
        guard probe.status == 0 else {
            throw XCTSkip("the Python package \(module) is not installed (.ci/run installs it): \(probe.stderr)")
        }
        let tc = try await TestCluster(useTLS: true)
        defer { Task { await tc.stop() } }
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("tests/e2e/\(script)").path
        let result = try ProcessRunner.run("python3", [path, try tc.adminKubeconfig(), "e2e"], timeout: 120)
        XCTAssertEqual(result.status, 0, result.output)
        for check in checks {
            XCTAssertTrue(result.stdout.contains("ok \(check)\n"), "\(check): \(result.output)")
        }
        XCTAssertTrue(result.stdout.contains("all ok"), result.output)
    }
}
