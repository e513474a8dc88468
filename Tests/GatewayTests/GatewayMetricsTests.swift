import Foundation
import Gateway
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
}
