import Foundation
import SessionStore
import TestSupport
import XCTest

/// The official Python `kubernetes` client as an agent through the gateway (HTTPS, OIDC
/// token) to the embedded API server: get, list, watch, server-side apply, JSON patch,
/// delete (scripts/e2e/python_gateway_client.py), all recorded.
class GatewayPythonClientTests: XCTestCase {
    /// The session-store backend; the `...OnPostgres` subclass runs every test here on PostgreSQL.
    class var backend: GatewayStoreBackend { .sqlite }

    static var script: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/e2e/python_gateway_client.py")
    }

    func testPythonClientGetListWatchApplyPatchDeleteThroughTheGateway() async throws {
        let probe = try ProcessRunner.run("python3", ["-c", "import kubernetes"])
        guard probe.status == 0 else {
            throw XCTSkip("the Python kubernetes client is not installed (.ci/run installs it): \(probe.stderr)")
        }
        let harness = try await GatewayHarness(backend: Self.backend)
        do {
            let kubeconfig = try harness.kubeconfig(token: try await harness.token())
            let run = try ProcessRunner.run("python3", [Self.script.path, kubeconfig], timeout: 120)
            XCTAssertEqual(run.status, 0, run.output)
            for check in ["get", "list", "watch", "apply-patch", "secret-masked", "delete", "forged-401"] {
                XCTAssertTrue(run.stdout.contains("ok \(check)\n"), "\(check): \(run.output)")
            }
            let exchanges = try await harness.exchanges()
            let verbs = Set(exchanges.map(\.verb))
            XCTAssertTrue(verbs.isSuperset(of: ["create", "get", "list", "watch", "patch", "delete"]), "\(verbs)")
            let apply = try XCTUnwrap(exchanges.first { $0.verb == "patch" && $0.name == "py-applied" && $0.query.contains("fieldManager=python-agent") })
            XCTAssertEqual(apply.statusCode, 201, "a server-side apply that creates answers 201")
            let watch = try XCTUnwrap(exchanges.first { $0.verb == "watch" })
            let chunks = try await harness.store.streamChunks(exchangeID: watch.id)
            XCTAssertTrue(chunks.contains { String(decoding: $0.data, as: UTF8.self).contains("MODIFIED") })
            XCTAssertTrue(exchanges.allSatisfy { $0.userAgent?.contains("OpenAPI-Generator") ?? false }, "the Python client's own User-Agent is recorded")
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }
}

/// GatewayPythonClientTests with the session store on PostgreSQL.
final class GatewayPythonClientOnPostgresTests: GatewayPythonClientTests {
    override class var backend: GatewayStoreBackend { .postgres }

    override func testPythonClientGetListWatchApplyPatchDeleteThroughTheGateway() async throws {
        try await super.testPythonClientGetListWatchApplyPatchDeleteThroughTheGateway()
    }
}
