import Foundation
@testable import Gateway
import HTTPServing
import LocalCluster
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TestSupport
import XCTest

/// An API server stand-in whose every connection and request is counted, and whose answers
/// are scripted by path:
/// - `/small`: a short JSON answer with a length, kept alive;
/// - `/gzip`: a gzip-encoded JSON answer;
/// - `/close`: an answer with `Connection: close`, then the connection closed;
/// - `/drop`: on a connection's second or later request, the connection closed unanswered (an
///   API server closing an idle connection as the request arrives); answered otherwise;
/// - `/silent`: never answered;
/// - `/continue`: `100 Continue`, then the answer;
/// - `/flood`: chunks of 64 KiB for as long as the connection takes them;
/// - `/later`: the head and `first,` at once, `second` and the end once the test calls
///   `releaseLater()`;
/// - `/cut`: a head promising 100 bytes, 10 of them, then the connection closed.
final class ScriptedUpstream: @unchecked Sendable {
    struct Counts {
        var connections = 0
        var closedConnections = 0
        var requests: [String] = []
        var floodBytesWritten = 0
    }

    let counts = NIOLockedValueBox(Counts())
    /// Finishes the `/later` answers waiting (and any asked for afterwards, at once).
    private let later = NIOLockedValueBox<(released: Bool, waiting: [@Sendable () -> Void])>((false, []))

    func releaseLater() {
        let waiting = later.withLockedValue { state in
            state.released = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for finish in waiting { finish() }
    }
    static let gzipPlain = #"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"zipped"},"data":{"k":"compressed value"}}"#
    let gzipBody: [UInt8]
    private var channel: Channel?

    init() throws {
        gzipBody = try Self.gzip(Array(Self.gzipPlain.utf8))
    }

    func start() throws -> Int {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(upstream: self))
                }
            }
        let channel = try bootstrap.bind(host: "127.0.0.1", port: 0).wait()
        self.channel = channel
        return channel.localAddress!.port!
    }

    func stop() {
        try? channel?.close().wait()
    }

    static func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-c"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(bytes))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Array(data)
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let upstream: ScriptedUpstream
        var requestsOnConnection = 0
        var path = ""
        var method = HTTPMethod.GET

        init(upstream: ScriptedUpstream) { self.upstream = upstream }

        func channelActive(context: ChannelHandlerContext) {
            upstream.counts.withLockedValue { $0.connections += 1 }
            context.fireChannelActive()
        }

        func channelInactive(context: ChannelHandlerContext) {
            upstream.counts.withLockedValue { $0.closedConnections += 1 }
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                requestsOnConnection += 1
                path = head.uri
                method = head.method
                upstream.counts.withLockedValue { $0.requests.append("\(head.method.rawValue) \(head.uri)") }
            case .body: break
            case .end: answer(context)
            }
        }

        private func answer(_ context: ChannelHandlerContext) {
            if method == .HEAD {
                // The length of the answer a GET would get, and no body.
                let headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", "4096")])
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                return
            }
            switch path {
            case "/gzip":
                respond(context, body: upstream.gzipBody, extra: [("Content-Encoding", "gzip")])
            case "/close":
                respond(context, body: Array(#"{"kind":"Status"}"#.utf8), extra: [("Connection", "close")], close: true)
            case "/drop" where requestsOnConnection > 1:
                context.close(promise: nil)
            case "/silent":
                break
            case "/continue":
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
                respond(context, body: Array(#"{"kind":"Status","code":201}"#.utf8), extra: [])
            case "/later":
                var headers = HTTPHeaders([("Content-Type", "text/plain")])
                headers.add(name: "Transfer-Encoding", value: "chunked")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "first,")))), promise: nil)
                let loop = context.eventLoop
                let bound = NIOLoopBound((context, self), eventLoop: loop)
                let finish: @Sendable () -> Void = {
                    loop.execute {
                        let (context, handler) = bound.value
                        context.write(handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "second")))), promise: nil)
                        context.writeAndFlush(handler.wrapOutboundOut(.end(nil)), promise: nil)
                    }
                }
                let now = upstream.later.withLockedValue { state in
                    if !state.released { state.waiting.append(finish) }
                    return state.released
                }
                if now { finish() }
            case "/cut":
                let headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", "100")])
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "0123456789"))))).whenComplete { _ in
                    context.close(promise: nil)
                }
            case "/flood":
                var headers = HTTPHeaders([("Content-Type", "text/plain")])
                headers.add(name: "Transfer-Encoding", value: "chunked")
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                flood(context)
            default:
                respond(context, body: Array(#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"small"}}"#.utf8), extra: [])
            }
        }

        /// Writes another 64 KiB whenever the last one was taken by the socket.
        private func flood(_ context: ChannelHandlerContext) {
            let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(chunk)))).whenSuccess {
                self.upstream.counts.withLockedValue { $0.floodBytesWritten += chunk.readableBytes }
                guard context.channel.isActive else { return }
                self.flood(context)
            }
        }

        private func respond(_ context: ChannelHandlerContext, body: [UInt8], extra: [(String, String)], close: Bool = false) {
            var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", "\(body.count)")])
            for (name, value) in extra { headers.add(name: name, value: value) }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if close { context.close(promise: nil) }
            }
        }
    }
}

final class UpstreamClientTests: XCTestCase {
    var upstream: ScriptedUpstream!
    var client: UpstreamClient!
    /// Requests run on one event loop, as a gateway request does (on its agent connection's loop).
    let loop = MultiThreadedEventLoopGroup.singleton.next()

    override func setUp() async throws {
        upstream = try ScriptedUpstream()
        let port = try upstream.start()
        client = UpstreamClient(upstream: try UpstreamConnector(server: "http://127.0.0.1:\(port)",
                                                                 tls: .makeClientConfiguration()))
    }

    override func tearDown() async throws {
        client?.shutdown()
        upstream?.stop()
    }

    private func onLoop<T: Sendable>(_ body: @Sendable () async throws -> T) async rethrows -> T {
        try await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) { try await body() }
    }

    private func get(_ path: String, method: HTTPMethod = .GET, timeout: TimeAmount = .seconds(10)) async throws -> (Int, String) {
        let client = self.client!
        return try await onLoop {
            let response = try await client.execute(method: method, target: path, headers: ["Accept-Encoding": "gzip"], body: [],
                                                    timeout: timeout)
            let body = try await response.body.collect(upTo: 1 << 20)
            return (Int(response.status.code), String(decoding: body, as: UTF8.self))
        }
    }

    func testSequentialRequestsShareOneKeptAliveConnection() async throws {
        for _ in 0..<20 {
            let (code, body) = try await get("/small")
            XCTAssertEqual(code, 200)
            XCTAssertTrue(body.contains(#""name":"small""#), body)
        }
        XCTAssertEqual(upstream.counts.withLockedValue { $0.connections }, 1)
        XCTAssertEqual(upstream.counts.withLockedValue { $0.requests.count }, 20)
        XCTAssertEqual(client.idleCount, 1)
    }

    func testShutdownClosesIdleConnectionsAndKeepsNoneAfterwards() async throws {
        _ = try await get("/small")
        client.shutdown()
        try await eventually(10, "the idle connection is closed at shutdown") { upstream.counts.withLockedValue { $0.closedConnections } == 1 }
        // A request still finishing after shutdown does not leave its connection open.
        let (code, _) = try await get("/small")
        XCTAssertEqual(code, 200)
        try await eventually(10, "the connection used after shutdown is closed") { upstream.counts.withLockedValue { $0.closedConnections } == 2 }
        XCTAssertEqual(client.idleCount, 0)
    }

    func testGzipAnswerIsDecodedBeforeTheGatewaySeesIt() async throws {
        let (code, body) = try await get("/gzip")
        XCTAssertEqual(code, 200)
        XCTAssertEqual(body, ScriptedUpstream.gzipPlain)
        // Decoding did not cost the connection.
        _ = try await get("/small")
        XCTAssertEqual(upstream.counts.withLockedValue { $0.connections }, 1)
    }

    func testInformationalHeadIsSkippedForTheFinalAnswer() async throws {
        let (code, body) = try await get("/continue")
        XCTAssertEqual(code, 200)
        XCTAssertEqual(body, #"{"kind":"Status","code":201}"#)
        let (next, _) = try await get("/small")
        XCTAssertEqual(next, 200)
        XCTAssertEqual(upstream.counts.withLockedValue { $0.connections }, 1)
    }

    func testHeadAnswerEndsAtItsHeadersDespiteItsLength() async throws {
        let (code, body) = try await get("/small", method: .HEAD)
        XCTAssertEqual(code, 200)
        XCTAssertEqual(body, "")
        let (next, nextBody) = try await get("/small")
        XCTAssertEqual(next, 200)
        XCTAssertTrue(nextBody.contains(#""name":"small""#), nextBody)
        XCTAssertEqual(upstream.counts.withLockedValue { $0.connections }, 1)
    }

    func testConnectionCloseAnswerIsNotReused() async throws {
        let (code, _) = try await get("/close")
        XCTAssertEqual(code, 200)
        let (again, _) = try await get("/small")
        XCTAssertEqual(again, 200)
        XCTAssertEqual(upstream.counts.withLockedValue { $0.connections }, 2)
    }

    func testSafeRequestOnAConnectionClosedWhileIdleIsRetriedOnANewOne() async throws {
        _ = try await get("/small")
        let (code, body) = try await get("/drop")
        XCTAssertEqual(code, 200, body)
        XCTAssertEqual(upstream.counts.withLockedValue { $0.connections }, 2)
        XCTAssertEqual(upstream.counts.withLockedValue { $0.requests }, ["GET /small", "GET /drop", "GET /drop"])
    }

    func testUnsafeRequestOnAConnectionClosedWhileIdleIsNotRepeated() async throws {
        _ = try await get("/small")
        do {
            _ = try await get("/drop", method: .POST)
            XCTFail("a POST the server may have acted on must not be sent twice")
        } catch let error as UpstreamClientError {
            XCTAssertTrue(error.beforeAnswer, "\(error)")
        }
        XCTAssertEqual(upstream.counts.withLockedValue { $0.requests }, ["GET /small", "POST /drop"])
    }

    func testSilentUpstreamFailsAtTheTimeoutAndLosesTheConnection() async throws {
        let started = Date()
        do {
            _ = try await get("/silent", timeout: .milliseconds(300))
            XCTFail("a silent upstream must time out")
        } catch let error as UpstreamClientError {
            XCTAssertTrue(error.message.contains("did not answer within 300 ms"), error.message)
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        try await eventually(10, "the timed-out connection is closed") { upstream.counts.withLockedValue { $0.closedConnections } == 1 }
        XCTAssertEqual(client.idleCount, 0)
    }

    func testCancelledRequestClosesItsUpstreamConnection() async throws {
        let client = self.client!
        let loop = self.loop
        let task = Task {
            try await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) {
                _ = try await client.execute(method: .GET, target: "/silent", headers: [:], body: [], timeout: .seconds(60))
            }
        }
        try await eventually(10, "the request reached upstream") { upstream.counts.withLockedValue { $0.requests.count } == 1 }
        task.cancel()
        _ = await task.result
        try await eventually(10, "the cancelled request's connection is closed") { upstream.counts.withLockedValue { $0.closedConnections } == 1 }
    }

    /// Most small answers arrive whole in one read: they return complete, with no stream set
    /// up for their body, and their connection is free for the next request.
    func testAnAnswerThatArrivesWholeReturnsCompleteWithItsConnectionFree() async throws {
        let client = self.client!
        let (whole, idleAtReturn, body) = try await onLoop { () -> (Bool, Int, String) in
            let response = try await client.execute(method: .GET, target: "/small", headers: [:], body: [], timeout: .seconds(10))
            let idle = client.idleCount
            return (response.body.arrivedWhole, idle, String(decoding: try await response.body.collect(upTo: 1 << 20), as: UTF8.self))
        }
        XCTAssertTrue(whole)
        XCTAssertEqual(idleAtReturn, 1)
        XCTAssertTrue(body.contains(#""name":"small""#), body)
    }

    /// An answer whose body goes on past the read that brought its head returns at its head
    /// and streams the rest (it would hang here otherwise: the rest comes only when asked).
    func testAnAnswerWhoseBodyComesLaterReturnsAtItsHeadAndStreamsTheRest() async throws {
        let client = self.client!
        let upstream = self.upstream!
        let (code, parts, idleBeforeEnd) = try await onLoop { () -> (UInt, [String], Int) in
            let response = try await client.execute(method: .GET, target: "/later", headers: [:], body: [], timeout: .seconds(10))
            XCTAssertFalse(response.body.arrivedWhole)
            let idle = client.idleCount
            upstream.releaseLater()
            var parts: [String] = []
            for try await buffer in response.body { parts.append(String(buffer: buffer)) }
            return (response.status.code, parts, idle)
        }
        XCTAssertEqual(code, 200)
        XCTAssertEqual(parts.joined(), "first,second")
        XCTAssertEqual(idleBeforeEnd, 0, "a connection still answering is not free")
        try await eventually(10, "the connection is free once the answer ended") { client.idleCount == 1 }
    }

    /// A connection closed part-way through a body fails the request: a truncated answer is
    /// never handed on as a whole one, and the connection is not reused.
    func testAnAnswerCutShortFailsInsteadOfReturningTruncated() async throws {
        do {
            let (code, body) = try await get("/cut")
            XCTFail("a cut answer was returned as \(code): \(body)")
        } catch let error as UpstreamClientError {
            XCTAssertFalse(error.beforeAnswer, "part of the answer arrived: \(error)")
        }
        XCTAssertEqual(client.idleCount, 0)
        let (code, _) = try await get("/small")
        XCTAssertEqual(code, 200)
        XCTAssertEqual(upstream.counts.withLockedValue { $0.connections }, 2)
    }

    func testSlowConsumerStopsTheConnectionReadingInsteadOfBufferingTheStream() async throws {
        let client = self.client!
        let firstChunk = try await onLoop { () -> Int in
            let response = try await client.execute(method: .GET, target: "/flood", headers: [:], body: [], timeout: .seconds(10))
            var iterator = response.body.makeAsyncIterator()
            let first = try await iterator.next()
            // The consumer stalls; upstream may write only until the window and the sockets are full.
            try await Task.sleep(for: .seconds(1))
            return first?.readableBytes ?? 0
        }
        XCTAssertGreaterThan(firstChunk, 0)
        let written = upstream.counts.withLockedValue { $0.floodBytesWritten }
        // Without backpressure the gateway reads the flood as fast as loopback goes: gigabytes a second.
        XCTAssertLessThan(written, 24 << 20, "upstream wrote \(written) bytes while the consumer read one chunk")
        // The consumer gave up mid-answer: that connection cannot serve another request.
        try await eventually(10, "the abandoned stream's connection is closed") { upstream.counts.withLockedValue { $0.closedConnections } == 1 }
        XCTAssertEqual(client.idleCount, 0)
    }
}

final class UpstreamClientTLSTests: XCTestCase {
    func testHTTPSAPIServerIsReachedWhenItsCAIsTrustedAndRefusedOtherwise() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentgate-upstream-tls-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let cluster = try await LocalCluster.start(LocalCluster.Configuration(dataDirectory: directory, port: 0, useTLS: true))
        do {
            let caPEM = try XCTUnwrap(cluster.certificateAuthority?.caPEM)
            var trusting = TLSConfiguration.makeClientConfiguration()
            trusting.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            for (tls, trusted) in [(trusting, true), (TLSConfiguration.makeClientConfiguration(), false)] {
                let client = UpstreamClient(upstream: try UpstreamConnector(server: cluster.url, tls: tls))
                defer { client.shutdown() }
                do {
                    let (code, body) = try await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) { () -> (UInt, String) in
                        let response = try await client.execute(method: .GET, target: "/version", headers: [:], body: [], timeout: .seconds(10))
                        return (response.status.code, String(decoding: try await response.body.collect(upTo: 1 << 20), as: UTF8.self))
                    }
                    XCTAssertTrue(trusted, "an API server whose certificate is not trusted answered \(code): \(body)")
                    XCTAssertEqual(code, 200, body)
                    XCTAssertTrue(body.contains("gitVersion"), body)
                } catch {
                    XCTAssertFalse(trusted, "the trusted API server was not reached: \(error)")
                }
            }
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }
}
