import Foundation
import Gateway
import KubeCore
import SessionStore
import TestSupport
import XCTest

/// `kubectl port-forward` (v1.32) through the gateway, both ways kubectl connects: SPDY
/// tunnelled in a WebSocket (its default) and the `Upgrade: SPDY/3.1` fallback. Bytes sent
/// to the local port reach the pod's echo service and come back; the stream is recorded.
final class GatewayPortForwardKubectlTests: XCTestCase {
    var harness: GatewayHarness!
    var forwards: [Process] = []

    override func setUp() async throws {
        harness = try await GatewayHarness()
        try await harness.cluster.applyObject([
            "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "web", "namespace": "default"],
            "spec": ["containers": [["name": "web", "image": "nginx", "ports": [["containerPort": 8080]]]]],
        ])
    }

    override func tearDown() async throws {
        for process in forwards where process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        await harness?.stop()
    }

    func startPortForward(port: Int, environment: [String: String] = [:]) async throws -> RunningProcess {
        let kubeconfig = try harness.kubeconfig(token: try await harness.token())
        let (process, pipe) = try ProcessRunner.start("kubectl", ["--kubeconfig", kubeconfig, "-v=6", "port-forward",
                                                                  "--address", "127.0.0.1", "pod/web", "\(port):8080"],
                                                      environment: environment)
        forwards.append(process)
        let forward = RunningProcess(process: process, pipe: pipe)
        XCTAssertTrue(forward.wait(for: "Forwarding from 127.0.0.1:\(port) -> 8080"), forward.output)
        return forward
    }

    /// Sends `payload` while reading on another thread, half-closes, returns all that came back.
    func roundTrip(port: Int, payload: [UInt8]) throws -> [UInt8] {
        let client = try LoopbackTCP(port: port)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            try? client.write(payload)
            client.finishWriting()
            done.signal()
        }
        let echoed = try client.readToEnd()
        done.wait()
        return echoed
    }

    func assertTrafficFlowsAndIsRecorded(port: Int, forward: RunningProcess) async throws {
        let hello = try roundTrip(port: port, payload: Array("hello through the gateway tunnel\n".utf8))
        XCTAssertEqual(String(decoding: hello, as: UTF8.self), "hello through the gateway tunnel\n", forward.output)
        // Far larger than SPDY/3's initial 64 KiB window and than the gateway's back-pressure
        // window (1 MiB): flow control works end to end.
        let big = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let echoed = try roundTrip(port: port, payload: big)
        XCTAssertTrue(echoed == big, "echoed \(echoed.count) of \(big.count) bytes, or different ones")
        XCTAssertTrue(forward.process.isRunning, forward.output)

        let exchanges = try await harness.exchanges()
        let exchange = try XCTUnwrap(exchanges.last { $0.subresource == "portforward" })
        XCTAssertEqual(exchange.state, .inProgress, "the exchange lasts as long as the tunnel")
        let chunks = try await harness.store.streamChunks(exchangeID: exchange.id)
        let sent = chunks.filter { $0.channel == "forward-in" }.reduce(0) { $0 + $1.data.count }
        let received = chunks.filter { $0.channel == "forward-out" }.reduce(0) { $0 + $1.data.count }
        XCTAssertGreaterThan(sent, big.count, "the agent's bytes (in SPDY frames) are recorded")
        XCTAssertGreaterThan(received, big.count, "the pod's bytes (in SPDY frames) are recorded")

        forward.process.terminate()
        forward.process.waitUntilExit()
        var ended: ExchangeRecord?
        for _ in 0..<100 {
            ended = try await harness.store.exchange(id: exchange.id)
            if ended?.state != .inProgress { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTAssertEqual(ended?.statusCode, 101)
        XCTAssertEqual(ended?.state, .complete, "the agent ending the tunnel completes the exchange")
    }

    func testPortForwardOverWebSocketTunnelCarriesTrafficThroughTheGateway() async throws {
        let port = try LoopbackTCP.freePort()
        let forward = try await startPortForward(port: port)
        try await assertTrafficFlowsAndIsRecorded(port: port, forward: forward)
        XCTAssertTrue(forward.output.contains("GET https://127.0.0.1:\(harness.tlsPort)/c/default/conn/api/v1/namespaces/default/pods/web/portforward 101 Switching Protocols"),
                      "kubectl used the WebSocket tunnel: \(forward.output)")
        XCTAssertFalse(forward.output.contains("POST https://"), "no SPDY fallback was needed: \(forward.output)")
    }

    func testPortForwardOverSPDYUpgradeCarriesTrafficThroughTheGateway() async throws {
        let port = try LoopbackTCP.freePort()
        let forward = try await startPortForward(port: port, environment: ["KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"])
        try await assertTrafficFlowsAndIsRecorded(port: port, forward: forward)
        XCTAssertTrue(forward.output.contains("POST https://127.0.0.1:\(harness.tlsPort)/c/default/conn/api/v1/namespaces/default/pods/web/portforward 101 Switching Protocols"),
                      "kubectl used the SPDY/3.1 upgrade: \(forward.output)")
    }
}
