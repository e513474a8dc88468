import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import HTTPServing

/// The gateway's leg to the API server for an upgraded request (`pods/exec`, `pods/attach`,
/// `pods/portforward`). AsyncHTTPClient cannot switch protocols, so this is a NIO client of
/// its own: TCP (+TLS trusting the upstream CA of the gateway's kubeconfig), one HTTP/1.1
/// upgrade request, then either WebSocket frames or raw bytes (SPDY/3.1).
///
/// Contract: ``connect(method:target:headers:transport:inbound:)`` returns once upstream
/// answered: `.upgraded` with the `101` headers (the subprotocol it chose), or `.refused` with
/// the whole non-`101` answer (its `metav1.Status`), which the agent then gets. After the
/// upgrade every message (WebSocket: one binary message, reassembled; SPDY: whatever bytes
/// arrived) and finally one `.upstreamClosed` go to `inbound`, in order — including bytes that
/// arrived together with the `101`.
struct UpstreamConnector: Sendable {
    enum Transport: Sendable {
        case webSocket
        /// `Upgrade: SPDY/3.1` on the raw connection.
        case spdy
    }

    enum Outcome: Sendable {
        case upgraded(UpstreamStream, headers: HTTPHeaders)
        case refused(status: Int, headers: HTTPHeaders, body: [UInt8])
    }

    let host: String
    let port: Int
    /// Path prefix of the upstream server URL (usually empty).
    let pathPrefix: String
    let tls: NIOSSLContext?
    let serverHostname: String?

    init(server: String, tls configuration: TLSConfiguration) throws {
        guard let url = URL(string: server), let scheme = url.scheme?.lowercased(), let host = url.host else {
            throw GatewayConfigError("upstream server \(server) is not a URL")
        }
        self.host = host
        port = url.port ?? (scheme == "https" ? 443 : 80)
        var prefix = url.path
        while prefix.hasSuffix("/") { prefix.removeLast() }
        pathPrefix = prefix
        if scheme == "https" {
            tls = try NIOSSLContext(configuration: configuration)
            // SNI and hostname checks take names, not addresses.
            serverHostname = host.allSatisfy({ $0.isNumber || $0 == "." || $0 == ":" }) ? nil : host
        } else {
            tls = nil
            serverHostname = nil
        }
    }

    /// `Host` as the API server expects it: the port only when it is not the scheme's default.
    var hostHeader: String { port == 443 || port == 80 ? host : "\(host):\(port)" }

    /// A connection to the API server on `eventLoop`: TCP (10 s to connect, no Nagle), TLS when
    /// the server URL is https, then the handlers `protocolHandlers` adds.
    func bootstrap(on eventLoop: EventLoop,
                   protocolHandlers: @escaping @Sendable (Channel) throws -> Void) -> ClientBootstrap {
        let tls = self.tls
        let serverHostname = self.serverHostname
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(10))
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverHostname))
                    }
                    try protocolHandlers(channel)
                }
            }
    }

    func connect(method: String, target: String, headers: HTTPHeaders, transport: Transport,
                 inbound: AsyncStream<StreamEvent>.Continuation) async throws -> Outcome {
        let group = MultiThreadedEventLoopGroup.singleton
        let eventLoop = group.next()
        let outcome = eventLoop.makePromise(of: Outcome.self)
        let bootstrap = self.bootstrap(on: eventLoop) { channel in
            let upgrader: NIOHTTPClientProtocolUpgrader
            switch transport {
            case .webSocket:
                upgrader = NIOWebSocketClientUpgrader(maxFrameSize: 1 << 24, automaticErrorHandling: false) { channel, head in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(WebSocketMessageHandler(
                            role: .client, receive: { inbound.yield(.fromUpstream($0)) }, closed: { inbound.yield(.upstreamClosed) }))
                        outcome.succeed(.upgraded(UpstreamStream(channel: channel, webSocket: true), headers: head.headers))
                    }
                }
            case .spdy:
                upgrader = RawStreamClientUpgrader(protocolName: "SPDY/3.1") { channel, head in
                    try channel.pipeline.syncOperations.addHandler(UpstreamBytesHandler(inbound: inbound))
                    outcome.succeed(.upgraded(UpstreamStream(channel: channel, webSocket: false), headers: head.headers))
                }
            }
            try channel.pipeline.syncOperations.addHandler(DeferredInactive())
            let refusal = RefusedUpgradeCollector(outcome: outcome)
            // Stream bytes that arrive with the `101` belong to the upgraded protocol;
            // the HTTP-only collector leaves before they are replayed.
            try channel.pipeline.syncOperations.addHTTPClientHandlers(
                leftOverBytesStrategy: .forwardBytes,
                withClientUpgrade: (upgraders: [upgrader], completionHandler: { context in
                    context.pipeline.syncOperations.removeHandler(refusal, promise: nil)
                }))
            try channel.pipeline.syncOperations.addHandler(refusal)
        }
        let channel = try await bootstrap.connect(host: host, port: port).get()
        // A silent upstream must not hold the agent forever.
        let timeout = eventLoop.scheduleTask(in: .seconds(30)) {
            outcome.fail(UpstreamUpgradeError(message: "no answer to the upgrade within 30s"))
        }
        channel.closeFuture.whenComplete { _ in
            outcome.fail(UpstreamUpgradeError(message: "the API server closed the connection before answering the upgrade"))
        }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: pathPrefix + target, headers: headers)
        head.headers.replaceOrAdd(name: "Host", value: hostHeader)
        // The SPDY upgrade is a POST without a body; say so rather than let it go chunked.
        if head.method != .GET { head.headers.replaceOrAdd(name: "Content-Length", value: "0") }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        do {
            let result = try await outcome.futureResult.get()
            timeout.cancel()
            if case .refused = result { channel.close(promise: nil) }
            return result
        } catch {
            timeout.cancel()
            channel.close(promise: nil)
            throw error
        }
    }
}

struct UpstreamUpgradeError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// The send side of the upstream leg; safe from any thread.
final class UpstreamStream: @unchecked Sendable {
    private let channel: Channel
    /// The WebSocket end (client: frames masked); nil for a raw SPDY stream.
    private let webSocket: WebSocketConnection?

    init(channel: Channel, webSocket: Bool) {
        self.channel = channel
        self.webSocket = webSocket ? WebSocketConnection(channel: channel, role: .client) : nil
    }

    /// One WebSocket binary message, or raw bytes.
    func send(_ bytes: [UInt8]) {
        if let webSocket {
            webSocket.send(bytes)
        } else {
            channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
        }
    }

    /// Stops (or resumes) reading from the API server while the agent is slow to take what
    /// was read: the gateway never holds more than a window of a stream in memory.
    func setReading(_ reading: Bool) {
        channel.setOption(ChannelOptions.autoRead, value: reading).whenComplete { _ in }
        if reading { channel.read() }
    }

    func close() {
        if let webSocket {
            webSocket.close()
        } else {
            channel.close(promise: nil)
        }
    }
}

/// Holds the end of the connection back until the upgrade is done. An API server that writes
/// `101`, the whole stream and FIN at once would otherwise have the HTTP decoder see EOF while
/// the upgrade is still being set up, and it drops what it holds on EOF — the whole stream
/// (kubectl then saw a fast `exec` succeed with no output). The upgrade handler replays the
/// bytes it buffered as it leaves the pipeline, so EOF is passed on once it has left (or after
/// a bounded number of event-loop turns, for an upgrade that never completes).
private final class DeferredInactive: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    static let maximumTurns = 1_000

    func channelInactive(context: ChannelHandlerContext) {
        passOn(context, turnsLeft: Self.maximumTurns)
    }

    private func passOn(_ context: ChannelHandlerContext, turnsLeft: Int) {
        context.eventLoop.execute {
            let upgrading = (try? context.pipeline.syncOperations.handler(type: NIOHTTPClientUpgradeHandler.self)) != nil
            if upgrading && turnsLeft > 0 {
                self.passOn(context, turnsLeft: turnsLeft - 1)
            } else {
                context.fireChannelInactive()
            }
        }
    }
}

/// Upstream's answer when it did not switch protocols: collected whole for the agent.
private final class RefusedUpgradeCollector: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    private let outcome: EventLoopPromise<UpstreamConnector.Outcome>
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []

    init(outcome: EventLoopPromise<UpstreamConnector.Outcome>) { self.outcome = outcome }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body(var buffer):
            if body.count < 1 << 20 { body += buffer.readBytes(length: buffer.readableBytes) ?? [] }
        case .end:
            guard let head else { return }
            outcome.succeed(.refused(status: Int(head.status.code), headers: head.headers, body: body))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        outcome.fail(error)
        context.close(promise: nil)
    }
}

/// `Upgrade: <protocol>` with nothing protocol-specific: after `101` the connection carries bytes.
private struct RawStreamClientUpgrader: NIOHTTPClientProtocolUpgrader, @unchecked Sendable {
    let protocolName: String
    let onUpgrade: (Channel, HTTPResponseHead) throws -> Void

    init(protocolName: String, onUpgrade: @escaping (Channel, HTTPResponseHead) throws -> Void) {
        self.protocolName = protocolName
        self.onUpgrade = onUpgrade
    }

    var supportedProtocol: String { protocolName }
    var requiredUpgradeHeaders: [String] { [] }
    func addCustom(upgradeRequestHeaders: inout HTTPHeaders) {}
    func shouldAllowUpgrade(upgradeResponse: HTTPResponseHead) -> Bool { true }

    func upgrade(context: ChannelHandlerContext, upgradeResponse: HTTPResponseHead) -> EventLoopFuture<Void> {
        let channel = context.channel
        return context.eventLoop.makeCompletedFuture { try onUpgrade(channel, upgradeResponse) }
    }
}

/// Upstream bytes (SPDY) into the proxy's event stream.
private final class UpstreamBytesHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private let inbound: AsyncStream<StreamEvent>.Continuation
    private var ended = false

    init(inbound: AsyncStream<StreamEvent>.Continuation) { self.inbound = inbound }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if let bytes = buffer.readBytes(length: buffer.readableBytes), !bytes.isEmpty {
            inbound.yield(.fromUpstream(bytes))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !ended { ended = true; inbound.yield(.upstreamClosed) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
