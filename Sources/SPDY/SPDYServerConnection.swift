import Foundation

/// What a SPDY connection does with the streams its peer opens.
public protocol SPDYStreamHandler: AnyObject {
    /// Whether to accept a stream the peer opens with `headers`: nil accepts it (the
    /// connection answers SYN_REPLY), a status refuses it with RST_STREAM.
    func refusal(forStreamWith headers: SPDYHeaders) -> SPDYResetStatus?
    /// The peer opened `streamID` and it was accepted and replied to; sending on it is allowed.
    func streamOpened(_ streamID: UInt32, headers: SPDYHeaders, on connection: SPDYServerConnection)
    /// Bytes the peer sent on an accepted stream.
    func streamReceived(_ streamID: UInt32, _ bytes: [UInt8], on connection: SPDYServerConnection)
    /// The peer will send nothing more on `streamID` (FIN).
    func streamHalfClosed(_ streamID: UInt32, on connection: SPDYServerConnection)
    /// The peer reset `streamID`; nothing more may be sent on it.
    func streamReset(_ streamID: UInt32, on connection: SPDYServerConnection)
    /// The connection is gone.
    func connectionClosed(_ connection: SPDYServerConnection)
}

/// The server side of one SPDY/3.1 connection, whatever carries its bytes (an upgraded TCP
/// connection, or WebSocket binary messages that tunnel it). The client opens every stream
/// (odd ids, increasing); the server replies to each, answers PINGs, and ends on GOAWAY or
/// on a malformed frame (GOAWAY with PROTOCOL_ERROR, then close). Flow control is not
/// enforced in either direction, as in spdystream, the Go implementation kubectl and the
/// kubelet use.
///
/// Confinement: `receive`, `closed` and the handler callbacks run on the transport's event
/// loop, one at a time; the handler's sends happen inside those callbacks. Outgoing frames
/// are collected and written once per `receive`, in order, which keeps the shared header
/// compression stream consistent.
public final class SPDYServerConnection: @unchecked Sendable {
    public struct Transport {
        public var send: ([UInt8]) -> Void
        public var close: () -> Void

        public init(send: @escaping ([UInt8]) -> Void, close: @escaping () -> Void) {
            self.send = send
            self.close = close
        }
    }

    private struct StreamState {
        var localFinished = false
        var remoteFinished = false
    }

    private let transport: Transport
    private weak var handler: SPDYStreamHandler?
    private let codec: SPDYFrameCodec
    private var streams: [UInt32: StreamState] = [:]
    private var lastStreamID: UInt32 = 0
    private var outbox: [UInt8] = []
    private var isClosed = false
    /// Frames are at most 16 MiB; kubectl writes 32 KiB at a time, so split sends likewise.
    public static let maxDataFrameBytes = 32 * 1024

    public init(transport: Transport, handler: SPDYStreamHandler) throws {
        self.transport = transport
        self.handler = handler
        self.codec = try SPDYFrameCodec()
    }

    /// Feeds bytes from the peer.
    public func receive(_ bytes: [UInt8]) {
        guard !isClosed else { return }
        do {
            for frame in try codec.decode(bytes) {
                try handle(frame)
                if isClosed { break }
            }
        } catch {
            fail(error)
        }
        flush()
    }

    /// The transport closed.
    public func closed() {
        guard !isClosed else { return }
        isClosed = true
        streams.removeAll()
        handler?.connectionClosed(self)
    }

    // MARK: Sending (inside handler callbacks)

    public func send(_ bytes: [UInt8], on streamID: UInt32, fin: Bool = false) {
        guard let state = streams[streamID], !state.localFinished else { return }
        var offset = 0
        repeat {
            let end = min(offset + Self.maxDataFrameBytes, bytes.count)
            queue(.data(streamID: streamID, fin: fin && end == bytes.count, payload: Array(bytes[offset..<end])))
            offset = end
        } while offset < bytes.count
        if fin { finishLocally(streamID) }
    }

    /// Half-closes `streamID` from this side (an empty DATA frame with FIN).
    public func finish(_ streamID: UInt32) {
        send([], on: streamID, fin: true)
    }

    public func reset(_ streamID: UInt32, status: SPDYResetStatus = .cancel) {
        guard streams.removeValue(forKey: streamID) != nil else { return }
        queue(.rstStream(streamID: streamID, status: status))
    }

    // MARK: Frames from the peer

    private func handle(_ frame: SPDYFrame) throws {
        switch frame {
        case let .synStream(streamID, _, _, fin, _, headers):
            guard streamID != 0 else { throw SPDYFrameError("SYN_STREAM with stream id 0") }
            guard streamID % 2 == 1, streamID > lastStreamID else {
                queue(.rstStream(streamID: streamID, status: .protocolError))
                return
            }
            lastStreamID = streamID
            guard let handler else { return }
            if let refusal = handler.refusal(forStreamWith: headers) {
                queue(.rstStream(streamID: streamID, status: refusal))
                return
            }
            streams[streamID] = StreamState()
            queue(.synReply(streamID: streamID, fin: false, headers: SPDYHeaders()))
            handler.streamOpened(streamID, headers: headers, on: self)
            if fin { remoteFinished(streamID) }
        case let .data(streamID, fin, payload):
            guard let state = streams[streamID] else {
                // Data for a stream we reset or never saw: tell the peer, as SPDY/3 asks.
                if streamID > lastStreamID || streamID % 2 == 0 {
                    queue(.rstStream(streamID: streamID, status: .invalidStream))
                }
                return
            }
            guard !state.remoteFinished else {
                reset(streamID, status: .streamAlreadyClosed)
                handler?.streamReset(streamID, on: self)
                return
            }
            if !payload.isEmpty { handler?.streamReceived(streamID, payload, on: self) }
            if fin { remoteFinished(streamID) }
        case let .rstStream(streamID, _):
            if streams.removeValue(forKey: streamID) != nil {
                handler?.streamReset(streamID, on: self)
            }
        case let .ping(id):
            // Pings the client starts have odd ids; echo them. Even ids would answer our own.
            if id % 2 == 1 { queue(.ping(id: id)) }
        case .goAway:
            queue(.goAway(lastGoodStreamID: lastStreamID, status: SPDYGoAwayStatus.ok))
            closeTransport()
        case let .headers(streamID, fin, _):
            if fin, streams[streamID] != nil { remoteFinished(streamID) }
        case .synReply, .settings, .windowUpdate:
            // No server-initiated streams; no flow control (see the type's comment).
            break
        }
    }

    private func remoteFinished(_ streamID: UInt32) {
        guard var state = streams[streamID] else { return }
        state.remoteFinished = true
        streams[streamID] = state.localFinished ? nil : state
        handler?.streamHalfClosed(streamID, on: self)
    }

    private func finishLocally(_ streamID: UInt32) {
        guard var state = streams[streamID] else { return }
        state.localFinished = true
        streams[streamID] = state.remoteFinished ? nil : state
    }

    // MARK: Output

    private func queue(_ frame: SPDYFrame) {
        guard !isClosed else { return }
        do {
            outbox += try codec.encode(frame)
        } catch {
            fail(error)
        }
    }

    private func flush() {
        guard !outbox.isEmpty else { return }
        let bytes = outbox
        outbox = []
        transport.send(bytes)
    }

    private func fail(_ error: Error) {
        guard !isClosed else { return }
        // The header compression state may be broken, so nothing but GOAWAY can follow.
        if let bytes = try? codec.encode(.goAway(lastGoodStreamID: lastStreamID, status: SPDYGoAwayStatus.protocolError)) {
            outbox += bytes
        }
        closeTransport()
    }

    private func closeTransport() {
        flush()
        isClosed = true
        streams.removeAll()
        transport.close()
        handler?.connectionClosed(self)
    }
}
