import Foundation
import SessionStore
import TestSupport
import XCTest

/// kr8s and lightkube (PyPI) as an agent through the gateway (HTTPS, OIDC token) to the
/// embedded API server: the same scripts as Kr8sAndLightkubeTests (tests/e2e/kr8s_client.py,
/// tests/e2e/lightkube_client.py) in namespace `default`, every request recorded under the
/// client's own User-Agent.
final class GatewayKr8sAndLightkubeTests: XCTestCase {
    func testKr8sCRUDWatchPatchAndServerSideApplyThroughTheGateway() async throws {
        try await run(script: "kr8s_client.py", module: "kr8s", userAgent: "kr8s",
                      checks: ["discovery", "create-get-list", "patch", "watch-resume", "watch-live",
                               "server-side-apply", "deployment-scale", "delete"])
    }

    func testLightkubeCRUDWatchPatchReplaceAndServerSideApplyThroughTheGateway() async throws {
        // lightkube sends httpx's User-Agent as its own.
        try await run(script: "lightkube_client.py", module: "lightkube", userAgent: "python-httpx",
                      checks: ["create-get-list", "patch", "replace-conflict", "watch-resume", "watch-live",
                               "server-side-apply", "deployment-scale", "delete"])
    }

    private func run(script: String, module: String, userAgent: String, checks: [String]) async throws {
        let probe = try ProcessRunner.run("python3", ["-c", "import \(module)"])
        guard probe.status == 0 else {
            throw XCTSkip("the Python package \(module) is not installed (.ci/run installs it): \(probe.stderr)")
        }
        let harness = try await GatewayHarness()
        do {
            let kubeconfig = try harness.kubeconfig(token: try await harness.token())
            let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("tests/e2e/\(script)").path
            let result = try ProcessRunner.run("python3", [path, kubeconfig, "default"], timeout: 120)
            XCTAssertEqual(result.status, 0, result.output)
            for check in checks {
                XCTAssertTrue(result.stdout.contains("ok \(check)\n"), "\(check): \(result.output)")
            }
            XCTAssertTrue(result.stdout.contains("all ok"), result.output)

            let exchanges = try await harness.exchanges()
            let verbs = Set(exchanges.map(\.verb))
            XCTAssertTrue(verbs.isSuperset(of: ["create", "get", "list", "watch", "patch", "delete"]), "\(verbs)")
            XCTAssertTrue(exchanges.contains { $0.verb == "patch" && $0.statusCode == 409 },
                          "the conflicting server-side apply is recorded with its 409")
            XCTAssertTrue(exchanges.allSatisfy { $0.userAgent?.contains(userAgent) ?? false },
                          "\(Set(exchanges.compactMap(\.userAgent)))")
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }
}
