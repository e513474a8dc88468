import Foundation
import SessionStore
import TestSupport
import XCTest

/// `agentgate gateway` on SIGTERM, as Kubernetes stops a pod: the probe listener reports
/// "shutting down", the exchange in flight finishes and is recorded complete, and the
/// process exits 0.
final class GatewayShutdownDrainTests: XCTestCase {
    var harness: GatewayHarness!

    override func setUp() async throws {
        harness = try await GatewayHarness()
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    func testSIGTERMLetsTheExchangeInFlightFinishAndBeRecordedThenExitsZero() async throws {
        let metricsPort = try LoopbackTCP.freePort()
        let gateway = try await harness.startGatewayBinary(name: "gw", extraArguments: ["--metrics-address", "127.0.0.1:\(metricsPort)"])
        let metrics = "http://127.0.0.1:\(metricsPort)"
        let ready = try await GatewayHarness.send(.GET, "\(metrics)/readyz")
        XCTAssertEqual(ready.status, 200, ready.body)
        let agent = try await harness.token()
        // A watch the API server ends after 3 s: still in flight when SIGTERM comes.
        let watch = Task {
            try await GatewayHarness.send(.GET, "\(gateway.connectionURL)/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=3",
                                          headers: [("Authorization", "Bearer \(agent)")])
        }
        let store = try await SessionStores.open(url: harness.storeURL)
        try await eventually(10, "the watch's exchange has begun") {
            guard let session = try? await store.listSessions(SessionFilter()).first else { return false }
            return (try? await store.exchanges(sessionID: session.id).count) == 1
        }
        try await store.close()

        kill(gateway.process.processIdentifier, SIGTERM)
        try await eventually(5, "/readyz reports the shutdown while the watch drains: \(gateway.output.text)") {
            let answer = try? await GatewayHarness.send(.GET, "\(metrics)/readyz")
            return answer?.status == 503 && answer?.body.contains("shutting down") == true
        }
        XCTAssertTrue(gateway.process.isRunning, "the gateway waits for the exchange in flight")
        let watched = try await watch.value
        XCTAssertEqual(watched.status, 200, "the watch in flight is answered in full: \(watched.body)")
        try await eventually(10, "the gateway exits once drained: \(gateway.output.text)") { !gateway.process.isRunning }
        XCTAssertEqual(gateway.process.terminationStatus, 0, gateway.output.text)

        let reopened = try await SessionStores.open(url: harness.storeURL)
        let sessions = try await reopened.listSessions(SessionFilter())
        let exchanges = try await sessions.isEmpty ? [] : reopened.exchanges(sessionID: sessions[0].id)
        try await reopened.close()
        XCTAssertEqual(exchanges.count, 1)
        XCTAssertEqual(exchanges.first?.state, .complete, "recorded before exit, not left for recovery to mark incomplete")
        XCTAssertEqual(exchanges.first?.statusCode, 200)
        XCTAssertEqual(exchanges.first?.verb, "watch")
    }
}
