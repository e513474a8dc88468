import Foundation
import TestSupport
import XCTest
@testable import LocalCluster

/// The official Python `kubernetes` client (from PyPI) against the embedded API server:
/// list, watch resumed and expired, patches, status, conflicts, TokenRequest and RBAC.
final class PythonClientEndToEndTests: XCTestCase {
    func testPythonKubernetesClientWorksAgainstTheLocalCluster() async throws {
        let tc = try await TestCluster(useTLS: true, watchHistory: 20)
        defer { Task { await tc.stop() } }
        let kubeconfig = tc.directory.appendingPathComponent("admin.kubeconfig")
        try tc.cluster.writeAdminKubeconfig(to: kubeconfig)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("tests/e2e/python_client.py")
        let result = try ProcessRunner.run("python3", [script.path, kubeconfig.path], timeout: 120)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.stdout.contains("all ok"), result.output)
    }
}
