import HTTPServing
import NIOCore
import NIOEmbedded
import NIOWebSocket
import XCTest

/// The WebSocket frame handling both legs of an exec/attach stream share: RFC 6455's data
/// frame sequencing, a bound on a reassembled message, pongs masked by a client, and the
/// end reported once. Found by the `websocket` fuzz target (Fuzz/findings/websocket).
final class WebSocketMessageHandlerTests: XCTestCase {
    final class Seen: @unchecked Sendable {
        var messages: [[UInt8]] = []
        var closed = 0
    }

    private func channel(role: WebSocketRole = .server, maxMessageBytes: Int = 1 << 24) throws -> (EmbeddedChannel, Seen) {
        let seen = Seen()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(WebSocketMessageHandler(
            role: role, maxMessageBytes: maxMessageBytes, receive: { seen.messages.append($0) }, closed: { seen.closed += 1 }))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8443)).wait()
        return (channel, seen)
    }

    private func frame(_ opcode: WebSocketOpcode, _ text: String, fin: Bool = true) -> WebSocketFrame {
        WebSocketFrame(fin: fin, opcode: opcode, data: ByteBuffer(string: text))
    }

    func testAFragmentedMessageIsHandedOverWholeOnce() throws {
        let (channel, seen) = try channel()
        try channel.writeInbound(frame(.binary, "ab", fin: false))
        try channel.writeInbound(frame(.continuation, "cd", fin: false))
        try channel.writeInbound(frame(.continuation, "ef"))
        XCTAssertEqual(seen.messages, [Array("abcdef".utf8)])
        XCTAssertTrue(channel.isActive)
    }

    func testANewDataFrameInsideAnOpenMessageFailsTheConnectionInsteadOfMergingTheTwo() throws {
        let (channel, seen) = try channel()
        try channel.writeInbound(frame(.text, "abc", fin: false))
        try channel.writeInbound(frame(.binary, "def"))
        XCTAssertEqual(seen.messages, [], "two messages are never handed over as one")
        XCTAssertEqual(seen.closed, 1)
        XCTAssertFalse(channel.isActive)
        try channel.writeInbound(frame(.binary, "after"))
        XCTAssertEqual(seen.messages, [], "nothing after the end")
        XCTAssertEqual(seen.closed, 1, "the end is reported once")
    }

    func testAContinuationWithNoMessageOpenFailsTheConnection() throws {
        let (channel, seen) = try channel()
        try channel.writeInbound(frame(.continuation, "stray"))
        XCTAssertEqual(seen.messages, [])
        XCTAssertEqual(seen.closed, 1)
        XCTAssertFalse(channel.isActive)
    }

    func testAMessageThatNeverEndsIsCutAtTheBoundInsteadOfGrowingMemory() throws {
        let (channel, seen) = try channel(maxMessageBytes: 1024)
        let chunk = String(repeating: "x", count: 300)
        try channel.writeInbound(frame(.binary, chunk, fin: false))
        for _ in 0..<3 { try channel.writeInbound(frame(.continuation, chunk, fin: false)) }
        XCTAssertEqual(seen.messages, [])
        XCTAssertEqual(seen.closed, 1, "the fourth fragment passes 1024 bytes")
        XCTAssertFalse(channel.isActive)
    }

    func testAClientAnswersAPingWithAMaskedPongAndAServerWithAnUnmaskedOne() throws {
        for role in [WebSocketRole.client, .server] {
            let (channel, _) = try channel(role: role)
            try channel.writeInbound(frame(.ping, "hi"))
            let pong = try XCTUnwrap(try channel.readOutbound(as: WebSocketFrame.self))
            XCTAssertEqual(pong.opcode, .pong)
            XCTAssertEqual(pong.maskKey != nil, role == .client, "\(role)")
            // The frame's data is the payload; the encoder applies the mask key on the wire.
            XCTAssertEqual(String(buffer: pong.data), "hi")
        }
    }
}
