import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPCompression
import NIOPosix

/// The gateway's HTTP/1.1 client to the API server for forwarded (not upgraded) requests.
///
/// Why not AsyncHTTPClient: measured in `GatewayBenchmark`, a proxy relaying through
/// AsyncHTTPClient from a task costs 0.21–0.36 ms of CPU per small GET where the same relay on
/// plain NIO costs 0.08–0.12 — most of the gateway's cost short of recording. This client does
/// only what the data path needs, on the event loop the request is already on.
///
/// Contract:
/// - A request runs on the calling task's event loop (the agent connection's, under
///   `HTTPServer`'s task executor), on a kept-alive connection of that loop when one is idle,
///   else on a new one (TCP, then TLS trusting the kubeconfig's CA, 10 s to connect).
/// - The answer returns at its head; its body is an async sequence of buffers, gzip decoded,
///   read with backpressure: past a window of buffered data the connection stops reading until
///   the consumer catches up, so a fast upstream never fills the gateway's memory. An answer
///   whose head, body and end arrive in one read from the socket (most small answers) returns
///   once it ended, its body already complete: no stream is set up for it.
/// - A connection goes back to its loop's idle list once its answer ended and both sides kept
///   it alive; idle ones older than ``idleLimit`` are closed rather than reused. A consumer that
///   stops reading before the end, a cancelled task, an error or a head not received within
///   the timeout closes the connection.
/// - A reused connection that fails before any byte of the answer (the API server closed it
///   while idle) is retried once on a new connection for a safe method (GET, HEAD, OPTIONS);
///   any other method fails, since the server may have acted on it.
final class UpstreamClient: Sendable {
    struct Response: Sendable {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: UpstreamBody
    }

    /// Idle connections older than this are closed instead of reused (API servers close idle
    /// connections after a while; reusing one as it closes would cost the request).
    static let idleLimit = TimeAmount.seconds(30)
    /// Idle connections kept per event loop.
    static let idlePerLoop = 128

    /// Where the API server is and how to reach it (shared with upgrades).
    private let upstream: UpstreamConnector
    private let hostHeader: String
    /// Idle connections by event loop; nil once shut down.
    private let idle = NIOLockedValueBox<[ObjectIdentifier: [UpstreamConnection]]?>([:])

    init(upstream: UpstreamConnector) {
        self.upstream = upstream
        hostHeader = upstream.hostHeader
    }

    /// Sends one request; returns at the answer's head.
    /// - Parameter target: path and query, below the upstream server URL's path.
    func execute(method: HTTPMethod, target: String, headers: HTTPHeaders, body: [UInt8],
                 timeout: TimeAmount) async throws -> Response {
        let eventLoop = MultiThreadedEventLoopGroup.currentEventLoop ?? MultiThreadedEventLoopGroup.singleton.next()
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: upstream.pathPrefix + target, headers: headers)
        head.headers.replaceOrAdd(name: "Host", value: hostHeader)
        if !body.isEmpty || [.POST, .PUT, .PATCH].contains(method) {
            head.headers.replaceOrAdd(name: "Content-Length", value: String(body.count))
        }
        let bodyBuffer = body.isEmpty ? nil : ByteBuffer(bytes: body)
        if let reused = takeIdle(on: eventLoop) {
            do {
                return try await reused.send(head, body: bodyBuffer, timeout: timeout)
            } catch let error as UpstreamClientError where error.beforeAnswer && [.GET, .HEAD, .OPTIONS].contains(method) {
                // Closed by the server while idle: try a fresh connection.
            }
        }
        let connection = try await connect(on: eventLoop)
        return try await connection.send(head, body: bodyBuffer, timeout: timeout)
    }

    /// Closes every idle connection; connections busy now are closed when their answer ends.
    func shutdown() {
        let all = idle.withLockedValue { lists in
            defer { lists = nil }
            return lists?.values.flatMap { $0 } ?? []
        }
        for connection in all { connection.channel.close(promise: nil) }
    }

    var idleCount: Int { idle.withLockedValue { $0?.values.reduce(0) { $0 + $1.count } ?? 0 } }

    private func takeIdle(on eventLoop: EventLoop) -> UpstreamConnection? {
        let key = ObjectIdentifier(eventLoop)
        let now = NIODeadline.now()
        var expired: [UpstreamConnection] = []
        let taken: UpstreamConnection? = idle.withLockedValue { lists in
            while let candidate = lists?[key]?.popLast() {
                if candidate.channel.isActive, now - candidate.idleSince < Self.idleLimit { return candidate }
                expired.append(candidate)
            }
            return nil
        }
        for connection in expired { connection.channel.close(promise: nil) }
        return taken
    }

    /// Called by a connection whose answer ended with the connection kept alive.
    fileprivate func returnIdle(_ connection: UpstreamConnection) {
        connection.idleSince = .now()
        let key = ObjectIdentifier(connection.channel.eventLoop)
        let kept = idle.withLockedValue { lists -> Bool in
            guard lists != nil, lists![key, default: []].count < Self.idlePerLoop else { return false }
            lists![key, default: []].append(connection)
            return true
        }
        if !kept { connection.channel.close(promise: nil) }
    }

    fileprivate func forget(_ connection: UpstreamConnection) {
        let key = ObjectIdentifier(connection.channel.eventLoop)
        idle.withLockedValue { lists in lists?[key]?.removeAll { $0 === connection } }
    }

    private func connect(on eventLoop: EventLoop) async throws -> UpstreamConnection {
        let channel = try await upstream.bootstrap(on: eventLoop) { channel in
            // Informational (1xx) heads are dropped by the decoder: the answer is the final head.
            try channel.pipeline.syncOperations.addHTTPClientHandlers()
            try channel.pipeline.syncOperations.addHandler(NIOHTTPResponseDecompressor(limit: .none))
        }.connect(host: upstream.host, port: upstream.port).get()
        let connection = UpstreamConnection(channel: channel, client: self)
        try await eventLoop.submit {
            let handler = UpstreamResponseHandler(connection: connection)
            try channel.pipeline.syncOperations.addHandler(handler)
            connection.handler = handler
        }.get()
        return connection
    }
}

struct UpstreamClientError: Error, CustomStringConvertible {
    var message: String
    /// Nothing of the answer arrived (the request may be retried on a new connection when safe).
    var beforeAnswer: Bool
    var description: String { message }
}

/// One kept-alive connection to the API server. Its mutable state lives on its event loop.
final class UpstreamConnection: @unchecked Sendable {
    let channel: Channel
    /// When it went idle; read and written under the client's lock or on the event loop.
    var idleSince = NIODeadline.now()
    fileprivate weak var client: UpstreamClient?
    /// Set on the event loop once the connection is set up; used only there.
    fileprivate var handler: UpstreamResponseHandler?

    fileprivate init(channel: Channel, client: UpstreamClient) {
        self.channel = channel
        self.client = client
    }

    fileprivate func send(_ head: HTTPRequestHead, body: ByteBuffer?, timeout: TimeAmount) async throws -> UpstreamClient.Response {
        let eventLoop = channel.eventLoop
        let promise = eventLoop.makePromise(of: UpstreamClient.Response.self)
        let channel = self.channel
        let write: @Sendable () -> Void = {
            guard let handler = self.handler, channel.isActive else {
                promise.fail(UpstreamClientError(message: "the connection to the API server closed", beforeAnswer: true))
                return
            }
            handler.expect(promise, timeout: timeout)
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        }
        // Under the agent connection's task executor this is already the connection's loop.
        if eventLoop.inEventLoop { write() } else { eventLoop.execute(write) }
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    fileprivate func ended(keepAlive: Bool) {
        if keepAlive, let client {
            client.returnIdle(self)
        } else {
            channel.close(promise: nil)
        }
    }

    fileprivate func closed() {
        client?.forget(self)
    }
}

/// A forwarded answer's body: buffers as they arrive (gzip decoded), with backpressure; or,
/// for an answer that ended in the read that brought its head, its buffers at once.
struct UpstreamBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    fileprivate typealias Producer = NIOThrowingAsyncSequenceProducer<
        ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, UpstreamBodyDelegate>
    fileprivate enum Source: Sendable {
        case complete([ByteBuffer])
        case streaming(Producer)
    }
    fileprivate let source: Source

    /// Whether the whole body had arrived when the answer returned (no stream was set up).
    var arrivedWhole: Bool {
        if case .complete = source { return true }
        return false
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        fileprivate var buffers: IndexingIterator<[ByteBuffer]>?
        fileprivate var inner: Producer.AsyncIterator?
        mutating func next() async throws -> ByteBuffer? {
            if buffers != nil { return buffers!.next() }
            return try await inner?.next()
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        switch source {
        case .complete(let buffers): AsyncIterator(buffers: buffers.makeIterator())
        case .streaming(let producer): AsyncIterator(inner: producer.makeAsyncIterator())
        }
    }

    /// The whole body; throws when it passes `limit` bytes. `expected` (the answer's
    /// Content-Length, when it has one) sizes the result at once, so a large answer is copied
    /// once instead of again at every doubling of the array (an eighth of a 1 MiB LIST's CPU).
    func collect(upTo limit: Int, expected: Int? = nil) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        if case .complete(let buffers) = source, buffers.count == 1 {
            bytes.reserveCapacity(buffers[0].readableBytes)
        } else if let expected, expected > 0 {
            bytes.reserveCapacity(Swift.min(expected, limit))
        }
        for try await buffer in self {
            guard bytes.count + buffer.readableBytes <= limit else {
                throw UpstreamClientError(message: "the answer is larger than \(limit) bytes", beforeAnswer: false)
            }
            bytes.append(contentsOf: buffer.readableBytesView)
        }
        return bytes
    }
}

/// One answer in flight on a connection; touched only on its event loop.
private final class UpstreamExchange {
    var ended = false
}

private struct UpstreamBodyDelegate: NIOAsyncSequenceProducerDelegate {
    let channel: Channel
    let exchange: NIOLoopBound<UpstreamExchange>

    func produceMore() {
        let channel = self.channel
        let exchange = self.exchange
        channel.eventLoop.execute {
            guard !exchange.value.ended else { return }
            try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            channel.read()
        }
    }

    func didTerminate() {
        // The consumer is gone: a connection with the rest of an answer still coming cannot be reused.
        let channel = self.channel
        let exchange = self.exchange
        channel.eventLoop.execute {
            if !exchange.value.ended { channel.close(promise: nil) }
        }
    }
}

/// Turns the parts of each answer into a ``UpstreamClient/Response``; closes the connection on
/// anything unexpected.
fileprivate final class UpstreamResponseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    /// Buffers held for a slow consumer before the connection stops reading.
    static let lowWatermark = 8
    static let highWatermark = 64

    private enum State {
        case idle
        case awaitingHead(EventLoopPromise<UpstreamClient.Response>, Scheduled<Void>?)
        /// The head arrived in this read; the body so far is held, in case the end arrives in
        /// it too (then the answer returns whole). At the read's end it becomes a stream.
        case headRead(EventLoopPromise<UpstreamClient.Response>, HTTPResponseHead, [ByteBuffer])
        case streaming(UpstreamBody.Producer.Source, UpstreamExchange, keepAlive: Bool)
    }
    /// The consumer fell behind and reading stopped (its `produceMore` resumes it).
    private var readingPaused = false

    private let connection: UpstreamConnection
    private var state = State.idle

    init(connection: UpstreamConnection) {
        self.connection = connection
    }

    func expect(_ promise: EventLoopPromise<UpstreamClient.Response>, timeout: TimeAmount) {
        guard case .idle = state else {
            promise.fail(UpstreamClientError(message: "the connection to the API server is busy", beforeAnswer: true))
            return
        }
        let channel = connection.channel
        let deadline = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(UpstreamClientError(message: "the API server did not answer within \(Self.describe(timeout))",
                                             beforeAnswer: false))
            channel.close(promise: nil)
        }
        state = .awaitingHead(promise, deadline)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let head), .awaitingHead(let promise, let deadline)):
            deadline?.cancel()
            state = .headRead(promise, head, [])
        case (.body(let buffer), .headRead(let promise, let head, var buffers)):
            state = .idle   // lets `buffers` be appended to without a copy
            buffers.append(buffer)
            state = .headRead(promise, head, buffers)
        case (.end, .headRead(let promise, let head, let buffers)):
            state = .idle
            connection.ended(keepAlive: head.isKeepAlive)
            promise.succeed(UpstreamClient.Response(status: head.status, headers: head.headers,
                                                    body: UpstreamBody(source: .complete(buffers))))
        case (.body(let buffer), .streaming(let source, _, _)):
            if case .stopProducing = source.yield(buffer) {
                readingPaused = true
                try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
            }
        case (.end, .streaming(let source, let exchange, let keepAlive)):
            exchange.ended = true
            state = .idle
            source.finish()
            if readingPaused {
                readingPaused = false
                try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            }
            connection.ended(keepAlive: keepAlive)
        default:
            // Bytes nobody asked for (or a part out of order): this connection cannot be trusted.
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        defer { context.fireChannelReadComplete() }
        guard case .headRead(let promise, let head, let buffers) = state else { return }
        // The answer goes on past this read: from now on its body streams.
        let exchange = UpstreamExchange()
        let produced = UpstreamBody.Producer.makeSequence(
            elementType: ByteBuffer.self, failureType: (any Error).self,
            backPressureStrategy: .init(lowWatermark: Self.lowWatermark, highWatermark: Self.highWatermark),
            finishOnDeinit: false,
            delegate: UpstreamBodyDelegate(channel: context.channel, exchange: NIOLoopBound(exchange, eventLoop: context.eventLoop)))
        state = .streaming(produced.source, exchange, keepAlive: head.isKeepAlive)
        if case .stopProducing = produced.source.yield(contentsOf: buffers) {
            readingPaused = true
            try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
        }
        promise.succeed(UpstreamClient.Response(status: head.status, headers: head.headers,
                                                body: UpstreamBody(source: .streaming(produced.sequence))))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(UpstreamClientError(message: "the connection to the API server failed: \(error)", beforeAnswer: isAwaitingHead))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(UpstreamClientError(message: "the API server closed the connection", beforeAnswer: isAwaitingHead))
        connection.closed()
        context.fireChannelInactive()
    }

    static func describe(_ amount: TimeAmount) -> String {
        amount.nanoseconds % 1_000_000_000 == 0 ? "\(amount.nanoseconds / 1_000_000_000) s" : "\(amount.nanoseconds / 1_000_000) ms"
    }

    private var isAwaitingHead: Bool {
        if case .awaitingHead = state { return true }
        return false
    }

    private func fail(_ error: UpstreamClientError) {
        switch state {
        case .idle: break
        case .awaitingHead(let promise, let deadline):
            deadline?.cancel()
            promise.fail(error)
        case .headRead(let promise, _, _):
            promise.fail(error)
        case .streaming(let source, let exchange, _):
            exchange.ended = true
            source.finish(error)
        }
        state = .idle
    }
}
