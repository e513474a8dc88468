import Foundation
import HTTPServing
import KubeCore
import NIOSSL
import SPDY
import TestSupport
import XCTest
@testable import LocalCluster

/// ``HTTPServer``'s ``ConnectionLimits`` on real sockets on 127.0.0.1: clients that hold a
/// connection without finishing a request are cut off after the configured time, while
/// requests being answered (a watch, a held decision) and upgraded streams are never timed;
/// connections over the cap are closed on accept and counted.
final class HTTPServerConnectionLimitsTests: XCTestCase {
    static let short = ConnectionLimits(tlsHandshakeTimeout: .milliseconds(500), requestHeadTimeout: .milliseconds(500),
                                        idleTimeout: .milliseconds(500))
    var servers: [HTTPServer] = []
    var clusters: [TestCluster] = []

    override func tearDown() async throws {
        for server in servers { await server.shutdown() }
        for cluster in clusters { await cluster.stop() }
    }

    func serve(_ limits: ConnectionLimits, tls: NIOSSLContext? = nil, webSocket: WebSocketService? = nil,
               byteStreams: [ByteStreamUpgradeService] = [],
               handler: @escaping HTTPServer.Handler = { _ in .json(200, Array("{}".utf8)) }) async throws -> (HTTPServer, Int) {
        let server = HTTPServer(limits: limits)
        servers.append(server)
        let port = try await server.start(host: "127.0.0.1", port: 0, tls: tls, webSocket: webSocket, byteStreams: byteStreams,
                                          handler: handler)
        return (server, port)
    }

    /// A local cluster's API served by a server with `limits`.
    func cluster(_ limits: ConnectionLimits) async throws -> (TestCluster, Int) {
        let tc = try await TestCluster()
        clusters.append(tc)
        let api = tc.cluster.apiServer
        let (_, port) = try await serve(limits, webSocket: api.webSocketService, byteStreams: api.byteStreamServices) { request in
            await api.handle(request)
        }
        return (tc, port)
    }

    /// Seconds until the server closes `client` (reading and discarding what it sends before).
    func secondsUntilClosed(_ client: LoopbackTCP, since start: Date) throws -> Double {
        _ = try client.readToEnd()
        return Date().timeIntervalSince(start)
    }

    static func get(_ path: String, token: String? = nil) -> String {
        "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n" + (token.map { "Authorization: Bearer \($0)\r\n" } ?? "") + "\r\n"
    }

    /// Reads one response with a Content-Length body; returns its head.
    func readResponse(_ client: LoopbackTCP) throws -> String {
        let head = try client.readHead()
        let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        _ = try client.read(count: length)
        return head
    }

    func testIdleTCPConnectionIsClosedAfterTheRequestHeadTimeout() async throws {
        let (server, port) = try await serve(Self.short)
        let start = Date()
        let client = try LoopbackTCP(port: port, timeout: 5)
        let seconds = try secondsUntilClosed(client, since: start)
        XCTAssertGreaterThan(seconds, 0.4)
        XCTAssertLessThan(seconds, 3, "a connection that sends nothing is closed after requestHeadTimeout")
        XCTAssertEqual(server.timedOutConnections, 1)
    }

    func testConnectionTricklingAHalfRequestHeadIsClosedAfterTheRequestHeadTimeout() async throws {
        let (_, port) = try await serve(Self.short)
        let start = Date()
        let client = try LoopbackTCP(port: port, timeout: 5)
        try client.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        // More header bytes before the deadline do not extend it.
        for _ in 0..<2 {
            try await Task.sleep(for: .milliseconds(150))
            try client.write("X-Slow: a\r\n")
        }
        let seconds = try secondsUntilClosed(client, since: start)
        XCTAssertLessThan(seconds, 3, "half a request head is not waited for beyond requestHeadTimeout")
    }

    func testKeptAliveConnectionServesRequestsThenIsClosedAfterTheIdleTimeout() async throws {
        let (_, port) = try await serve(Self.short)
        let client = try LoopbackTCP(port: port, timeout: 5)
        for _ in 0..<3 {
            try client.write(Self.get("/"))
            XCTAssertTrue(try readResponse(client).hasPrefix("HTTP/1.1 200"))
            try await Task.sleep(for: .milliseconds(300))
        }
        let seconds = try secondsUntilClosed(client, since: Date())
        XCTAssertLessThan(seconds, 3, "an idle kept-alive connection is closed after idleTimeout")
    }

    func testTLSConnectionThatNeverFinishesTheHandshakeIsClosed() async throws {
        let ca = try ClusterCertificateAuthority.loadOrCreate(in: nil)
        let tls = try NIOSSLContext(configuration: ca.serverTLSConfiguration())
        let (server, port) = try await serve(Self.short, tls: tls)
        let start = Date()
        let client = try LoopbackTCP(port: port, timeout: 5)
        // A TLS record header announcing a 200-byte ClientHello, and one byte of it.
        try client.write([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01])
        let seconds = try secondsUntilClosed(client, since: start)
        XCTAssertLessThan(seconds, 3, "a stalled TLS handshake is closed after tlsHandshakeTimeout")
        XCTAssertEqual(server.timedOutConnections, 1)
    }

    func testWatchStaysOpenPastTheTimeoutsAndStillDeliversEvents() async throws {
        let (tc, port) = try await cluster(Self.short)
        let client = try LoopbackTCP(port: port, timeout: 5)
        try client.write(Self.get("/api/v1/namespaces/default/configmaps?watch=true&labelSelector=probe%3Dlate", token: tc.cluster.adminToken))
        XCTAssertTrue(try client.readHead().hasPrefix("HTTP/1.1 200"))
        try await Task.sleep(for: .milliseconds(1500))
        let created = await tc.send("POST", "/api/v1/namespaces/default/configmaps", json: [
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "late", "labels": ["probe": "late"]],
        ])
        XCTAssertEqual(created.status, 201, created.message)
        var received = ""
        while !received.contains("\"ADDED\"") {
            let chunk = try client.readSome()
            XCTAssertFalse(chunk.isEmpty, "the watch was closed: \(received)")
            if chunk.isEmpty { break }
            received += String(decoding: chunk, as: UTF8.self)
        }
        XCTAssertTrue(received.contains("\"late\""), received)
    }

    func testHandlerSlowerThanTheTimeoutsIsAnswered() async throws {
        let (_, port) = try await serve(Self.short) { _ in
            try? await Task.sleep(for: .milliseconds(1500))
            return .json(200, Array("{}".utf8))
        }
        let client = try LoopbackTCP(port: port, timeout: 5)
        try client.write(Self.get("/held"))
        XCTAssertTrue(try readResponse(client).hasPrefix("HTTP/1.1 200"), "a request being answered (held for approval) is not timed")
    }

    func testWebSocketExecStaysOpenPastTheTimeouts() async throws {
        let (tc, port) = try await cluster(Self.short)
        await tc.createPod(["apiVersion": "v1", "kind": "Pod", "metadata": ["name": "shell", "namespace": "default"],
                            "spec": ["containers": [["name": "main", "image": "busybox"]]]])
        let client = try LoopbackTCP(port: port, timeout: 5)
        try client.write("GET /api/v1/namespaces/default/pods/shell/exec?command=cat&stdin=true&stdout=true HTTP/1.1\r\n"
            + "Host: 127.0.0.1\r\nAuthorization: Bearer \(tc.cluster.adminToken)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n")
        XCTAssertTrue(try client.readHead().hasPrefix("HTTP/1.1 101"))
        try await Task.sleep(for: .milliseconds(1500))
        // One masked binary frame: channel 0 (stdin), "hi\n".
        let payload: [UInt8] = [0] + Array("hi\n".utf8)
        let mask: [UInt8] = [1, 2, 3, 4]
        try client.write([0x82, 0x80 | UInt8(payload.count)] + mask + payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
        var received: [UInt8] = []
        while !String(decoding: received, as: UTF8.self).contains("hi") {
            let chunk = try client.readSome()
            XCTAssertFalse(chunk.isEmpty, "the exec stream was closed")
            if chunk.isEmpty { break }
            received += chunk
        }
    }

    func testUpgradeDecisionSlowerThanTheTimeoutsAndTheUpgradedStreamAreNotTimed() async throws {
        let (_, port) = try await serve(Self.short, byteStreams: [SlowEchoUpgrade()])
        let client = try LoopbackTCP(port: port, timeout: 5)
        try client.write("GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        XCTAssertTrue(try client.readHead().hasPrefix("HTTP/1.1 101"), "a decision held past the timeouts still upgrades")
        try await Task.sleep(for: .milliseconds(1500))
        try client.write("ping")
        XCTAssertEqual(String(decoding: try client.read(count: 4), as: UTF8.self), "ping", "an upgraded stream is not timed")
    }

    func testConnectionsOverTheCapAreClosedOnAcceptAndCounted() async throws {
        let (server, port) = try await serve(ConnectionLimits(maxConnections: 2))
        let first = try LoopbackTCP(port: port, timeout: 5)
        let second = try LoopbackTCP(port: port, timeout: 5)
        for client in [first, second] {
            try client.write(Self.get("/"))
            XCTAssertTrue(try readResponse(client).hasPrefix("HTTP/1.1 200"))
        }
        let third = try LoopbackTCP(port: port, timeout: 5)
        XCTAssertEqual(try third.readToEnd(), [], "the connection over the cap is closed at once")
        XCTAssertEqual(server.refusedConnections, 1)

        first.finishWriting()
        XCTAssertEqual(try first.readToEnd(), [])
        try await Task.sleep(for: .milliseconds(200))
        let fourth = try LoopbackTCP(port: port, timeout: 5)
        try fourth.write(Self.get("/"))
        XCTAssertTrue(try readResponse(fourth).hasPrefix("HTTP/1.1 200"), "a closed connection frees its place")
    }
}

/// Upgrades `Upgrade: echo` after a decision that takes 1 s, then echoes bytes.
private struct SlowEchoUpgrade: ByteStreamUpgradeService {
    var upgradeProtocol: String { "echo" }
    func decide(_ request: HTTPRequest) async -> UpgradeDecision<any ByteStreamSession> {
        try? await Task.sleep(for: .seconds(1))
        return .accept(headers: [], session: EchoSession())
    }
}

private final class EchoSession: ByteStreamSession, @unchecked Sendable {
    private var connection: ByteStreamConnection?
    func start(_ connection: ByteStreamConnection) { self.connection = connection }
    func receive(_ bytes: [UInt8]) { connection?.send(bytes) }
    func closed() {}
}
