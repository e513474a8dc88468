import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A request as the API handlers see it: fully read (bodies are capped), headers case-insensitive.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The raw request target: path and query, still percent-encoded.
    public var uri: String
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// The body exceeded the server's limit and was dropped.
    public var bodyTooLarge: Bool
    public var remoteAddress: String?

    public init(method: String, uri: String, headers: HTTPHeaders, body: [UInt8], bodyTooLarge: Bool = false,
                remoteAddress: String? = nil) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
        self.bodyTooLarge = bodyTooLarge
        self.remoteAddress = remoteAddress
    }

    public func header(_ name: String) -> String? { headers.first(name: name) }
}

/// A response: a complete body, or a stream written (and flushed) chunk by chunk.
public struct HTTPResponse: Sendable {
    public enum Body: Sendable {
        case bytes([UInt8])
        case stream(AsyncStream<[UInt8]>)
    }
    public var status: Int
    public var headers: [(String, String)]
    public var body: Body

    public init(status: Int, headers: [(String, String)] = [], body: Body = .bytes([])) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func json(_ status: Int, _ bytes: [UInt8]) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: .bytes(bytes))
    }
}

/// A small HTTP/1.1 server on SwiftNIO (optionally TLS) that hands each request to an async
/// handler and streams its response, flushing every chunk. Requests on one connection are
/// answered in order (pipelining assistance); a closed connection cancels its handler task,
/// which ends any stream it was writing. Clients that hold connections without sending
/// requests are cut off by ``ConnectionLimits``.
public final class HTTPServer: @unchecked Sendable {
    public typealias Handler = @Sendable (HTTPRequest) async -> HTTPResponse

    private let group: EventLoopGroup
    private var channel: Channel?
    private let maxBodyBytes: Int
    private let limits: ConnectionLimits
    private let connections = ConnectionSet()

    /// Serves on `group`, by default NIO's shared singleton group (nothing to shut down).
    /// `limits`: the TLS handshake, request head and keep-alive idle timeouts and the cap on
    /// open connections (see ``ConnectionLimits`` for the defaults).
    public init(group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, maxBodyBytes: Int = 3 * 1024 * 1024,
                limits: ConnectionLimits = .default) {
        self.group = group
        self.maxBodyBytes = maxBodyBytes
        self.limits = limits
    }

    /// Connections closed on accept because ``ConnectionLimits/maxConnections`` were open.
    public var refusedConnections: Int { connections.counts.refused }
    /// Connections closed because a TLS handshake, a request head or the next request took too long.
    public var timedOutConnections: Int { connections.counts.timedOut }

    /// Binds and starts serving. Returns the bound port (useful with port 0). `webSocket`
    /// and `byteStreams` decide `Upgrade` requests; what they decline reaches `handler`.
    public func start(host: String, port: Int, tls: NIOSSLContext?, webSocket: WebSocketService? = nil,
                      byteStreams: [ByteStreamUpgradeService] = [],
                      handler: @escaping Handler) async throws -> Int {
        let maxBody = maxBodyBytes
        let limits = self.limits
        let connections = self.connections
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                guard connections.insert(channel, limit: limits.maxConnections) else {
                    return channel.close()
                }
                do {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        ConnectionTimeoutHandler(limits: limits, usesTLS: tls != nil, timedOut: { connections.countTimeout() }))
                    let refusal = PendingRefusal()
                    let requestHandler = RequestHandler(handler: handler, maxBodyBytes: maxBody, refusal: refusal)
                    var upgraders: [HTTPServerProtocolUpgrader] = byteStreams.map {
                        ByteStreamUpgrader(service: $0, pending: PendingByteStreamSession(), refusal: refusal)
                    }
                    if let webSocket {
                        upgraders.append(HTTPServer.webSocketUpgrader(webSocket, pending: PendingSession(), refusal: refusal))
                    }
                    var upgrade: NIOHTTPServerUpgradeConfiguration?
                    if !upgraders.isEmpty {
                        upgrade = (upgraders: upgraders, completionHandler: { context in
                            context.pipeline.removeHandler(requestHandler, promise: nil)
                            context.channel.triggerUserOutboundEvent(ConnectionCycleEvent.upgraded, promise: nil)
                        })
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withPipeliningAssistance: true, withServerUpgrade: upgrade, withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(requestHandler)
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        self.channel = channel
        return channel.localAddress?.port ?? port
    }

    /// Stops listening; open connections stay and are served (a graceful drain's first step,
    /// before ``shutdown()``). Idempotent.
    public func stopAccepting() async {
        let listener = channel
        channel = nil
        try? await listener?.close()
    }

    /// Stops listening and closes open connections (ending their streams). Idempotent.
    public func shutdown() async {
        let listener = channel
        channel = nil
        try? await listener?.close()
        // Concurrently: a TLS close waits (up to the context's shutdownTimeout) for the peer's
        // close_notify, which clients that are themselves shutting down never send.
        await withTaskGroup(of: Void.self) { group in
            for connection in connections.removeAll() {
                group.addTask { try? await connection.close() }
            }
        }
    }
}

/// Open connections, so shutdown can close them and the cap can count them; and how many
/// were refused or timed out.
final class ConnectionSet: @unchecked Sendable {
    private let lock = NSLock()
    private var channels: [ObjectIdentifier: Channel] = [:]
    private var refused = 0
    private var timedOut = 0

    /// Adds `channel` unless `limit` connections are open (then counts a refusal).
    func insert(_ channel: Channel, limit: Int) -> Bool {
        let id = ObjectIdentifier(channel)
        lock.lock()
        guard channels.count < limit else {
            refused += 1
            lock.unlock()
            return false
        }
        channels[id] = channel
        lock.unlock()
        channel.closeFuture.whenComplete { [weak self] _ in
            guard let self else { return }
            self.lock.lock()
            self.channels[id] = nil
            self.lock.unlock()
        }
        return true
    }

    func countTimeout() {
        lock.lock()
        timedOut += 1
        lock.unlock()
    }

    var counts: (refused: Int, timedOut: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (refused, timedOut)
    }

    func removeAll() -> [Channel] {
        lock.lock()
        defer { lock.unlock() }
        let all = Array(channels.values)
        channels.removeAll()
        return all
    }
}

/// Collects one request, runs the handler in a task, writes the response.
final class RequestHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let handler: HTTPServer.Handler
    private let maxBodyBytes: Int
    /// Set by an upgrader that answered the request itself (``UpgradeDecision/refuse(_:)``).
    private let refusal: PendingRefusal
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false
    private var task: Task<Void, Never>?
    /// The connection's event loop as a task executor, made on the first request.
    private var executor: EventLoopTaskExecutor?
    private var remoteAddress: String?

    init(handler: @escaping HTTPServer.Handler, maxBodyBytes: Int, refusal: PendingRefusal = PendingRefusal()) {
        self.handler = handler
        self.maxBodyBytes = maxBodyBytes
        self.refusal = refusal
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
            tooLarge = false
            context.triggerUserOutboundEvent(ConnectionCycleEvent.requestHeadReceived, promise: nil)
        case .body(var buffer):
            if tooLarge { return }
            if body.count + buffer.readableBytes > maxBodyBytes {
                tooLarge = true
                body = []
            } else if let bytes = buffer.readBytes(length: buffer.readableBytes) {
                body.append(contentsOf: bytes)
            }
        case .end:
            guard let head else { return }
            // Formatted once per connection: it is the same for every request on it.
            let peer = remoteAddress ?? context.remoteAddress?.description
            remoteAddress = peer
            let request = HTTPRequest(method: head.method.rawValue, uri: head.uri, headers: head.headers, body: body,
                                      bodyTooLarge: tooLarge, remoteAddress: peer)
            let keepAlive = head.isKeepAlive
            let version = head.version
            self.head = nil
            body = []
            let channel = context.channel
            let handler = self.handler
            let refused = refusal.take()
            let executor = self.executor ?? EventLoopTaskExecutor(context.eventLoop)
            self.executor = executor
            // The handler runs on this connection's event loop: the request was read here, the
            // answer is written here, and the upstream client prefers the loop it is called
            // from, so a request crosses no thread unless its handler hands work elsewhere.
            task = Task(executorPreference: executor) {
                let response: HTTPResponse
                if let refused { response = refused } else { response = await handler(request) }
                await Self.write(response, to: channel, version: version, keepAlive: keepAlive)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        task?.cancel()
        context.fireChannelInactive()
    }

    static func write(_ response: HTTPResponse, to channel: Channel, version: HTTPVersion, keepAlive: Bool) async {
        var headers = HTTPHeaders(response.headers)
        let status = HTTPResponseStatus(statusCode: response.status)
        switch response.body {
        case .bytes(let bytes):
            headers.replaceOrAdd(name: "Content-Length", value: String(bytes.count))
            if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
            let head = HTTPResponseHead(version: version, status: status, headers: headers)
            // The whole answer in one go on the event loop (each write from outside it is a hop of its own).
            let writeAll: @Sendable () -> Void = {
                channel.write(HTTPServerResponsePart.head(head), promise: nil)
                if !bytes.isEmpty {
                    channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: bytes))), promise: nil)
                }
                let done = channel.eventLoop.makePromise(of: Void.self)
                // Before the end: writing it lets a pipelined next request in, whose head must find the cycle finished.
                channel.triggerUserOutboundEvent(ConnectionCycleEvent.responseFinished, promise: nil)
                channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: done)
                if !keepAlive { done.futureResult.whenComplete { _ in channel.close(promise: nil) } }
            }
            if channel.eventLoop.inEventLoop { writeAll() } else { channel.eventLoop.execute(writeAll) }
        case .stream(let chunks):
            headers.remove(name: "Content-Length")
            headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked")
            do {
                try await channel.writeAndFlush(HTTPServerResponsePart.head(
                    HTTPResponseHead(version: version, status: status, headers: headers))).get()
                for await chunk in chunks {
                    try await channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: chunk)))).get()
                }
                channel.triggerUserOutboundEvent(ConnectionCycleEvent.responseFinished, promise: nil)
                try await channel.writeAndFlush(HTTPServerResponsePart.end(nil)).get()
                if !keepAlive { try await channel.close() }
            } catch {
                try? await channel.close()
            }
        }
    }
}

/// A task executor running jobs on a NIO event loop, in the order they are enqueued.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: EventLoop

    public init(_ eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
