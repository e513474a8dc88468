import NIOCore
import NIOHTTP1
import NIOPosix

/// The least a reverse proxy built on SwiftNIO does per request: parse the request, swap the
/// Authorization header, forward it on a kept-alive upstream connection of the same event
/// loop, and relay the answer's parts as they come. No authentication, recording, masking,
/// async tasks or HTTP client library. Its CPU per request, measured in the same run as the
/// gateway, is the floor the gateway's plumbing can approach on this machine; the gap between
/// the two is what the gateway's own work and its libraries cost.
final class NIOFloorProxy {
    private let group = MultiThreadedEventLoopGroup.singleton
    private var channel: Channel?

    /// Listens on a free loopback port and returns it.
    func start(upstreamPort: Int, token: String) throws -> Int {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(FloorInbound(upstreamPort: upstreamPort, token: token))
                }
            }
        let channel = try bootstrap.bind(host: "127.0.0.1", port: 0).wait()
        self.channel = channel
        return channel.localAddress?.port ?? 0
    }

    func stop() {
        try? channel?.close().wait()
    }
}

/// One agent connection, with its own upstream connection (opened at its first request).
private final class FloorInbound: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let upstreamPort: Int
    private let token: String
    private var upstream: Channel?
    private var head: HTTPRequestHead?

    init(upstreamPort: Int, token: String) {
        self.upstreamPort = upstreamPort
        self.token = token
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break   // the benchmark's requests have none
        case .end:
            guard var head else { return }
            self.head = nil
            head.headers.remove(name: "authorization")
            head.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(token)")
            head.headers.replaceOrAdd(name: "Host", value: "127.0.0.1:\(upstreamPort)")
            send(head, context: context)
        }
    }

    private func send(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        if let upstream, upstream.isActive {
            write(head, to: upstream)
            return
        }
        let inbound = context.channel
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        ClientBootstrap(group: context.eventLoop)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.pipeline.addHTTPClientHandlers().flatMap {
                    channel.pipeline.addHandler(FloorOutbound(inbound: inbound))
                }
            }
            .connect(host: "127.0.0.1", port: upstreamPort)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    self.upstream = channel
                    self.write(head, to: channel)
                case .failure:
                    loopBound.value.close(promise: nil)
                }
            }
    }

    private func write(_ head: HTTPRequestHead, to upstream: Channel) {
        upstream.write(HTTPClientRequestPart.head(head), promise: nil)
        upstream.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        upstream?.close(promise: nil)
        context.fireChannelInactive()
    }
}

/// Relays the upstream answer to the agent connection on the same event loop.
private final class FloorOutbound: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let inbound: Channel

    init(inbound: Channel) { self.inbound = inbound }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            inbound.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: head.status, headers: head.headers)),
                          promise: nil)
        case .body(let body):
            inbound.write(HTTPServerResponsePart.body(.byteBuffer(body)), promise: nil)
        case .end:
            inbound.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        inbound.close(promise: nil)
        context.fireChannelInactive()
    }
}
