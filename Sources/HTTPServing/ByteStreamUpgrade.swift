import Foundation
import NIOCore
import NIOHTTP1

/// What an upgrade service makes of one `Upgrade` request.
public enum UpgradeDecision<Session: Sendable>: Sendable {
    /// Switch protocols: `headers` go on the `101` response, then `session` runs the connection.
    case accept(headers: [(String, String)], session: Session)
    /// Not for this service: the request goes on to the normal HTTP handler.
    case decline
    /// Answer the request with this response (a refusal with its `metav1.Status`) and keep
    /// serving HTTP on the connection; the normal handler is not called.
    case refuse(HTTPResponse)
}

/// Decides upgrades to a protocol that takes over the raw connection after
/// `101 Switching Protocols` (`Upgrade: SPDY/3.1` for port-forward). A request it declines
/// is served by the normal HTTP handler, which answers with the right error (401, 403, 404).
public protocol ByteStreamUpgradeService: Sendable {
    /// The protocol token clients send in `Upgrade`, e.g. `SPDY/3.1` (compared case-insensitively).
    var upgradeProtocol: String { get }
    func decide(_ request: HTTPRequest) async -> UpgradeDecision<any ByteStreamSession>
}

/// A response an upgrader chose to answer with instead of upgrading, handed to the
/// connection's request handler (one per connection, like the pending sessions).
final class PendingRefusal: @unchecked Sendable {
    private let lock = NSLock()
    private var response: HTTPResponse?
    func set(_ response: HTTPResponse) { lock.lock(); self.response = response; lock.unlock() }
    func take() -> HTTPResponse? { lock.lock(); defer { lock.unlock() }; let r = response; response = nil; return r }
}

/// One upgraded connection's logic: bytes in, bytes out.
public protocol ByteStreamSession: AnyObject, Sendable {
    /// Called on the connection's event loop once the 101 response is written.
    func start(_ connection: ByteStreamConnection)
    /// Bytes from the client, in order, on the connection's event loop.
    func receive(_ bytes: [UInt8])
    /// The connection closed (either side); called once.
    func closed()
}

/// The send side of an upgraded connection; safe to call from any thread.
public final class ByteStreamConnection: @unchecked Sendable {
    private let channel: Channel

    init(channel: Channel) { self.channel = channel }

    public func send(_ bytes: [UInt8]) {
        channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
    }

    /// Sends `bytes`; `written` runs (on the event loop) once they left for the socket, or failed.
    public func send(_ bytes: [UInt8], written: @escaping @Sendable () -> Void) {
        channel.writeAndFlush(ByteBuffer(bytes: bytes)).whenComplete { _ in written() }
    }

    /// Closes the connection once what was sent is flushed.
    public func close() {
        let channel = self.channel
        channel.writeAndFlush(ByteBuffer()).whenComplete { _ in channel.close(promise: nil) }
    }

    /// Calls `body` once the connection is closed (at once when it already is).
    public func whenClosed(_ body: @escaping @Sendable () -> Void) {
        channel.closeFuture.whenComplete { _ in body() }
    }
}

/// Carries the accepted session from `buildUpgradeResponse` to `upgrade` on one connection.
final class PendingByteStreamSession: @unchecked Sendable {
    private let lock = NSLock()
    private var session: ByteStreamSession?
    func set(_ session: ByteStreamSession) { lock.lock(); self.session = session; lock.unlock() }
    func take() -> ByteStreamSession? { lock.lock(); defer { lock.unlock() }; let s = session; session = nil; return s }
}

struct ByteStreamUpgradeDeclined: Error {}

/// NIO upgrader for a ``ByteStreamUpgradeService``.
struct ByteStreamUpgrader: HTTPServerProtocolUpgrader, @unchecked Sendable {
    let service: ByteStreamUpgradeService
    let pending: PendingByteStreamSession
    let refusal: PendingRefusal

    var supportedProtocol: String { service.upgradeProtocol }
    var requiredUpgradeHeaders: [String] { [] }

    func buildUpgradeResponse(channel: Channel, upgradeRequest head: HTTPRequestHead,
                              initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        let promise = channel.eventLoop.makePromise(of: HTTPHeaders.self)
        let request = HTTPRequest(method: head.method.rawValue, uri: head.uri, headers: head.headers, body: [],
                                  bodyTooLarge: false, remoteAddress: channel.remoteAddress?.description)
        let service = self.service
        let pending = self.pending
        let refusal = self.refusal
        let decision = channel.decideUpgrade { await service.decide(request) }
        promise.completeWithTask {
            let headers: [(String, String)]
            switch await decision.value {
            case .accept(let accepted, let session):
                headers = accepted
                pending.set(session)
            case .decline:
                throw ByteStreamUpgradeDeclined()
            case .refuse(let response):
                refusal.set(response)
                throw ByteStreamUpgradeDeclined()
            }
            var response = initialResponseHeaders
            for (name, value) in headers { response.add(name: name, value: value) }
            return response
        }
        return promise.futureResult
    }

    func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        guard let session = pending.take() else { return context.close() }
        return context.eventLoop.makeCompletedFuture {
            try context.pipeline.syncOperations.addHandler(ByteStreamSessionHandler(session: session))
        }
    }
}

/// Bytes to and from a ``ByteStreamSession``.
final class ByteStreamSessionHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let session: ByteStreamSession
    private var ended = false

    init(session: ByteStreamSession) { self.session = session }

    func handlerAdded(context: ChannelHandlerContext) {
        session.start(ByteStreamConnection(channel: context.channel))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if let bytes = buffer.readBytes(length: buffer.readableBytes), !bytes.isEmpty {
            session.receive(bytes)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        end()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A reset or TLS failure on an upgraded connection ends it; there is no HTTP left to answer with.
        context.close(promise: nil)
    }

    private func end() {
        if ended { return }
        ended = true
        session.closed()
    }
}
