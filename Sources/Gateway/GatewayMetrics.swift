import Foundation
import SessionStore

/// Prometheus metrics of the gateway, rendered in the text exposition format.
///
/// - `agentgate_gateway_requests_total{connection,verb,code}`
/// - `agentgate_gateway_upstream_latency_seconds` and `agentgate_gateway_added_latency_seconds`
///   (histograms: time waiting for the API server, and the gateway's own time on top)
/// - `agentgate_gateway_recorded_bytes_total`, `agentgate_gateway_recorder_errors_total`,
///   `agentgate_gateway_forwarded_requests_total`
public final class GatewayMetrics: @unchecked Sendable {
    public final class Counter: @unchecked Sendable {
        private var value: Int64 = 0
        private let lock = NSLock()
        public func add(_ delta: Int64) { lock.withLock { value += delta } }
        public var current: Int64 { lock.withLock { value } }
    }

    public final class Histogram: @unchecked Sendable {
        static let bounds: [Double] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
        private var buckets = [Int64](repeating: 0, count: Histogram.bounds.count)
        private var count: Int64 = 0
        private var sum: Double = 0
        private let lock = NSLock()
        public func observe(_ seconds: Double) {
            lock.withLock {
                count += 1
                sum += seconds
                for (index, bound) in Self.bounds.enumerated() where seconds <= bound { buckets[index] += 1 }
            }
        }
        func render(_ name: String) -> String {
            lock.withLock {
                var out = "# TYPE \(name) histogram\n"
                for (index, bound) in Self.bounds.enumerated() { out += "\(name)_bucket{le=\"\(bound)\"} \(buckets[index])\n" }
                out += "\(name)_bucket{le=\"+Inf\"} \(count)\n\(name)_sum \(sum)\n\(name)_count \(count)\n"
                return out
            }
        }
    }

    public let forwardedRequests = Counter()
    public let bytesRecorded = Counter()
    public let recorderErrors = Counter()
    public let upstreamLatency = Histogram()
    public let addedLatency = Histogram()
    private var requests: [String: Int64] = [:]
    private let lock = NSLock()

    func count(connection: ConnectionRef, verb: String, code: Int) {
        let key = "connection=\"\(connection)\",verb=\"\(verb)\",code=\"\(code)\""
        lock.withLock { requests[key, default: 0] += 1 }
    }

    /// The text exposition of every metric.
    public func render() -> String {
        var out = "# TYPE agentgate_gateway_requests_total counter\n"
        for (labels, value) in lock.withLock({ requests }).sorted(by: { $0.key < $1.key }) {
            out += "agentgate_gateway_requests_total{\(labels)} \(value)\n"
        }
        out += "# TYPE agentgate_gateway_forwarded_requests_total counter\nagentgate_gateway_forwarded_requests_total \(forwardedRequests.current)\n"
        out += "# TYPE agentgate_gateway_recorded_bytes_total counter\nagentgate_gateway_recorded_bytes_total \(bytesRecorded.current)\n"
        out += "# TYPE agentgate_gateway_recorder_errors_total counter\nagentgate_gateway_recorder_errors_total \(recorderErrors.current)\n"
        out += upstreamLatency.render("agentgate_gateway_upstream_latency_seconds")
        out += addedLatency.render("agentgate_gateway_added_latency_seconds")
        return out
    }
}
