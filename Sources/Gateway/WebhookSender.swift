import AsyncHTTPClient
import Foundation
import Logging
import NIOCore

/// POSTs a JSON document to a webhook (approval announcements, alerts), off the request path,
/// and tries again when a later attempt may succeed.
///
/// Contract:
/// - At most `attempts` POSTs (4), each given `timeout` (10 s; AsyncHTTPClient keeps trying
///   to connect within it).
/// - Tried again after `backoff` (1 s), then twice as long each time (1, 2, 4 s): a connection
///   failure or timeout, 429 and 5xx answers. Not tried again: a 2xx answer (delivered) and
///   any other answer (the receiver refuses the document; sending it again changes nothing).
/// - Each failed attempt is logged as a warning, and giving up as an error.
/// - `send` returns at once: a webhook never holds, delays or fails a request.
struct WebhookSender: Sendable {
    let http: HTTPClient
    let logger: Logger
    var attempts = 4
    var backoff: Duration = .seconds(1)
    var timeout: TimeAmount = .seconds(10)

    /// Delivers `body` to `url` in the background; `what` names it in the logs.
    func send(_ body: [UInt8], to url: String, what: String) {
        Task { await deliver(body, to: url, what: what) }
    }

    /// Delivers `body` to `url`; returns whether it was delivered (a 2xx answer).
    @discardableResult
    func deliver(_ body: [UInt8], to url: String, what: String) async -> Bool {
        var delay = backoff
        for attempt in 1...max(1, attempts) {
            let again = attempt < attempts
            var retriable: Bool
            do {
                var request = HTTPClientRequest(url: url)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "User-Agent", value: "agentgate-gateway")
                request.body = .bytes(ByteBuffer(bytes: body))
                let response = try await http.execute(request, timeout: timeout)
                _ = try? await response.body.collect(upTo: 1 << 20)
                let code = Int(response.status.code)
                if (200..<300).contains(code) { return true }
                retriable = code == 429 || code >= 500
                logger.warning("webhook \(url) answered \(code) for \(what)\(retriable && again ? "; trying again in \(delay)" : "")")
            } catch {
                retriable = true
                logger.warning("webhook \(url) failed for \(what): \(error)\(again ? "; trying again in \(delay)" : "")")
            }
            guard retriable, again else { break }
            try? await Task.sleep(for: delay)
            delay *= 2
        }
        logger.error("webhook \(url) was not delivered for \(what); giving up")
        return false
    }
}
