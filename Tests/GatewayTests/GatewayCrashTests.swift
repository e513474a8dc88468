import AgentGateAPI
import AsyncHTTPClient
import Foundation
import KubeCore
import NIOCore
import SessionStore
import TestSupport
import XCTest

/// The real `agentgate gateway` binary (built by `swift build`) killed with SIGKILL in the
/// middle of a watch: what it recorded before stays intact, and the cut exchange is marked
/// incomplete — never a forwarded request without a record.
class GatewayCrashTests: XCTestCase {
    /// The session-store backend; the `...OnPostgres` subclass runs every test here on PostgreSQL.
    class var backend: GatewayStoreBackend { .sqlite }

    var harness: GatewayHarness!
    var process: Process?

    override func setUp() async throws { harness = try await GatewayHarness(backend: Self.backend) }

    override func tearDown() async throws {
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        await harness?.stop()
    }

    /// Starts the gateway binary on the harness's store; returns the agent-facing base URL.
    private func startGatewayProcess() async throws -> String {
        let started = try await harness.startGatewayBinary(name: "gw-data")
        process = started.process
        return started.connectionURL
    }

    func testSIGKILLDuringAWatchKeepsEarlierExchangesAndMarksTheCutOneIncomplete() async throws {
        let base = try await startGatewayProcess()
        let token = try await harness.token()
        let listed = try await GatewayHarness.send(.GET, "\(base)/api/v1/namespaces/default/configmaps",
                                                   headers: [("Authorization", "Bearer \(token)")])
        XCTAssertEqual(listed.status, 200, listed.body)
        let version = try JSONValue(parsing: listed.body)[path: ["metadata", "resourceVersion"]]?.stringValue ?? ""

        var request = HTTPClientRequest(url: "\(base)/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=\(version)")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        XCTAssertEqual(response.status.code, 200)
        var events = response.body.makeAsyncIterator()
        try await harness.cluster.applyObject(["apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": ["name": "before-the-crash", "namespace": "default"]])
        var seen = ""
        while !seen.contains("before-the-crash"), let chunk = try await events.next() {
            seen += String(buffer: chunk)
        }
        XCTAssertTrue(seen.contains("ADDED"), seen)

        let process = try XCTUnwrap(self.process)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .uncaughtSignal)

        // A restarted gateway (here: the store it opens) recovers the dead process's exchanges.
        let reopened = try await SessionStores.open(url: harness.storeURL)
        let recovered = try await reopened.recoverInterrupted()
        XCTAssertEqual(recovered, 1, "exactly the cut watch was in progress")
        var exchanges: [ExchangeRecord] = []
        for session in try await reopened.listSessions(SessionFilter()) {
            exchanges += try await reopened.exchanges(sessionID: session.id)
        }
        let list = try XCTUnwrap(exchanges.first { $0.verb == "list" }, "\(exchanges)")
        XCTAssertEqual(list.state, .complete)
        XCTAssertEqual(list.statusCode, 200)
        XCTAssertNotNil(list.responseBody, "the earlier exchange is intact, body included")
        let watch = try XCTUnwrap(exchanges.first { $0.verb == "watch" }, "\(exchanges)")
        XCTAssertEqual(watch.state, .incomplete, "the watch cut by SIGKILL is marked incomplete")
        let chunks = try await reopened.streamChunks(exchangeID: watch.id)
        XCTAssertTrue(chunks.contains { String(decoding: $0.data, as: UTF8.self).contains("before-the-crash") },
                      "the event that passed before the kill was recorded")
        try await reopened.close()
    }
}

/// GatewayCrashTests with the session store on PostgreSQL.
final class GatewayCrashOnPostgresTests: GatewayCrashTests {
    override class var backend: GatewayStoreBackend { .postgres }

    override func testSIGKILLDuringAWatchKeepsEarlierExchangesAndMarksTheCutOneIncomplete() async throws {
        try await super.testSIGKILLDuringAWatchKeepsEarlierExchangesAndMarksTheCutOneIncomplete()
    }
}
