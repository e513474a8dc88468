import Foundation
import NIOCore

/// Bounds on what a client can hold of an ``HTTPServer`` without sending requests: without
/// them an idle TCP connection, or a TLS connection with half a request head, stayed open
/// indefinitely (5,000 of them held ~150 MB).
///
/// The clock runs only while the server waits for the client:
/// 1. with TLS, from accept to the first byte of a request, handshake included:
///    `tlsHandshakeTimeout`; from that byte to the complete head, `requestHeadTimeout`;
/// 2. without TLS, from accept to a complete request head: `requestHeadTimeout`;
/// 3. after a response, until the next request's first byte: `idleTimeout`; from that byte
///    to its complete head, `requestHeadTimeout` again.
/// Nothing is timed while a request is being answered — however long its handler takes (a
/// request held for approval, a watch) — nor once the connection was upgraded (WebSocket or
/// SPDY exec, attach, port-forward). A request body is not timed either.
/// A connection over `maxConnections` is closed as soon as it is accepted.
public struct ConnectionLimits: Sendable, Hashable {
    /// With TLS, time from accept to the first request byte: the handshake and the wait
    /// after it. Default 10 s.
    public var tlsHandshakeTimeout: Duration
    /// Time for a complete request head: from accept without TLS, else (and on a kept-alive
    /// connection) from the request's first byte. Default 10 s.
    public var requestHeadTimeout: Duration
    /// Time a kept-alive connection may wait after a response for the next request to begin.
    /// Default 90 s (as Go's and kube-apiserver's servers).
    public var idleTimeout: Duration
    /// Connections open at once, upgraded ones included; more are closed on accept and
    /// counted in ``HTTPServer/refusedConnections``. Default 4,096.
    public var maxConnections: Int

    public init(tlsHandshakeTimeout: Duration = .seconds(10), requestHeadTimeout: Duration = .seconds(10),
                idleTimeout: Duration = .seconds(90), maxConnections: Int = 4096) {
        self.tlsHandshakeTimeout = tlsHandshakeTimeout
        self.requestHeadTimeout = requestHeadTimeout
        self.idleTimeout = idleTimeout
        self.maxConnections = maxConnections
    }

    public static let `default` = ConnectionLimits()
}

/// Where a connection is in its request cycle, as told by the HTTP handlers that know it:
/// sent down the pipeline as user outbound events to ``ConnectionTimeoutHandler``.
enum ConnectionCycleEvent: Sendable {
    /// A complete request head arrived (to the request handler, or to an upgrader deciding).
    case requestHeadReceived
    /// The response's last part is about to be written; the next request may follow.
    case responseFinished
    /// The connection switched protocols; it is no longer timed.
    case upgraded
}

extension Channel {
    /// Starts an upgrade's decision for a complete request head: no longer timed (it may wait
    /// long, a request held for approval), and cancelled when the client hangs up meanwhile,
    /// as a closed connection cancels a plain request.
    func decideUpgrade<Decision: Sendable>(_ decide: @escaping @Sendable () async -> Decision) -> Task<Decision, Never> {
        triggerUserOutboundEvent(ConnectionCycleEvent.requestHeadReceived, promise: nil)
        let decision = Task { await decide() }
        closeFuture.whenComplete { _ in decision.cancel() }
        return decision
    }
}

/// Times the waits of ``ConnectionLimits`` on one connection; sits right after the TLS
/// handler (first without TLS), passing bytes through untouched.
final class ConnectionTimeoutHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer

    private enum Phase {
        case handshaking, awaitingHead, answering, idle, upgraded, closed
    }

    private let limits: ConnectionLimits
    private let usesTLS: Bool
    private let timedOut: @Sendable () -> Void
    private var phase: Phase?
    private var timer: Scheduled<Void>?

    init(limits: ConnectionLimits, usesTLS: Bool, timedOut: @escaping @Sendable () -> Void) {
        self.limits = limits
        self.usesTLS = usesTLS
        self.timedOut = timedOut
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { begin(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        begin(context)
        context.fireChannelActive()
    }

    private func begin(_ context: ChannelHandlerContext) {
        guard phase == nil else { return }
        if usesTLS {
            enter(.handshaking, limit: limits.tlsHandshakeTimeout, context)
        } else {
            enter(.awaitingHead, limit: limits.requestHeadTimeout, context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Bytes reach this handler decrypted, so with TLS the first one also ends the handshake.
        if phase == .idle || phase == .handshaking { enter(.awaitingHead, limit: limits.requestHeadTimeout, context) }
        context.fireChannelRead(data)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let cycle = event as? ConnectionCycleEvent else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        switch cycle {
        case .requestHeadReceived:
            if phase != .upgraded && phase != .closed { enter(.answering, limit: nil, context) }
        case .responseFinished:
            if phase == .answering { enter(.idle, limit: limits.idleTimeout, context) }
        case .upgraded:
            enter(.upgraded, limit: nil, context)
        }
        promise?.succeed()
    }

    func channelInactive(context: ChannelHandlerContext) {
        enter(.closed, limit: nil, context)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    private func enter(_ next: Phase, limit: Duration?, _ context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        phase = next
        guard let limit else { return }
        let components = limit.components
        let nanoseconds = components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
        let channel = context.channel
        let timedOut = self.timedOut
        timer = context.eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) { [weak self] in
            guard let self, self.phase == next else { return }
            self.phase = .closed
            timedOut()
            channel.close(promise: nil)
        }
    }
}
