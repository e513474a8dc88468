import Foundation
import Gateway
import SessionStore
import TestSupport
import XCTest

/// The gateway's Prometheus metrics after real traffic, parsed as a scraper would.
final class GatewayMetricsTests: XCTestCase {
    func testRequestsByConnectionVerbAndCodeLatenciesAndRecordedBytesAreExposed() async throws {
        let harness = try await GatewayHarness()
        do {
            let token = try await harness.token()
            for _ in 0..<3 {
                let list = try await GatewayHarness.send(.GET, "\(harness.connectionURL)/api/v1/namespaces/default/configmaps",
                                                         headers: [("Authorization", "Bearer \(token)")])
                XCTAssertEqual(list.status, 200)
            }
            let refused = try await GatewayHarness.send(.GET, "\(harness.connectionURL)/api/v1/namespaces/default/configmaps",
                                                        headers: [("Authorization", "Bearer not-a-jwt")])
            XCTAssertEqual(refused.status, 401)

            let metrics = try PrometheusText.parse(harness.gateway.metrics.render())
            XCTAssertEqual(metrics.types["agentgate_gateway_requests_total"], "counter")
            XCTAssertEqual(metrics.value("agentgate_gateway_requests_total", ["connection": "default/conn", "verb": "list", "code": "200"]), 3)
            XCTAssertEqual(metrics.value("agentgate_gateway_requests_total", ["connection": "default/conn", "code": "401"]), 1)
            XCTAssertEqual(metrics.value("agentgate_gateway_forwarded_requests_total"), 3, "the refused request was never forwarded")
            XCTAssertEqual(metrics.types["agentgate_gateway_upstream_latency_seconds"], "histogram")
            XCTAssertEqual(metrics.value("agentgate_gateway_upstream_latency_seconds_count"), 3)
            XCTAssertEqual(metrics.value("agentgate_gateway_added_latency_seconds_count"), 3)
            XCTAssertGreaterThan(metrics.value("agentgate_gateway_recorded_bytes_total") ?? 0, 0)
            XCTAssertEqual(metrics.value("agentgate_gateway_recorder_errors_total"), 0)
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    /// At every scrape the metrics read how far SQLite's recording journal is behind, and how
    /// many new requests it held because it was too far behind.
    func testTheRecordingBacklogAndTheRequestsItHeldAreExposed() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentgate-metrics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // Ingested only when a request is held: no timer, and 256 KiB wait at most.
        let store = try await SessionStores.open(
            url: "sqlite:" + directory.appendingPathComponent("sessions.db").path,
            options: SessionStoreOptions(journalIngestDelay: .seconds(3600), journalBacklogBytes: 256 * 1024))
        let metrics = GatewayMetrics()
        metrics.observeRecorder { store.recorderBacklog() }
        let session = try await store.resolveSession(
            SessionKey(connection: ConnectionRef(namespace: "default", name: "conn"), subject: "agent"),
            identity: AgentIdentityInfo(), at: Date())
        func begin() async throws -> ExchangeRecord {
            try await store.beginExchange(ExchangeStart(
                sessionID: session.id, time: Date(), verb: "get", resource: "pods", namespace: "default", name: "web",
                httpMethod: "GET", path: "/api/v1/namespaces/default/pods/web/log"))
        }
        let exchange = try await begin()
        for _ in 0..<5 {
            try await store.appendStreamChunk(exchange.id, at: Date(), channel: "stdout", data: [UInt8](repeating: 0x61, count: 64 * 1024))
        }
        var scraped = try PrometheusText.parse(metrics.render())
        XCTAssertEqual(scraped.types["agentgate_gateway_recorder_backlog_bytes"], "gauge")
        XCTAssertGreaterThanOrEqual(scraped.value("agentgate_gateway_recorder_backlog_bytes") ?? 0, 5 * 64 * 1024)
        XCTAssertEqual(scraped.value("agentgate_gateway_recorder_held_requests_total"), 0)

        _ = try await begin()   // held until the backlog is ingested
        scraped = try PrometheusText.parse(metrics.render())
        XCTAssertLessThan(scraped.value("agentgate_gateway_recorder_backlog_bytes") ?? .infinity, 64 * 1024,
                          "the backlog was ingested before the held request went on")
        XCTAssertEqual(scraped.value("agentgate_gateway_recorder_held_requests_total"), 1)
        XCTAssertEqual(scraped.value("agentgate_gateway_recorder_held_requests"), 0, "nothing waits any more")
        try await store.close()
    }
}
