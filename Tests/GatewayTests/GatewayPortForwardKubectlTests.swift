import Foundation
import Gateway
import KubeCore
import SessionStore
import TestSupport
import XCTest

/// `kubectl port-forward` (v1.32) through the gateway, both ways kubectl connects: SPDY
/// tunnelled in a WebSocket (its default) and the `Upgrade: SPDY/3.1` fallback. Bytes sent
/// to the local port reach the pod's echo service and come back; the traffic is recorded per
/// pod port, decoded from the SPDY frames.
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

    func startPortForward(port: Int, podPort: Int = 8080, environment: [String: String] = [:]) async throws -> RunningProcess {
        let kubeconfig = try harness.kubeconfig(token: try await harness.token())
        let (process, pipe) = try ProcessRunner.start("kubectl", ["--kubeconfig", kubeconfig, "-v=6", "port-forward",
                                                                  "--address", "127.0.0.1", "pod/web", "\(port):\(podPort)"],
                                                      environment: environment)
        forwards.append(process)
        let forward = RunningProcess(process: process, pipe: pipe)
        XCTAssertTrue(forward.wait(for: "Forwarding from 127.0.0.1:\(port) -> \(podPort)"), forward.output)
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
        let greeting = Array("hello through the gateway tunnel\n".utf8)
        let hello = try roundTrip(port: port, payload: greeting)
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
        // The SPDY frames are decoded for the record: what went to and came from pod port 8080.
        let sent = chunks.filter { $0.channel == "forward-in:8080" }.flatMap(\.data)
        let received = chunks.filter { $0.channel == "forward-out:8080" }.flatMap(\.data)
        XCTAssertTrue(sent == greeting + big, "the agent's traffic is recorded as sent: \(sent.count) of \(greeting.count + big.count) bytes")
        XCTAssertTrue(received == greeting + big, "the pod's traffic is recorded as received: \(received.count) bytes")
        XCTAssertEqual(Set(chunks.map(\.channel)), ["forward-in:8080", "forward-out:8080"], "no raw frames are recorded")

        forward.process.terminate()
        forward.process.waitUntilExit()
        let store = harness.store
        try? await eventually(5, "the port-forward exchange ends") { try await store.exchange(id: exchange.id)?.state != .inProgress }
        let ended = try await store.exchange(id: exchange.id)
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

    func testPortForwardErrorFromThePodIsRecordedForItsPort() async throws {
        let port = try LoopbackTCP.freePort()
        let forward = try await startPortForward(port: port, podPort: 9090, environment: ["KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"])
        _ = try? roundTrip(port: port, payload: Array("anyone there?\n".utf8))
        let harness = self.harness!
        let recordedErrors = { @Sendable () async throws -> String in
            let exchange = try await harness.exchanges().last { $0.subresource == "portforward" }
            let chunks = try await harness.store.streamChunks(exchangeID: try XCTUnwrap(exchange).id)
            return String(decoding: chunks.filter { $0.channel == "forward-error:9090" }.flatMap(\.data), as: UTF8.self)
        }
        try? await eventually(5, "an error is recorded for port 9090") { try await !recordedErrors().isEmpty }
        let errors = try await recordedErrors()
        XCTAssertTrue(errors.contains("connection refused"), "the pod side's error is recorded for port 9090: \(errors.debugDescription) \(forward.output)")
    }
}
