import AsyncHTTPClient
import Foundation
@testable import Gateway
import HTTPServing
import Logging
import TestSupport
import XCTest

/// Webhooks (approval announcements, alerts) are tried again when a later attempt may
/// succeed, and not when the receiver refuses the document.
final class WebhookSenderTests: XCTestCase {
    private var http: HTTPClient!
    private let receiver = HTTPServer()

    override func setUp() async throws {
        http = HTTPClient(eventLoopGroupProvider: .singleton)
    }

    override func tearDown() async throws {
        await receiver.shutdown()
        try await http?.shutdown()
    }

    /// The bodies a receiver got, in order.
    private final class Bodies: @unchecked Sendable {
        private let lock = NSLock()
        private var list: [String] = []
        /// Appends one and returns how many there are.
        func append(_ body: String) -> Int { lock.withLock { list.append(body); return list.count } }
        var value: [String] { lock.withLock { list } }
    }

    /// A receiver answering `codes` in turn (then 200), recording the bodies it got.
    private func start(answering codes: [Int]) async throws -> (url: String, bodies: Bodies) {
        let bodies = Bodies()
        let port = try await receiver.start(host: "127.0.0.1", port: 0, tls: nil) { request in
            let count = bodies.append(String(decoding: request.body, as: UTF8.self))
            return HTTPResponse(status: count <= codes.count ? codes[count - 1] : 200)
        }
        return ("http://127.0.0.1:\(port)/hook", bodies)
    }

    private func sender(attempts: Int = 4) -> WebhookSender {
        var logger = Logger(label: "test.webhook")
        logger.logLevel = .critical
        return WebhookSender(http: http, logger: logger, attempts: attempts, backoff: .milliseconds(10), timeout: .milliseconds(300))
    }

    func testUnavailableAndThrottledAnswersAreTriedAgainUntilDelivered() async throws {
        let (url, bodies) = try await start(answering: [503, 429])
        let delivered = await sender().deliver(Array(#"{"id":"a1"}"#.utf8), to: url, what: "approval a1")
        XCTAssertTrue(delivered)
        XCTAssertEqual(bodies.value, Array(repeating: #"{"id":"a1"}"#, count: 3), "two refusals, then delivered, the same document each time")
    }

    func testARefusingAnswerIsNotTriedAgain() async throws {
        let (url, bodies) = try await start(answering: [400])
        let delivered = await sender().deliver(Array("{}".utf8), to: url, what: "approval a2")
        XCTAssertFalse(delivered)
        XCTAssertEqual(bodies.value.count, 1)
    }

    func testAnUnreachableReceiverIsTriedAtMostAttemptsTimesThenGivenUp() async throws {
        let (url, bodies) = try await start(answering: [500, 500, 500, 500, 500])
        let delivered = await sender(attempts: 3).deliver(Array("{}".utf8), to: url, what: "alert a3")
        XCTAssertFalse(delivered)
        XCTAssertEqual(bodies.value.count, 3)
        let closed = try LoopbackPort.free()
        let unreachable = await sender(attempts: 2).deliver(Array("{}".utf8), to: "http://127.0.0.1:\(closed)/hook", what: "alert a4")
        XCTAssertFalse(unreachable, "nothing listens there")
    }
}
