import Foundation
import Gateway
import KubeCore
import Sandbox
import TestSupport
import XCTest

/// The admin plane as a Deployment runs it: the `agentgate gateway` binary serving its admin
/// API over TLS with `--admin-auth-file` and the static token off, and the `agentgate
/// sessions` CLI reaching it with a person's OIDC token and `--admin-ca`.
final class AdminPlaneProcessTests: XCTestCase {
    var harness: GatewayHarness!
    var adminIssuer: DevOIDCIssuer!

    override func setUp() async throws {
        harness = try await GatewayHarness()
        adminIssuer = try DevOIDCIssuer()
    }

    override func tearDown() async throws {
        await adminIssuer?.shutdown()
        await harness?.stop()
    }

    func write(_ text: String, _ name: String) throws -> String {
        let url = harness.directory.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func agentgate(_ arguments: [String]) throws -> ProcessResult {
        try ProcessRunner.run(GatewayHarness.binary.path, arguments, timeout: 60)
    }

    func testTheAdminAPIServesTLSAndTheCLIReadsWithAPersonsTokenAndTheAdminCA() async throws {
        let issuerURL = try await adminIssuer.start()
        let authFile = try write("""
            issuers: [{issuer: \(issuerURL), audiences: [agentgate-admin]}]
            roles: {reviewer: [auditors], admin: [platform]}
            """, "admin-auth.yaml")
        let ca = harness.certificateAuthority
        let cert = try write(ca.serverCertificatePEM, "admin.crt"), key = try write(ca.serverKeyPEM, "admin.key")
        let caFile = try write(ca.caPEM, "admin-ca.crt")
        let gateway = try await harness.startGatewayBinary(name: "gw", extraArguments: [
            "--admin-tls-cert", cert, "--admin-tls-key", key, "--admin-auth-file", authFile, "--no-admin-token"])
        let agent = try await harness.token()
        _ = try await GatewayHarness.send(.GET, "\(gateway.connectionURL)/api/v1/namespaces/default/configmaps",
                                          headers: [("Authorization", "Bearer \(agent)")])
        let adminURL = "https://127.0.0.1:\(gateway.adminPort)"
        let address = try String(contentsOf: gateway.dataDirectory.appendingPathComponent("admin-address"), encoding: .utf8)
        XCTAssertEqual(address.trimmingCharacters(in: .whitespacesAndNewlines), adminURL)
        XCTAssertFalse(FileManager.default.fileExists(atPath: gateway.dataDirectory.appendingPathComponent("admin-token").path),
                       "no static token is made when it is off")

        let rita = try await adminIssuer.token(.init(subject: "rita", audience: "agentgate-admin", groups: ["auditors"]))
        let listed = try agentgate(["sessions", "list", "--admin-url", adminURL, "--token", rita, "--admin-ca", caFile, "-o", "json"])
        XCTAssertEqual(listed.status, 0, listed.output)
        XCTAssertEqual(try JSONValue(parsing: Array(listed.stdout.utf8))["items"]?.arrayValue?.first?["subject"]?.stringValue, "agent-1")

        let untrusted = try agentgate(["sessions", "list", "--admin-url", adminURL, "--token", rita])
        XCTAssertEqual(untrusted.status, 1, "the admin certificate is not signed by the system's roots: \(untrusted.output)")
        XCTAssertTrue(untrusted.stderr.contains("cannot reach the admin API at \(adminURL)"), untrusted.stderr)

        let plain = try agentgate(["sessions", "list", "--admin-url", "http://127.0.0.1:\(gateway.adminPort)", "--token", rita])
        XCTAssertEqual(plain.status, 1, "the admin port speaks TLS only: \(plain.output)")

        let ada = try await adminIssuer.token(.init(subject: "ada", audience: "agentgate-admin", groups: ["platform"]))
        let reads = try agentgate(["sessions", "reads", "--admin-url", adminURL, "--token", ada, "--admin-ca", caFile, "--viewer", "rita"])
        XCTAssertEqual(reads.status, 0, reads.output)
        let rows = reads.stdout.split(separator: "\n")
        XCTAssertEqual(rows.count, 2, reads.stdout)
        XCTAssertTrue(rows.last?.contains("rita") == true && rows.last?.contains("sessions.list") == true, reads.stdout)
        XCTAssertTrue(rows.last?.contains("127.0.0.1") == true, reads.stdout)

        let denied = try agentgate(["sessions", "reads", "--admin-url", adminURL, "--token", rita, "--admin-ca", caFile])
        XCTAssertEqual(denied.status, 1, denied.output)
        XCTAssertTrue(denied.stderr.contains("needs the admin role"), denied.stderr)
    }

    func testAPlainHTTPAdminListenerOffLoopbackIsRefused() throws {
        let result = try agentgate(["gateway", "--admin-listen", "0.0.0.0:0", "--data-dir", harness.directory.appendingPathComponent("x").path])
        XCTAssertNotEqual(result.status, 0, result.output)
        XCTAssertTrue(result.stderr.contains("--admin-listen 0.0.0.0:0: plain HTTP is only served on loopback; give --admin-tls-cert and --admin-tls-key"),
                      result.stderr)
    }

    func testABadAdminAuthFileStopsTheGatewayNamingTheField() async throws {
        let authFile = try write("issuers: [{issuer: https://idp.example.com}]\nroles: {admin: [x]}\n", "bad-auth.yaml")
        let kubeconfig = try write(try harness.cluster.adminKubeconfig(), "gw.kubeconfig")
        let result = try agentgate(["gateway", "--kubeconfig", kubeconfig, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                                    "--data-dir", harness.directory.appendingPathComponent("bad").path, "--store", harness.storeURL,
                                    "--admin-auth-file", authFile])
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(result.stderr.contains("--admin-auth-file \(authFile): issuers[0].audiences: is required"), result.stderr)
    }

    /// The CLI no longer waits its whole deadline on an address nobody listens on.
    func testTheCLIGivesUpAtOnceWhenNothingListens() throws {
        let port = try LoopbackTCP.freePort()
        let started = Date()
        let result = try agentgate(["sessions", "list", "--admin-url", "http://127.0.0.1:\(port)", "--token", "x"])
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, result.output)
        XCTAssertTrue(result.stderr.contains("cannot reach the admin API"), result.stderr)
    }
}
