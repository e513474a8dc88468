import Foundation
import TestSupport
import XCTest
@testable import LocalCluster

/// The official Python `kubernetes` client's read-modify-replace (tests/e2e/python_replace.py):
/// times it writes as `+00:00` compare as instants, a stale replace is 409, a no-op replace
/// keeps the resourceVersion, and what a real server omits (generation, generateName) stays out.
final class PythonClientReplaceTests: XCTestCase {
    func testPythonClientReadModifyReplaceWorksAndStaleReplaceConflicts() async throws {
        let tc = try await TestCluster(useTLS: true)
        defer { Task { await tc.stop() } }
        let kubeconfig = try tc.adminKubeconfig()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("tests/e2e/python_replace.py")
        let result = try ProcessRunner.run("python3", [script.path, kubeconfig], timeout: 120)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.stdout.contains("all ok"), result.output)
    }
}
