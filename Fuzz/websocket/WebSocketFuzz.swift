/// libFuzzer target: the WebSocket bytes an agent's `kubectl exec` sends to the gateway,
/// through the pipeline `HTTPServer` builds after an upgrade (NIO's frame decoder and
/// encoder, its protocol-error handler, then HTTPServing's ``WebSocketMessageHandler``).
///
/// The first byte says how to cut the rest into reads (TCP segments); the rest is what the
/// client sends after the upgrade.
///
/// Invariants (any violation aborts, which libFuzzer saves as a crash), against an
/// independent reading of the same bytes by RFC 6455 (§5.2 framing, with NIO's limits: frames
/// ≤ 1 MiB, control frames ≤ 125 bytes and unfragmented; §5.4 fragmentation):
/// - The messages handed to the session are exactly the RFC's messages, in order: a data
///   frame that starts a message while another is open, or a continuation with none open,
///   fails the connection and delivers nothing assembled across it.
/// - Each ping is answered by a pong with the same payload, before the connection ends.
/// - `closed` is reported once, and no message is handed over after it.
///
/// Found and fixed (Fuzz/README.md; reproducers in Fuzz/corpus/websocket): the handler did not
/// enforce §5.4 sequencing, and handed over frames read with a close frame after `closed`.
@testable import HTTPServing
import Foundation
import NIOCore
import NIOEmbedded
import NIOWebSocket

func fail(_ message: @autoclosure () -> String) -> Never {
    FileHandle.standardError.write(Data(("websocket invariant violated: " + message() + "\n").utf8))
    abort()
}

/// What an RFC 6455 server makes of `bytes`: messages, ping payloads, and whether the
/// connection ends (close frame or protocol error) before the bytes do.
func rfcReading(_ bytes: [UInt8]) -> (messages: [[UInt8]], pings: [[UInt8]], ended: Bool) {
    var messages: [[UInt8]] = []
    var pings: [[UInt8]] = []
    var open: [UInt8]?
    var i = 0
    while true {
        guard bytes.count - i >= 2 else { return (messages, pings, false) }
        let fin = bytes[i] & 0x80 != 0
        let opcode = bytes[i] & 0x0f
        let masked = bytes[i + 1] & 0x80 != 0
        var length = UInt64(bytes[i + 1] & 0x7f)
        var at = i + 2
        if length == 126 {
            guard bytes.count - at >= 2 else { return (messages, pings, false) }
            length = UInt64(bytes[at]) << 8 | UInt64(bytes[at + 1])
            at += 2
        } else if length == 127 {
            guard bytes.count - at >= 8 else { return (messages, pings, false) }
            length = (0..<8).reduce(0) { $0 << 8 | UInt64(bytes[at + $1]) }
            at += 8
        }
        let control = opcode & 0x08 != 0
        if length > 1 << 20 { return (messages, pings, true) }
        if control && (length > 125 || !fin) { return (messages, pings, true) }
        var key: [UInt8] = [0, 0, 0, 0]
        if masked {
            guard bytes.count - at >= 4 else { return (messages, pings, false) }
            key = Array(bytes[at..<at + 4])
            at += 4
        }
        guard bytes.count - at >= Int(length) else { return (messages, pings, false) }
        let payload = (0..<Int(length)).map { bytes[at + $0] ^ key[$0 % 4] }
        i = at + Int(length)
        switch opcode {
        case 0x0:
            guard open != nil else { return (messages, pings, true) }  // continuation of nothing
            open = (open ?? []) + payload
        case 0x1, 0x2:
            guard open == nil else { return (messages, pings, true) }  // a new message inside one
            open = (open ?? []) + payload
        case 0x8:
            return (messages, pings, true)
        case 0x9:
            pings.append(payload)
            continue
        default:
            continue  // pong and reserved opcodes: ignored
        }
        if fin, let message = open {
            messages.append(message)
            open = nil
        }
    }
}

/// Server frames (unmasked) written back to the client: the pong payloads, in order.
func pongs(in bytes: [UInt8]) -> [[UInt8]] {
    var out: [[UInt8]] = []
    var i = 0
    while bytes.count - i >= 2 {
        guard bytes[i + 1] & 0x7f < 126 || bytes.count - i >= 10 else { break }
        var length = Int(bytes[i + 1] & 0x7f)
        var at = i + 2
        if length == 126 { length = Int(bytes[at]) << 8 | Int(bytes[at + 1]); at += 2 }
        else if length == 127 { length = (0..<8).reduce(0) { $0 << 8 | Int(bytes[at + $1]) }; at += 8 }
        guard bytes.count - at >= length else { break }
        if bytes[i] & 0x0f == 0xA { out.append(Array(bytes[at..<at + length])) }
        i = at + length
    }
    return out
}

final class Recorder {
    var messages: [[UInt8]] = []
    var closedCount = 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func webSocketFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let cut = bytes.first else { return 0 }
    let stream = Array(bytes.dropFirst())
    let recorder = Recorder()
    let channel = EmbeddedChannel()
    do {
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 20)), WebSocketFrameEncoder(),
            WebSocketProtocolErrorHandler(),
            WebSocketMessageHandler(role: .server, receive: { message in
                if recorder.closedCount > 0 { fail("a message was handed over after closed()") }
                recorder.messages.append(message)
            }, closed: { recorder.closedCount += 1 }),
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    } catch {
        fail("pipeline: \(error)")
    }
    let piece = max(1, Int(cut) * 3)
    var i = 0
    while i < stream.count, channel.isActive {
        _ = try? channel.writeInbound(ByteBuffer(bytes: stream[i..<min(i + piece, stream.count)]))
        i += piece
    }
    var written: [UInt8] = []
    while let out = try? channel.readOutbound(as: ByteBuffer.self) {
        written += out.readableBytesView
    }
    _ = try? channel.finish()

    let expected = rfcReading(stream)
    guard recorder.messages == expected.messages else {
        fail("messages \(recorder.messages.map(\.count)) handed over, RFC 6455 gives \(expected.messages.map(\.count)) "
            + "for \(stream.prefix(64).map { String(format: "%02x", $0) }.joined())")
    }
    guard pongs(in: written) == expected.pings else {
        fail("pongs \(pongs(in: written).map(\.count)) for pings \(expected.pings.map(\.count))")
    }
    guard recorder.closedCount == 1 else { fail("closed() reported \(recorder.closedCount) times") }
    return 0
}
