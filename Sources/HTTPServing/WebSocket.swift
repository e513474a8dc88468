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

/// The send side of an upgraded connection; safe to call from any thread.
public final class WebSocketConnection: @unchecked Sendable {
    private let channel: Channel

    init(channel: Channel) { self.channel = channel }

    public func send(_ bytes: [UInt8]) {
        let frame = WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(bytes: bytes))
        channel.writeAndFlush(frame, promise: nil)
    }

    /// Sends `bytes`; `written` runs (on the event loop) once they left for the socket, or failed.
    public func send(_ bytes: [UInt8], written: @escaping @Sendable () -> Void) {
        let frame = WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(bytes: bytes))
        channel.writeAndFlush(frame).whenComplete { _ in written() }
    }

    /// Sends a close frame (normal closure) and closes the connection.
    public func close() {
        var data = ByteBuffer()
        data.write(webSocketErrorCode: .normalClosure)
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
        let channel = self.channel
        channel.writeAndFlush(frame).whenComplete { _ in channel.close(promise: nil) }
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
                    try channel.pipeline.syncOperations.addHandler(WebSocketSessionHandler(session: session))
                }
            })
    }
}

/// Frames to and from a ``WebSocketSession``; answers pings, ends on close.
final class WebSocketSessionHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let session: WebSocketSession
    private var fragments: [UInt8] = []
    private var ended = false

    init(session: WebSocketSession) { self.session = session }

    func handlerAdded(context: ChannelHandlerContext) {
        session.start(WebSocketConnection(channel: context.channel))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .binary, .text, .continuation:
            var payload = frame.unmaskedData
            fragments += payload.readBytes(length: payload.readableBytes) ?? []
            if frame.fin {
                let message = fragments
                fragments = []
                session.receive(message)
            }
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            end()
            context.close(promise: nil)
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        end()
        context.fireChannelInactive()
    }

    private func end() {
        if ended { return }
        ended = true
        session.closed()
    }
}
