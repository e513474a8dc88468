import Foundation
import KubeCore
import SPDY
import TestSupport
import XCTest
@testable import LocalCluster

/// `pods/exec` over `Upgrade: SPDY/3.1` at the frame level, against the local cluster's
/// socket: protocol negotiation, the wait for every expected stream, and what the error
/// stream carries in v4 and in v2.
final class SPDYExecProtocolTests: XCTestCase {
    var tc: TestCluster!

    override func setUp() async throws {
        tc = try await TestCluster()
        let pod: JSONValue = [
            "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "shell", "namespace": "default"],
            "spec": ["containers": [["name": "main", "image": "busybox"]]],
        ]
        await tc.createPod(pod)
    }

    override func tearDown() async throws { await tc.stop() }

    /// Sends the exec upgrade for `sh -c <script>` with stdout and stderr; returns the connection and response head.
    func upgrade(_ script: String, protocols: String) throws -> (LoopbackTCP, String) {
        let client = try LoopbackTCP(port: tc.cluster.port)
        let command = script.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        try client.write("POST /api/v1/namespaces/default/pods/shell/exec?command=sh&command=-c&command=\(command)&stdout=true&stderr=true HTTP/1.1\r\n"
            + "Host: 127.0.0.1\r\nAuthorization: Bearer \(tc.cluster.adminToken)\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
            + "X-Stream-Protocol-Version: \(protocols)\r\nContent-Length: 0\r\n\r\n")
        return (client, try client.readHead())
    }

    func open(_ streamID: UInt32, _ type: String, codec: SPDYFrameCodec) throws -> [UInt8] {
        try codec.encode(.synStream(streamID: streamID, associatedStreamID: 0, priority: 0, fin: false, unidirectional: false,
                                    headers: ["streamtype": type]))
    }

    func payload(_ frames: [SPDYFrame], on stream: UInt32) -> String {
        String(decoding: frames.flatMap { frame -> [UInt8] in
            if case let .data(id, _, payload) = frame, id == stream { return payload }
            return []
        }, as: UTF8.self)
    }

    func testV4CommandRunsOnlyOnceEveryExpectedStreamIsOpenAndEndsWithItsStatus() throws {
        let (client, head) = try upgrade("echo out; cat /nope; exit 3", protocols: "v4.channel.k8s.io, v3.channel.k8s.io, v2.channel.k8s.io, channel.k8s.io")
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 101"), head)
        XCTAssertTrue(head.lowercased().contains("x-stream-protocol-version: v4.channel.k8s.io"), "the first offered protocol: \(head)")
        let codec = try SPDYFrameCodec()
        try client.write(try open(1, "error", codec: codec) + open(3, "stdout", codec: codec))
        let early = try client.readFrames(codec: codec) { $0.count >= 2 }
        XCTAssertEqual(early, [.synReply(streamID: 1, fin: false, headers: SPDYHeaders()), .synReply(streamID: 3, fin: false, headers: SPDYHeaders())],
                       "no output before the stderr stream the query asked for exists")

        try client.write(try open(5, "stderr", codec: codec))
        let frames = try client.readFrames(codec: codec) { $0.contains { if case .data(1, true, _) = $0 { true } else { false } } }
        XCTAssertEqual(payload(frames, on: 3), "out\n")
        XCTAssertEqual(payload(frames, on: 5), "cat: can't open '/nope': No such file or directory\n")
        XCTAssertTrue(frames.contains(.data(streamID: 3, fin: true, payload: [])), "stdout ends before the status: \(frames)")
        let status = try JSONValue(parsing: Array(payload(frames, on: 1).utf8))
        XCTAssertEqual(status["status"]?.stringValue, "Failure")
        XCTAssertEqual(status["reason"]?.stringValue, "NonZeroExitCode")
        XCTAssertEqual(status[path: ["details", "causes"]]?.arrayValue?.first?["reason"]?.stringValue, "ExitCode")
        XCTAssertEqual(status[path: ["details", "causes"]]?.arrayValue?.first?["message"]?.stringValue, "3")
    }

    func testV2ErrorStreamCarriesTheMessageOnFailureAndNothingOnSuccess() throws {
        let (failing, head) = try upgrade("exit 2", protocols: "v2.channel.k8s.io")
        XCTAssertTrue(head.lowercased().contains("x-stream-protocol-version: v2.channel.k8s.io"), head)
        var codec = try SPDYFrameCodec()
        try failing.write(try open(1, "error", codec: codec) + open(3, "stdout", codec: codec) + open(5, "stderr", codec: codec))
        var frames = try failing.readFrames(codec: codec) { $0.contains { if case .data(1, true, _) = $0 { true } else { false } } }
        XCTAssertTrue(payload(frames, on: 1).hasPrefix("command terminated with non-zero exit code"), payload(frames, on: 1))
        XCTAssertTrue(payload(frames, on: 1).hasSuffix("exit code 2"), payload(frames, on: 1))

        let (succeeding, _) = try upgrade("echo fine", protocols: "v2.channel.k8s.io")
        codec = try SPDYFrameCodec()
        try succeeding.write(try open(1, "error", codec: codec) + open(3, "stdout", codec: codec) + open(5, "stderr", codec: codec))
        frames = try succeeding.readFrames(codec: codec) { $0.contains { if case .data(1, true, _) = $0 { true } else { false } } }
        XCTAssertEqual(payload(frames, on: 3), "fine\n")
        XCTAssertEqual(payload(frames, on: 1), "", "v2 reports success by closing the error stream empty")
    }
}
