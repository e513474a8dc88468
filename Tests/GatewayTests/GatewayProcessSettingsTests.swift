import Foundation
import KubeCore
import SessionStore
import TestSupport
import XCTest

/// The `agentgate gateway` process as a Deployment runs it: settings read from mounted
/// Secret files, and the probes on its metrics listener.
final class GatewayProcessSettingsTests: XCTestCase {
    var harness: GatewayHarness!

    override func setUp() async throws {
        harness = try await GatewayHarness()
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    func write(_ text: String, _ name: String) throws -> String {
        let url = harness.directory.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func testStoreURLAdminTokenAndMaskingKeyComeFromFilesAndReadinessAnswersOnTheMetricsPort() async throws {
        let store = try write("  \(harness.storeURL)\n", "store-url")
        let adminToken = try write("shared-admin-token-0123456789\n", "admin-token")
        let key = try write("shared-masking-key-0123456789\n", "masking-key")
        let metricsPort = try LoopbackTCP.freePort()
        let gateway = try await harness.startGatewayBinary(
            name: "gw", storeArguments: ["--store-file", store],
            extraArguments: ["--admin-token-file", adminToken, "--masking-key-file", key, "--metrics-address", "127.0.0.1:\(metricsPort)"])
        let agent = try await harness.token()
        let listed = try await GatewayHarness.send(.GET, "\(gateway.connectionURL)/api/v1/namespaces/default/configmaps",
                                                   headers: [("Authorization", "Bearer \(agent)")])
        XCTAssertEqual(listed.status, 200, listed.body)
        let sessions = try await GatewayHarness.send(.GET, "\(gateway.adminURL)/api/v1/sessions",
                                                     headers: [("Authorization", "Bearer shared-admin-token-0123456789")])
        XCTAssertEqual(sessions.status, 200, "the admin API takes the token from the file: \(sessions.body)")
        XCTAssertEqual(try JSONValue(parsing: sessions.body)["items"]?.arrayValue?.count, 1, "the request is recorded: \(sessions.body)")
        let reopened = try await SessionStores.open(url: harness.storeURL)
        let stored = try await reopened.listSessions(SessionFilter())
        try await reopened.close()
        XCTAssertEqual(stored.count, 1, "in the store the file names")
        let metrics = "http://127.0.0.1:\(metricsPort)"
        let ready = try await GatewayHarness.send(.GET, "\(metrics)/readyz")
        XCTAssertEqual(ready.status, 200, ready.body)
        let healthy = try await GatewayHarness.send(.GET, "\(metrics)/healthz")
        XCTAssertEqual(healthy.status, 200, healthy.body)
        let scraped = try await GatewayHarness.send(.GET, "\(metrics)/metrics")
        XCTAssertTrue(scraped.body.contains("agentgate_gateway_requests_total"), scraped.body)
        let unknown = try await GatewayHarness.send(.GET, "\(metrics)/nope")
        XCTAssertEqual(unknown.status, 404)
        let output = gateway.output
        try await eventually(10, "an access log line for the list: \(output.text)") {
            output.text.split(separator: "\n").contains { line in
                line.contains("agentgate.access") && line.contains("verb=list") && line.contains("resource=configmaps")
                    && line.contains("code=200") && line.contains("subject=agent-1") && line.contains("latency_ms=")
            }
        }
    }

    func testConflictingOrUnreadableSettingFilesStopTheGatewayWithTheirName() throws {
        let store = try write(harness.storeURL, "store-url")
        let kubeconfig = harness.directory.appendingPathComponent("k.kubeconfig")
        try harness.cluster.adminKubeconfig().write(to: kubeconfig, atomically: true, encoding: .utf8)
        let base = ["gateway", "--kubeconfig", kubeconfig.path, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                    "--data-dir", harness.directory.appendingPathComponent("d").path]
        let both = try ProcessRunner.run(GatewayHarness.binary.path, base + ["--store", harness.storeURL, "--store-file", store], timeout: 30)
        XCTAssertNotEqual(both.status, 0)
        XCTAssertTrue(both.stderr.contains("--store and --store-file"), both.output)
        let missing = try ProcessRunner.run(GatewayHarness.binary.path, base + ["--store-file", "/nonexistent/url"], timeout: 30)
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("--store-file /nonexistent/url: cannot be read"), missing.output)
        let shortToken = try write("short", "admin-token")
        let short = try ProcessRunner.run(GatewayHarness.binary.path, base + ["--store-file", store, "--admin-token-file", shortToken], timeout: 30)
        XCTAssertNotEqual(short.status, 0)
        XCTAssertTrue(short.stderr.contains("--admin-token-file \(shortToken): the key has 5 bytes"), short.output)
    }

    func testAStoreThatNeverAnswersEndsStartUpWithinTheBoundWithAWarningAndTheRedactedURL() throws {
        let kubeconfig = harness.directory.appendingPathComponent("k.kubeconfig")
        try harness.cluster.adminKubeconfig().write(to: kubeconfig, atomically: true, encoding: .utf8)
        let nobody = try LoopbackTCP.freePort()
        let started = Date()
        let result = try ProcessRunner.run(GatewayHarness.binary.path, [
            "gateway", "--kubeconfig", kubeconfig.path, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
            "--data-dir", harness.directory.appendingPathComponent("d").path,
            "--store", "postgres://agentgate:s3cret@127.0.0.1:\(nobody)/agentgate", "--store-timeout", "12s",
        ], timeout: 60)
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertLessThan(Date().timeIntervalSince(started), 40, "it gave up near its bound")
        XCTAssertTrue(result.stderr.contains("did not answer within 12.0 seconds (--store-timeout)"), result.output)
        XCTAssertTrue(result.output.contains("warning") && result.output.contains("does not answer yet"), "it warned while waiting: \(result.output)")
        XCTAssertFalse(result.output.contains("s3cret"), "the password is never printed")
    }

    /// Pods run as uid 65532 with every capability dropped (config/). A socket option only
    /// root may set (SO_DEBUG, which `socketOption(.tcp_nodelay)` set by mistake) made every
    /// listener close each connection it accepted there, while tests run as root passed.
    func testAGatewayRunAsAnUnprivilegedUserWithoutCapabilitiesServesItsListeners() async throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            throw XCTSkip("needs root and setpriv to run the gateway as uid 65532")
        }
        let home = URL(fileURLWithPath: "/tmp/agentgate-unprivileged-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        defer { try? FileManager.default.removeItem(at: home) }
        let kubeconfig = home.appendingPathComponent("kubeconfig")
        try harness.cluster.adminKubeconfig().write(to: kubeconfig, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: kubeconfig.path)
        let metricsPort = try LoopbackTCP.freePort()
        let (process, pipe) = try ProcessRunner.start("/usr/bin/setpriv", [
            "--reuid=65532", "--regid=65532", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
            GatewayHarness.binary.path, "gateway", "--kubeconfig", kubeconfig.path, "--listen", "127.0.0.1:0",
            "--admin-listen", "127.0.0.1:0", "--metrics-address", "127.0.0.1:\(metricsPort)",
            "--data-dir", home.appendingPathComponent("data").path, "--gateway-namespace", "default",
        ])
        harness.terminateOnStop(process)
        let output = LockedText()
        pipe.fileHandleForReading.readabilityHandler = { output.append(String(decoding: $0.availableData, as: UTF8.self)) }
        try await eventually(60, "the unprivileged gateway starts: \(output.text)") { output.text.contains("admin API on port") || !process.isRunning }
        XCTAssertTrue(process.isRunning, output.text)
        let healthy = try await GatewayHarness.send(.GET, "http://127.0.0.1:\(metricsPort)/healthz")
        XCTAssertEqual(healthy.status, 200, "the listener answers a connection as uid 65532: \(healthy.body)")
    }
}
