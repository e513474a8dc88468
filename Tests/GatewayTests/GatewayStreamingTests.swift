import AsyncHTTPClient
import Foundation
import Gateway
import HTTPServing
import KubeCore
import NIOCore
import SessionStore
import TestSupport
import XCTest

/// Streams that pass through as they arrive (flushed per chunk) and are recorded as they pass:
/// chunked text answers and `kubectl logs -f`.
class GatewayStreamingTests: XCTestCase {
    /// The session-store backend; the `...OnPostgres` subclass runs every test here on PostgreSQL.
    class var backend: GatewayStoreBackend { .sqlite }

    func testChunkedTextAnswerPassesThroughChunkByChunkMaskedAndRecorded() async throws {
        // An upstream that sends four text chunks 400 ms apart, one carrying the injected token.
        let upstream = HTTPServer()
        let token = LockedText()
        let port = try await upstream.start(host: "127.0.0.1", port: 0, tls: nil) { _ in
            let leaked = token.text
            let (stream, continuation) = AsyncStream<[UInt8]>.makeStream()
            Task {
                for index in 0..<4 {
                    continuation.yield(Array("chunk \(index)\(index == 2 ? " token=\(leaked)" : "")\n".utf8))
                    try? await Task.sleep(for: .milliseconds(400))
                }
                continuation.finish()
            }
            return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; charset=utf-8")], body: .stream(stream))
        }
        let harness = try await GatewayHarness(backend: Self.backend, upstreamOverride: "http://127.0.0.1:\(port)")
        token.append(harness.saToken)
        do {
            var request = HTTPClientRequest(url: "\(harness.connectionURL)/api/v1/namespaces/default/services/web:80/proxy/stream")
            request.headers.add(name: "Authorization", value: "Bearer \(try await harness.token())")
            let started = ContinuousClock.now
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            XCTAssertEqual(response.status.code, 200)
            var arrivals: [(Duration, String)] = []
            for try await chunk in response.body {
                arrivals.append((ContinuousClock.now - started, String(buffer: chunk)))
            }
            let text = arrivals.map(\.1).joined()
            XCTAssertTrue(text.contains("chunk 0") && text.contains("chunk 3"), text)
            let first = try XCTUnwrap(arrivals.first { $0.1.contains("chunk 0") })
            XCTAssertLessThan(first.0, .milliseconds(900), "the first chunk arrived before the upstream finished (~1.6 s)")
            XCTAssertGreaterThan(arrivals.count, 1, "delivered in several chunks, not buffered whole")
            XCTAssertFalse(text.contains(harness.saToken), "the injected token is masked in the stream")

            let recordedExchanges = try await harness.exchanges()
            let exchange = try XCTUnwrap(recordedExchanges.first { $0.subresource == "proxy" })
            XCTAssertEqual(exchange.state, .complete)
            XCTAssertEqual(exchange.statusCode, 200)
            let chunks = try await harness.store.streamChunks(exchangeID: exchange.id)
            XCTAssertGreaterThan(chunks.count, 1)
            XCTAssertEqual(Set(chunks.map(\.channel)), ["body"])
            let recorded = String(decoding: chunks.flatMap(\.data), as: UTF8.self)
            XCTAssertEqual(recorded, text, "recorded exactly what the agent saw")
        } catch {
            await harness.stop()
            await upstream.shutdown()
            throw error
        }
        await harness.stop()
        await upstream.shutdown()
    }

    func testKubectlLogsFollowStreamsAndRecordsEachChunk() async throws {
        let harness = try await GatewayHarness(backend: Self.backend)
        do {
            try await harness.cluster.applyObject(["apiVersion": "v1", "kind": "Pod", "metadata": ["name": "p", "namespace": "default"],
                                                   "spec": ["containers": [["name": "c", "image": "busybox"]]]])
            let token = try await harness.token()
            let logs = try harness.kubectl(["logs", "-f", "p", "-c", "c"], token: token)
            XCTAssertEqual(logs.status, 0, logs.output)
            XCTAssertTrue(logs.stdout.contains("log line 1 from p"), logs.output)
            let recordedExchanges = try await harness.exchanges()
            let exchange = try XCTUnwrap(recordedExchanges.first { $0.subresource == "log" })
            XCTAssertTrue(exchange.query.contains("follow=true"), exchange.query)
            XCTAssertEqual(exchange.state, .complete)
            let chunks = try await harness.store.streamChunks(exchangeID: exchange.id)
            XCTAssertGreaterThan(chunks.count, 1, "recorded chunk by chunk as the lines arrived")
            XCTAssertEqual(String(decoding: chunks.flatMap(\.data), as: UTF8.self), logs.stdout)
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }
}

/// GatewayStreamingTests with the session store on PostgreSQL.
final class GatewayStreamingOnPostgresTests: GatewayStreamingTests {
    override class var backend: GatewayStoreBackend { .postgres }

    override func testChunkedTextAnswerPassesThroughChunkByChunkMaskedAndRecorded() async throws {
        try await super.testChunkedTextAnswerPassesThroughChunkByChunkMaskedAndRecorded()
    }

    override func testKubectlLogsFollowStreamsAndRecordsEachChunk() async throws {
        try await super.testKubectlLogsFollowStreamsAndRecordsEachChunk()
    }
}
