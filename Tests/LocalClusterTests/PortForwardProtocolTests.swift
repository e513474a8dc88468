import Foundation
import KubeCore
import TestSupport
import XCTest
@testable import LocalCluster
import SPDY

/// The port-forward upgrade and SPDY/3.1 protocol at the byte level, against the local
/// cluster's socket: what a client that is not kubectl (or a broken one) gets.
final class PortForwardProtocolTests: XCTestCase {
    var tc: TestCluster!

    override func setUp() async throws {
        tc = try await TestCluster()
        let pod: JSONValue = [
            "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "web", "namespace": "default"],
            "spec": ["containers": [["name": "web", "image": "nginx", "ports": [["containerPort": 8080]]]]],
        ]
        await tc.createPod(pod)
    }

    override func tearDown() async throws { await tc.stop() }

    /// Sends a SPDY upgrade request and returns the connection and the response head.
    func upgrade(pod: String = "web", token: String? = nil, protocols: String = "portforward.k8s.io") throws -> (LoopbackTCP, String) {
        let client = try LoopbackTCP(port: tc.cluster.port)
        let bearer = token ?? tc.cluster.adminToken
        try client.write("POST /api/v1/namespaces/default/pods/\(pod)/portforward HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + "Authorization: Bearer \(bearer)\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
            + "X-Stream-Protocol-Version: \(protocols)\r\nContent-Length: 0\r\n\r\n")
        return (client, try client.readHead())
    }

    func testSPDYHeaderDictionaryIsTheOneSPDY3Specifies() {
        // zlib names a preset dictionary by its Adler-32; SPDY/3's is 0xe3c6a7c2.
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in SPDYDictionary.bytes {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        XCTAssertEqual(SPDYDictionary.bytes.count, 1423)
        XCTAssertEqual(b << 16 | a, 0xe3c6_a7c2)
    }

    func testFramesSurviveEncodingAndDecodingInAnySplit() throws {
        let client = try SPDYFrameCodec()
        let server = try SPDYFrameCodec()
        let frames: [SPDYFrame] = [
            .synStream(streamID: 1, associatedStreamID: 0, priority: 3, fin: false, unidirectional: false,
                       headers: ["streamtype": "error", "port": "8080", "requestid": "0"]),
            .data(streamID: 1, fin: true, payload: []),
            .synStream(streamID: 3, associatedStreamID: 0, priority: 0, fin: false, unidirectional: false,
                       headers: ["streamtype": "data", "port": "8080", "requestid": "0"]),
            .data(streamID: 3, fin: false, payload: Array(repeating: 0xab, count: 70_000)),
            .ping(id: 1), .settings([SPDYSetting(flags: 0, id: 4, value: 100)]),
            .windowUpdate(streamID: 3, delta: 1024), .rstStream(streamID: 3, status: .cancel),
            .goAway(lastGoodStreamID: 3, status: 0),
        ]
        var bytes: [UInt8] = []
        for frame in frames { bytes += try client.encode(frame) }
        var decoded: [SPDYFrame] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + 7, bytes.count) // splits every header and payload
            decoded += try server.decode(Array(bytes[offset..<end]))
            offset = end
        }
        XCTAssertEqual(decoded, frames)
    }

    func testSPDYUpgradeEchoesDataAndAnswersPings() throws {
        let (client, head) = try upgrade()
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 101"), head)
        XCTAssertTrue(head.lowercased().contains("x-stream-protocol-version: portforward.k8s.io"), head)
        let codec = try SPDYFrameCodec()
        let headers: SPDYHeaders = ["streamtype": "error", "port": "8080", "requestid": "7"]
        var data = headers
        data.entries[0].values = ["data"]
        try client.write(try codec.encode(.synStream(streamID: 1, associatedStreamID: 0, priority: 0, fin: false, unidirectional: false, headers: headers))
            + codec.encode(.data(streamID: 1, fin: true, payload: []))
            + codec.encode(.synStream(streamID: 3, associatedStreamID: 0, priority: 0, fin: false, unidirectional: false, headers: data))
            + codec.encode(.ping(id: 5))
            + codec.encode(.data(streamID: 3, fin: true, payload: Array("ping-pong".utf8))))
        let frames = try client.readFrames(codec: codec) { frames in
            frames.contains(.data(streamID: 1, fin: true, payload: []))
        }
        XCTAssertTrue(frames.contains(.synReply(streamID: 1, fin: false, headers: SPDYHeaders())), "\(frames)")
        XCTAssertTrue(frames.contains(.synReply(streamID: 3, fin: false, headers: SPDYHeaders())), "\(frames)")
        XCTAssertTrue(frames.contains(.ping(id: 5)), "\(frames)")
        let echoed = frames.compactMap { frame -> [UInt8]? in
            if case let .data(3, _, payload) = frame { return payload }
            return nil
        }.flatMap { $0 }
        XCTAssertEqual(String(decoding: echoed, as: UTF8.self), "ping-pong")
        XCTAssertTrue(frames.contains(.data(streamID: 3, fin: true, payload: [])), "the echo service closes after the client: \(frames)")
    }

    func testStreamWithoutPortHeaderIsReset() throws {
        let (client, head) = try upgrade()
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 101"), head)
        let codec = try SPDYFrameCodec()
        try client.write(try codec.encode(.synStream(streamID: 1, associatedStreamID: 0, priority: 0, fin: false, unidirectional: false,
                                                     headers: ["streamtype": "data"])))
        let frames = try client.readFrames(codec: codec) { !$0.isEmpty }
        XCTAssertEqual(frames, [.rstStream(streamID: 1, status: .refusedStream)])
    }

    func testMalformedFrameEndsConnectionWithGoAwayProtocolError() throws {
        let (client, head) = try upgrade()
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 101"), head)
        // A SYN_STREAM whose header block is not zlib data.
        try client.write([0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0e, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef])
        let codec = try SPDYFrameCodec()
        let frames = try client.readFrames(codec: codec) { _ in false }
        XCTAssertEqual(frames, [.goAway(lastGoodStreamID: 0, status: SPDYGoAwayStatus.protocolError)])
        XCTAssertEqual(try client.readSome(), [], "the server closed the connection")
    }

    func testUpgradeForUnknownPodAnswersNotFoundStatus() throws {
        let (client, head) = try upgrade(pod: "missing")
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 404"), head)
        let body = String(decoding: try client.readSome(), as: UTF8.self)
        XCTAssertTrue(body.contains(#""reason":"NotFound""#) && body.contains(#"pods \"missing\" not found"#), body)
    }

    func testUpgradeWithBadTokenAnswersUnauthorizedStatus() throws {
        let (client, head) = try upgrade(token: "not-a-token")
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 401"), head)
        let body = String(decoding: try client.readSome(), as: UTF8.self)
        XCTAssertTrue(body.contains(#""reason":"Unauthorized""#), body)
    }

    func testUpgradeOfferingOnlyUnknownProtocolsIsRefused() throws {
        let (_, head) = try upgrade(protocols: "v4.channel.k8s.io")
        XCTAssertFalse(head.hasPrefix("HTTP/1.1 101"), head)
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 4"), head)
    }
}
