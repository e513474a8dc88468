import Foundation
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Decides WebSocket upgrades (exec, attach) for ``HTTPServer``. A request it declines is
/// served by the normal HTTP handler, which answers with the right error (401, 403, 404,
/// or 400 "Upgrade request required").
public protocol WebSocketService: Sendable {
    /// Accepting returns the headers of the `101` (`Sec-WebSocket-Protocol`: the chosen
    /// subprotocol) and the session to run.
    func decide(_ request: HTTPRequest) async -> UpgradeDecision<any WebSocketSession>
}

/// One upgraded connection's logic: binary messages in, binary messages out.
public protocol WebSocketSession: AnyObject, Sendable {
    func start(_ connection: WebSocketConnection)
    func receive(_ message: [UInt8])
    func closed()
}

/// Which end of a WebSocket connection this process is: a client masks every frame it sends
/// (RFC 6455 section 5.3), a server never does.
public enum WebSocketRole: Sendable {
    case server
    case client

    var maskKey: WebSocketMaskingKey? { self == .client ? .random() : nil }
}

/// The send side of an upgraded connection, either end; safe to call from any thread.
public final class WebSocketConnection: @unchecked Sendable {
    private let channel: Channel
    private let role: WebSocketRole

    public init(channel: Channel, role: WebSocketRole) {
        self.channel = channel
        self.role = role
    }

    /// One binary message.
    public func send(_ bytes: [UInt8]) {
        channel.writeAndFlush(frame(.binary, ByteBuffer(bytes: bytes)), promise: nil)
    }

    /// Sends `bytes`; `written` runs (on the event loop) once they left for the socket, or failed.
    public func send(_ bytes: [UInt8], written: @escaping @Sendable () -> Void) {
        channel.writeAndFlush(frame(.binary, ByteBuffer(bytes: bytes))).whenComplete { _ in written() }
    }

    /// Calls `body` once the connection is closed (at once when it already is).
    public func whenClosed(_ body: @escaping @Sendable () -> Void) {
        channel.closeFuture.whenComplete { _ in body() }
    }

    /// Sends a close frame (normal closure) and closes the connection.
    public func close() {
        var data = ByteBuffer()
        data.write(webSocketErrorCode: .normalClosure)
        let channel = self.channel
        channel.writeAndFlush(frame(.connectionClose, data)).whenComplete { _ in channel.close(promise: nil) }
    }

    private func frame(_ opcode: WebSocketOpcode, _ data: ByteBuffer) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: opcode, maskKey: role.maskKey, data: data)
    }
}

/// Carries the accepted session from `shouldUpgrade` to the upgraded pipeline.
final class PendingSession: @unchecked Sendable {
    private let lock = NSLock()
    private var session: WebSocketSession?
    func set(_ session: WebSocketSession) { lock.lock(); self.session = session; lock.unlock() }
    func take() -> WebSocketSession? { lock.lock(); defer { lock.unlock() }; let s = session; session = nil; return s }
}

extension HTTPServer {
    static func webSocketUpgrader(_ service: WebSocketService, pending: PendingSession,
                                  refusal: PendingRefusal) -> NIOWebSocketServerUpgrader {
        NIOWebSocketServerUpgrader(
            maxFrameSize: 1 << 20, automaticErrorHandling: true,
            shouldUpgrade: { channel, head in
                let promise = channel.eventLoop.makePromise(of: HTTPHeaders?.self)
                let request = HTTPRequest(method: head.method.rawValue, uri: head.uri, headers: head.headers, body: [],
                                          bodyTooLarge: false, remoteAddress: channel.remoteAddress?.description)
                let decision = channel.decideUpgrade { await service.decide(request) }
                promise.completeWithTask {
                    switch await decision.value {
                    case .accept(let headers, let session):
                        pending.set(session)
                        return HTTPHeaders(headers)
                    case .decline:
                        return nil
                    case .refuse(let response):
                        refusal.set(response)
                        return nil
                    }
                }
                return promise.futureResult
            },
            upgradePipelineHandler: { channel, _ in
                guard let session = pending.take() else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(WebSocketMessageHandler(
                        role: .server, added: { session.start(WebSocketConnection(channel: $0, role: .server)) },
                        receive: { session.receive($0) }, closed: { session.closed() }))
                }
            })
    }
}

/// WebSocket frames into messages, at either end of a connection (the gateway's listeners
/// and its upstream leg both use it): fragmented messages are reassembled and handed to
/// `receive` whole; pings are answered (masked when this end is the client); the end (a
/// close frame, the connection going away, or a protocol error) is reported to `closed`
/// exactly once, and nothing is handed over after it.
///
/// Data frames are sequenced as RFC 6455 section 5.4 says: a text or binary frame while a
/// fragmented message is open, or a continuation with none open, fails the connection (it
/// is closed), as does a message longer than `maxMessageBytes`: a peer that never sends FIN
/// cannot grow this process's memory without bound.
public final class WebSocketMessageHandler: ChannelInboundHandler, @unchecked Sendable {
    public typealias InboundIn = WebSocketFrame
    public typealias OutboundOut = WebSocketFrame

    /// The largest message reassembled (16 MiB: the upstream leg's largest frame).
    public static let defaultMaxMessageBytes = 1 << 24

    private let role: WebSocketRole
    private let maxMessageBytes: Int
    private var messageOpen = false
    private let added: (Channel) -> Void
    private let receive: ([UInt8]) -> Void
    private let closed: () -> Void
    private var fragments: [UInt8] = []
    private var ended = false

    /// - Parameter added: called once the handler is in the pipeline (a session starts there).
    public init(role: WebSocketRole, maxMessageBytes: Int = WebSocketMessageHandler.defaultMaxMessageBytes,
                added: @escaping (Channel) -> Void = { _ in },
                receive: @escaping ([UInt8]) -> Void, closed: @escaping () -> Void) {
        self.role = role
        self.maxMessageBytes = maxMessageBytes
        self.added = added
        self.receive = receive
        self.closed = closed
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        added(context.channel)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard !ended else { return }
        switch frame.opcode {
        case .binary, .text, .continuation:
            // A new message while one is open, or a continuation of none: fail the connection.
            guard (frame.opcode == .continuation) == messageOpen else { return fail(context) }
            var payload = frame.unmaskedData
            guard fragments.count + payload.readableBytes <= maxMessageBytes else { return fail(context) }
            fragments += payload.readBytes(length: payload.readableBytes) ?? []
            messageOpen = !frame.fin
            if frame.fin {
                let message = fragments
                fragments = []
                receive(message)
            }
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: role.maskKey, data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            end()
            context.close(promise: nil)
        default:
            break
        }
    }

    public func channelInactive(context: ChannelHandlerContext) {
        end()
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func fail(_ context: ChannelHandlerContext) {
        fragments = []
        end()
        context.close(promise: nil)
    }

    private func end() {
        if ended { return }
        ended = true
        closed()
    }
}
