import Foundation
@testable import Gateway
import HTTPServing
import NIOHTTP1
import NIOSSL
import SessionStore
import TestSupport
import XCTest

/// An API server whose exec answers on channels the kubelet never writes from its side:
/// stdin (0), resize (4) and an unknown channel (9), each carrying text that no masking rule
/// would catch. Its pod read answers a running pod, as kubectl needs before it execs.
final class MisbehavingExecUpstream: WebSocketService, @unchecked Sendable {
    let server = HTTPServer()
    static let leaks = ["LEAKED-ON-STDIN", "LEAKED-ON-RESIZE", "LEAKED-ON-CHANNEL-9"]

    func start() async throws -> String {
        let port = try await server.start(host: "127.0.0.1", port: 0, tls: nil, webSocket: self) { request in
            // Discovery, as kubectl reads it before anything else, then the pod.
            let path = request.uri.split(separator: "?").first.map(String.init) ?? request.uri
            switch path {
            case "/api":
                return .json(200, Array(#"{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[]}"#.utf8))
            case "/apis":
                return .json(200, Array(#"{"kind":"APIGroupList","apiVersion":"v1","groups":[]}"#.utf8))
            case "/api/v1":
                return .json(200, Array(#"""
                    {"kind":"APIResourceList","groupVersion":"v1","resources":[
                     {"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","verbs":["get","list"],"shortNames":["po"]},
                     {"name":"pods/exec","singularName":"","namespaced":true,"kind":"PodExecOptions","verbs":["create","get"]}]}
                    """#.utf8))
            default:
                return .json(200, Array(#"""
                    {"kind":"Pod","apiVersion":"v1","metadata":{"name":"shell","namespace":"default"},
                     "spec":{"containers":[{"name":"main","image":"busybox"}]},
                     "status":{"phase":"Running","containerStatuses":[{"name":"main","ready":true,"restartCount":0,"image":"busybox","imageID":"","state":{"running":{}}}]}}
                    """#.utf8))
            }
        }
        return "http://127.0.0.1:\(port)"
    }

    func stop() async { await server.shutdown() }

    func decide(_ request: HTTPRequest) async -> UpgradeDecision<any WebSocketSession> {
        let offered = request.header("Sec-WebSocket-Protocol") ?? ""
        let chosen = offered.contains("v5.channel.k8s.io") ? "v5.channel.k8s.io" : "v4.channel.k8s.io"
        return .accept(headers: [("Sec-WebSocket-Protocol", chosen)], session: Session())
    }

    final class Session: WebSocketSession, @unchecked Sendable {
        func start(_ connection: WebSocketConnection) {
            connection.send([0] + Array(MisbehavingExecUpstream.leaks[0].utf8))
            connection.send([4] + Array(MisbehavingExecUpstream.leaks[1].utf8))
            connection.send([9] + Array(MisbehavingExecUpstream.leaks[2].utf8))
            connection.send([1] + Array("visible output\n".utf8))
            connection.send([3] + Array(#"{"metadata":{},"status":"Success"}"#.utf8))
            connection.close()
        }

        func receive(_ message: [UInt8]) {}
        func closed() {}
    }
}

final class GatewayStreamUpstreamTests: XCTestCase {
    var upstream: MisbehavingExecUpstream!
    var harness: GatewayHarness!
    var token = ""

    override func setUp() async throws {
        upstream = MisbehavingExecUpstream()
        harness = try await GatewayHarness(upstreamOverride: try await upstream.start())
        token = try await harness.token()
    }

    override func tearDown() async throws {
        await harness?.stop()
        await upstream?.stop()
    }

    /// Fails the test when `text` holds anything the upstream sent off the output channels.
    func assertNoLeak(_ text: String, _ place: String, file: StaticString = #filePath, line: UInt = #line) {
        for leak in MisbehavingExecUpstream.leaks where text.contains(leak) {
            XCTFail("\(leak) reached \(place): \(text)", file: file, line: line)
        }
    }

    /// The agent's raw WebSocket (not kubectl, which ignores those channels) gets stdout and
    /// the exit status, and nothing of what upstream sent on stdin, resize or channel 9.
    func testUpstreamDataOnChannelsOtherThanOutputNeverReachesARawAgent() async throws {
        let (events, inbound) = AsyncStream<StreamEvent>.makeStream()
        let agent = try UpstreamConnector(server: "http://127.0.0.1:\(harness.port)", tls: .makeClientConfiguration())
        let outcome = try await agent.connect(
            method: "GET", target: "/c/default/conn/api/v1/namespaces/default/pods/shell/exec?command=true&stdout=true",
            headers: HTTPHeaders([("Authorization", "Bearer \(token)"), ("Sec-WebSocket-Protocol", "v5.channel.k8s.io")]),
            transport: .webSocket, inbound: inbound)
        guard case .upgraded(let stream, _) = outcome else { return XCTFail("the exec upgrade was refused: \(outcome)") }
        var received: [[UInt8]] = []
        for await event in events {
            if case .fromUpstream(let message) = event { received.append(message) }
            if case .upstreamClosed = event { break }
        }
        stream.close()
        let withData = received.filter { $0.count > 1 }
        XCTAssertEqual(withData.map { $0[0] }, [1, 3], "only stdout and the status carry data: \(withData)")
        XCTAssertEqual(withData.first.map { Array($0.dropFirst()) }, Array("visible output\n".utf8))
        for message in received { assertNoLeak(String(decoding: message, as: UTF8.self), "the agent") }
    }

    /// kubectl through the same upstream still execs, prints stdout and exits 0, and the
    /// record holds stdout and nothing upstream sent elsewhere.
    func testKubectlExecStillWorksAndTheRecordHoldsNoDroppedData() async throws {
        let result = try harness.kubectl(["exec", "shell", "--", "true"], token: token)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "visible output\n", "stdout passes; nothing else is printed")
        assertNoLeak(result.stdout + result.stderr, "kubectl")
        let exchanges = try await harness.exchanges()
        let exec = try XCTUnwrap(exchanges.first { $0.subresource == "exec" })
        let chunks = try await harness.store.streamChunks(exchangeID: exec.id)
        XCTAssertEqual(chunks.filter { $0.channel == "stdout" }.flatMap(\.data), Array("visible output\n".utf8))
        for chunk in chunks { assertNoLeak(String(decoding: chunk.data, as: UTF8.self), "the record (\(chunk.channel))") }
    }
}
