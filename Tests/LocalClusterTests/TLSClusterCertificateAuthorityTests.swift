import Crypto
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import SwiftASN1
import X509
import XCTest
@testable import LocalCluster

/// The local cluster's CA: certificates verify as a chain for the loopback names, persist in
/// the data directory, and a real TLS client (curl) accepts the server with only `--cacert`.
final class TLSClusterCertificateAuthorityTests: XCTestCase {
    private func temporaryDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("tls-ca-\(UUID().uuidString)")
    }

    private func verify(_ leafPEM: String, caPEM: String, hostname: String?, ip: String?) async throws -> Bool {
        let root = try Certificate(pemEncoded: caPEM)
        let leaf = try Certificate(pemEncoded: leafPEM)
        var verifier = Verifier(rootCertificates: CertificateStore([root])) {
            RFC5280Policy()
            ServerIdentityPolicy(serverHostname: hostname, serverIP: ip)
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore())
        if case .validCertificate = result { return true }
        return false
    }

    func testServingCertificateChainsToCAForLoopbackNames() async throws {
        let ca = try ClusterCertificateAuthority.loadOrCreate(in: nil)
        let leaf = try Certificate(pemEncoded: ca.serverCertificatePEM)
        let sans = try XCTUnwrap(leaf.extensions.subjectAlternativeNames)
        XCTAssertTrue(sans.contains(.dnsName("localhost")))
        XCTAssertTrue(sans.contains(.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))))
        XCTAssertTrue(sans.contains(.ipAddress(ASN1OctetString(contentBytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]))))
        let lifetime = leaf.notValidAfter.timeIntervalSince(leaf.notValidBefore)
        XCTAssertEqual(lifetime, 365 * 86_400 + 300, accuracy: 2)

        for (host, ip) in [("localhost", nil), (nil, "127.0.0.1"), (nil, "::1")] as [(String?, String?)] {
            let valid = try await verify(ca.serverCertificatePEM, caPEM: ca.caPEM, hostname: host, ip: ip)
            XCTAssertTrue(valid, "\(host ?? ip ?? "")")
        }
        let wrongName = try await verify(ca.serverCertificatePEM, caPEM: ca.caPEM, hostname: "example.com", ip: nil)
        XCTAssertFalse(wrongName)
        let otherCA = try ClusterCertificateAuthority.loadOrCreate(in: nil)
        let foreign = try await verify(ca.serverCertificatePEM, caPEM: otherCA.caPEM, hostname: "localhost", ip: nil)
        XCTAssertFalse(foreign)
    }

    func testCertificatesPersistAndServingCertificateIsReissuedFromKeptCA() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try ClusterCertificateAuthority.loadOrCreate(in: dir)
        let second = try ClusterCertificateAuthority.loadOrCreate(in: dir)
        XCTAssertEqual(first.caPEM, second.caPEM)
        XCTAssertEqual(first.serverCertificatePEM, second.serverCertificatePEM)
        for name in ["ca.key", "server.key"] {
            let mode = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(name).path)[.posixPermissions]
            XCTAssertEqual((mode as? NSNumber)?.intValue, 0o600, name)
        }

        try FileManager.default.removeItem(at: dir.appendingPathComponent("server.crt"))
        let third = try ClusterCertificateAuthority.loadOrCreate(in: dir)
        XCTAssertEqual(third.caPEM, first.caPEM, "kubeconfigs holding the CA stay valid")
        XCTAssertNotEqual(third.serverCertificatePEM, first.serverCertificatePEM)

        let nearExpiry = Date(timeIntervalSinceNow: 340 * 86_400)
        let renewed = try ClusterCertificateAuthority.loadOrCreate(in: dir, now: nearExpiry)
        XCTAssertEqual(renewed.caPEM, first.caPEM)
        XCTAssertNotEqual(renewed.serverCertificatePEM, third.serverCertificatePEM)
    }

    func testClientCertificateCarriesUserAndGroups() async throws {
        let ca = try ClusterCertificateAuthority.loadOrCreate(in: nil)
        let issued = try ca.issueClientCertificate(commonName: "jane", organizations: ["system:masters", "dev"])
        let cert = try Certificate(pemEncoded: issued.certificatePEM)
        XCTAssertEqual(cert.subject.description, "CN=jane,O=dev,O=system:masters", "RFC 4514 order")
        XCTAssertEqual(try cert.extensions.extendedKeyUsage, try ExtendedKeyUsage([.clientAuth]))
        var verifier = Verifier(rootCertificates: CertificateStore([try Certificate(pemEncoded: ca.caPEM)])) {
            RFC5280Policy()
        }
        let result = await verifier.validate(leaf: cert, intermediates: CertificateStore())
        guard case .validCertificate = result else { return XCTFail("client certificate does not chain: \(result)") }
        XCTAssertNoThrow(try P256.Signing.PrivateKey(pemRepresentation: issued.keyPEM))
    }

    /// curl, trusting only the CA file, completes the handshake with a server using
    /// `serverTLSConfiguration()`; without the CA it refuses the certificate. A client
    /// certificate from `issueClientCertificate` authenticates as its CN/O; one from another CA
    /// fails the handshake.
    func testCurlTrustsServerWithOnlyTheCAFile() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/curl") else {
            throw XCTSkip("curl is not installed")
        }
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let ca = try ClusterCertificateAuthority.loadOrCreate(in: dir)
        let sslContext = try NIOSSLContext(configuration: ca.serverTLSConfiguration())
        let authenticator = Authenticator(adminToken: "unused", tokenIssuer: try .loadOrCreate(in: nil),
                                          serviceAccountUID: { _, _ in nil })

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
                    try channel.pipeline.syncOperations.addHandler(OneShotHTTPResponder(authenticator: authenticator))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? channel.close().wait() }
        let port = try XCTUnwrap(channel.localAddress?.port)
        let caFile = dir.appendingPathComponent("ca.crt").path

        let trusted = try runCurl(["--cacert", caFile, "--resolve", "localhost:\(port):127.0.0.1",
                                   "https://localhost:\(port)/version"])
        XCTAssertEqual(trusted.status, 0, trusted.output)
        XCTAssertEqual(trusted.output, "anonymous")
        let byIP = try runCurl(["--cacert", caFile, "https://127.0.0.1:\(port)/version"])
        XCTAssertEqual(byIP.status, 0, byIP.output)
        let untrusted = try runCurl(["--resolve", "localhost:\(port):127.0.0.1", "https://localhost:\(port)/version"])
        XCTAssertEqual(untrusted.status, 60, "curl exit 60: peer certificate cannot be authenticated")

        let client = try ca.issueClientCertificate(commonName: "jane", organizations: ["devs"])
        try Data(client.certificatePEM.utf8).write(to: dir.appendingPathComponent("jane.crt"))
        try Data(client.keyPEM.utf8).write(to: dir.appendingPathComponent("jane.key"))
        let withCert = try runCurl(["--cacert", caFile, "--cert", dir.appendingPathComponent("jane.crt").path,
                                    "--key", dir.appendingPathComponent("jane.key").path,
                                    "https://127.0.0.1:\(port)/version"])
        XCTAssertEqual(withCert.output, "jane devs,system:authenticated")

        let stranger = try ClusterCertificateAuthority.loadOrCreate(in: nil)
            .issueClientCertificate(commonName: "mallory", organizations: ["system:masters"])
        try Data(stranger.certificatePEM.utf8).write(to: dir.appendingPathComponent("mallory.crt"))
        try Data(stranger.keyPEM.utf8).write(to: dir.appendingPathComponent("mallory.key"))
        let foreign = try runCurl(["--cacert", caFile, "--cert", dir.appendingPathComponent("mallory.crt").path,
                                   "--key", dir.appendingPathComponent("mallory.key").path,
                                   "https://127.0.0.1:\(port)/version"])
        XCTAssertNotEqual(foreign.status, 0, "a client certificate from another CA fails the handshake")
        XCTAssertFalse(foreign.output.contains("mallory"))
    }

    private func runCurl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["--silent", "--max-time", "10", "--noproxy", "*"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// Answers the first bytes of a request with the user its client certificate authenticates
/// (`<name> <groups>`, or `anonymous`) and closes.
private final class OneShotHTTPResponder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var answered = false
    private let authenticator: Authenticator

    init(authenticator: Authenticator) {
        self.authenticator = authenticator
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        answered = true
        var body = "anonymous"
        if let peer = try? context.pipeline.syncOperations.nioSSL_peerCertificate(),
           let der = try? peer.toDERBytes(),
           let user = authenticator.authenticate(verifiedClientCertificateDER: der) {
            body = "\(user.username) \(user.groups.joined(separator: ","))"
        }
        let response = "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: response)), promise: nil)
        context.close(promise: nil)
    }
}
