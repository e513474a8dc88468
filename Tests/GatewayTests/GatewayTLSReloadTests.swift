import Foundation
import Gateway
import LocalCluster
import TestSupport
import XCTest

/// `--tls-cert`/`--tls-key` reloaded on change: a new TLS handshake presents the new
/// certificate without a restart; a half-written rotation keeps the old pair.
final class GatewayTLSReloadTests: XCTestCase {
    var harness: GatewayHarness!

    override func setUp() async throws { harness = try await GatewayHarness() }
    override func tearDown() async throws { await harness?.stop() }

    /// The leaf certificate a fresh TLS handshake with `port` presents, as PEM (real openssl).
    private func presentedCertificate(port: Int) throws -> String {
        let result = try ProcessRunner.run("bash", ["-c",
            "openssl s_client -connect 127.0.0.1:\(port) -servername localhost </dev/null 2>/dev/null | openssl x509 -outform PEM"],
            timeout: 20)
        XCTAssertEqual(result.status, 0, result.output)
        return Self.normalized(result.stdout)
    }

    static func normalized(_ pem: String) -> String {
        pem.split(whereSeparator: \.isNewline).filter { !$0.hasPrefix("-----") }.joined()
    }

    func testReplacedCertificateFilesArePresentedByTheNextHandshake() async throws {
        let first = try ClusterCertificateAuthority.loadOrCreate(in: harness.directory.appendingPathComponent("pki-1"))
        let second = try ClusterCertificateAuthority.loadOrCreate(in: harness.directory.appendingPathComponent("pki-2"))
        XCTAssertNotEqual(first.serverCertificatePEM, second.serverCertificatePEM)
        let certFile = harness.directory.appendingPathComponent("tls.crt")
        let keyFile = harness.directory.appendingPathComponent("tls.key")
        try first.serverCertificatePEM.write(to: certFile, atomically: true, encoding: .utf8)
        try first.serverKeyPEM.write(to: keyFile, atomically: true, encoding: .utf8)

        let certificate = try ServingCertificate(certificateFile: certFile.path, keyFile: keyFile.path)
        let port = try await harness.gateway.start(host: "127.0.0.1", port: 0, tls: try certificate.makeContext())
        certificate.start(interval: .milliseconds(100))
        defer { certificate.stop() }
        XCTAssertEqual(try presentedCertificate(port: port), Self.normalized(first.serverCertificatePEM))

        // Half a rotation: the new certificate with the old key. The old pair stays in use.
        try second.serverCertificatePEM.write(to: certFile, atomically: true, encoding: .utf8)
        try await Task.sleep(for: .milliseconds(400))
        XCTAssertEqual(certificate.reloadCount, 0, "a certificate without its key is not loaded")
        XCTAssertEqual(try presentedCertificate(port: port), Self.normalized(first.serverCertificatePEM))

        // The key lands: the next handshake presents the new certificate.
        try second.serverKeyPEM.write(to: keyFile, atomically: true, encoding: .utf8)
        let expected = Self.normalized(second.serverCertificatePEM)
        try await eventually(5, "the new certificate is presented") { [self] in
            try self.presentedCertificate(port: port) == expected
        }
        XCTAssertEqual(certificate.reloadCount, 1)

        // And the gateway still serves agents over the new certificate.
        let token = try await harness.token()
        let curl = try ProcessRunner.run("curl", ["-sS", "--cacert", "/dev/stdin", "-H", "Authorization: Bearer \(token)",
                                                  "https://localhost:\(port)/c/default/conn/api/v1/namespaces/default/configmaps"],
                                         input: second.caPEM, timeout: 20)
        XCTAssertEqual(curl.status, 0, curl.output)
        XCTAssertTrue(curl.stdout.contains("ConfigMapList"), curl.output)
    }

    func testUnreadableOrMismatchedFilesFailAtStartWithTheFileNamed() throws {
        let pki = try ClusterCertificateAuthority.loadOrCreate(in: harness.directory.appendingPathComponent("pki"))
        let other = try ClusterCertificateAuthority.loadOrCreate(in: harness.directory.appendingPathComponent("pki-other"))
        let certFile = harness.directory.appendingPathComponent("c.pem")
        let keyFile = harness.directory.appendingPathComponent("k.pem")
        try pki.serverCertificatePEM.write(to: certFile, atomically: true, encoding: .utf8)
        try other.serverKeyPEM.write(to: keyFile, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ServingCertificate(certificateFile: certFile.path, keyFile: keyFile.path)) { error in
            XCTAssertTrue("\(error)".contains("does not match"), "\(error)")
        }
        XCTAssertThrowsError(try ServingCertificate(certificateFile: "/nonexistent/tls.crt", keyFile: keyFile.path)) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/tls.crt"), "\(error)")
        }
    }
}
