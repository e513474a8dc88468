import AgentGateAPI
import ControllerRuntime
import Foundation
import Prometheus
import SessionStore
import Synchronization

/// Prometheus metrics of the gateway, on swift-prometheus (as the controller runtime's are):
///
/// - `agentgate_gateway_requests_total{connection,verb,code}`
/// - `agentgate_gateway_upstream_latency_seconds` and `agentgate_gateway_added_latency_seconds`
///   (histograms: time waiting for the API server, and the gateway's own time on top)
/// - `agentgate_gateway_recorded_bytes_total`, `agentgate_gateway_recorder_errors_total`,
///   `agentgate_gateway_forwarded_requests_total`
/// - `agentgate_gateway_approvals_total{connection,state}`: held requests by how they ended
///   (approved, denied, expired, abandoned)
/// - `agentgate_gateway_alerts_total{connection,rule}` (RecordingPolicy alert rules that fired)
/// - `agentgate_gateway_recorder_backlog_bytes`, `agentgate_gateway_recorder_held_requests`,
///   `agentgate_gateway_recorder_held_requests_total`: records not yet in the database, and the
///   new requests waiting (now, and ever) because too many are (SQLite's recording journal;
///   read from the store at each scrape)
/// - `agentgate_gateway_approvals_pending`: requests held on this replica now, and
///   `agentgate_gateway_approval_wait_seconds`: how long held requests waited for their
///   decision (that wait is not counted in the added latency)
/// - `agentgate_build_info{version,swift}` and the standard `process_*` metrics
///   (``ProcessMetrics``)
public final class GatewayMetrics: Sendable {
    /// A monotonically increasing count.
    public struct Counter: Sendable {
        let counter: Prometheus.Counter
        public func add(_ delta: Int64) { counter.increment(by: delta) }
    }

    /// Observations in seconds.
    public struct Histogram: Sendable {
        let histogram: ValueHistogram
        public func observe(_ seconds: Double) { histogram.record(seconds) }
    }

    static let buckets: [Double] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    public let registry: PrometheusCollectorRegistry
    public let forwardedRequests: Counter
    public let bytesRecorded: Counter
    public let recorderErrors: Counter
    public let upstreamLatency: Histogram
    public let addedLatency: Histogram
    /// Seconds a held request waited for its decision.
    public let approvalWait: Histogram
    private let approvalsPending: Gauge
    private let pendingSource = Mutex<(@Sendable () -> Int)?>(nil)
    private let process: ProcessMetrics
    /// `requests_total` by its labels: the registry's lookup builds and hashes the label set
    /// on every call, a measurable share of a small request.
    private let requestCounters = Mutex<[RequestLabels: Prometheus.Counter]>([:])
    private let recorderBacklogBytes: Gauge
    private let recorderHeldRequests: Gauge
    private let recorderHeldTotal: Prometheus.Counter
    /// Where `render` reads the recorder's backlog from, and the held total it last exposed.
    private let recorder = Mutex<(source: (@Sendable () -> RecorderBacklog)?, heldTotal: Int64)>((nil, 0))

    private struct RequestLabels: Hashable {
        var connection: ConnectionRef
        var verb: String
        var code: Int
    }

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        func counter(_ name: String, _ help: String) -> Counter {
            Counter(counter: registry.makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help)))
        }
        func histogram(_ name: String, _ help: String) -> Histogram {
            Histogram(histogram: registry.makeValueHistogram(
                descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), buckets: Self.buckets))
        }
        forwardedRequests = counter("agentgate_gateway_forwarded_requests_total", "Requests forwarded to the Kubernetes API")
        bytesRecorded = counter("agentgate_gateway_recorded_bytes_total", "Bytes of bodies written to the session store")
        recorderErrors = counter("agentgate_gateway_recorder_errors_total", "Exchanges the session store could not record")
        upstreamLatency = histogram("agentgate_gateway_upstream_latency_seconds", "Time waiting for the Kubernetes API")
        addedLatency = histogram("agentgate_gateway_added_latency_seconds", "Time the gateway adds on top of the Kubernetes API")
        approvalWait = Histogram(histogram: registry.makeValueHistogram(
            descriptor: MetricNameDescriptor(metricName: "agentgate_gateway_approval_wait_seconds", unitName: "",
                                             helpText: "Time requests held for approval waited for their decision"),
            buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 86_400]))
        approvalsPending = registry.makeGauge(descriptor: MetricNameDescriptor(
            metricName: "agentgate_gateway_approvals_pending", unitName: "",
            helpText: "Requests held for approval on this gateway replica now"))
        process = ProcessMetrics(registry: registry, version: AgentGateVersion.current)
        recorderBacklogBytes = registry.makeGauge(descriptor: MetricNameDescriptor(
            metricName: "agentgate_gateway_recorder_backlog_bytes", unitName: "",
            helpText: "Bytes of records made and not yet in the session database (SQLite's recording journal)"))
        recorderHeldRequests = registry.makeGauge(descriptor: MetricNameDescriptor(
            metricName: "agentgate_gateway_recorder_held_requests", unitName: "",
            helpText: "New requests waiting now because the recording backlog is over its limit"))
        recorderHeldTotal = registry.makeCounter(descriptor: MetricNameDescriptor(
            metricName: "agentgate_gateway_recorder_held_requests_total", unitName: "",
            helpText: "New requests that waited because the recording backlog was over its limit"))
    }

    /// Reads the number of held requests from `source` at every `render`.
    func observePendingApprovals(_ source: @escaping @Sendable () -> Int) {
        pendingSource.withLock { $0 = source }
    }

    /// Reads the recorder's backlog from `source` at every `render`.
    public func observeRecorder(_ source: @escaping @Sendable () -> RecorderBacklog) {
        recorder.withLock { $0.source = source }
    }

    func count(connection: ConnectionRef, verb: String, code: Int) {
        let labels = RequestLabels(connection: connection, verb: verb, code: code)
        let counter = requestCounters.withLock { counters in
            if let known = counters[labels] { return known }
            let made = registry.makeCounter(
                descriptor: MetricNameDescriptor(metricName: "agentgate_gateway_requests_total", unitName: "",
                                                 helpText: "Requests by connection, verb and HTTP status code"),
                labels: [("connection", "\(connection)"), ("verb", verb), ("code", String(code))])
            counters[labels] = made
            return made
        }
        counter.increment()
    }

    func countApproval(connection: ConnectionRef, state: ApprovalState) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(metricName: "agentgate_gateway_approvals_total", unitName: "",
                                             helpText: "Requests held for approval, by connection and outcome"),
            labels: [("connection", "\(connection)"), ("state", state.rawValue)]
        ).increment()
    }

    func alertFired(connection: String, rule: String) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(metricName: "agentgate_gateway_alerts_total", unitName: "",
                                             helpText: "RecordingPolicy alert rules that fired, by connection and rule"),
            labels: [("connection", connection), ("rule", rule)]
        ).increment()
    }

    /// The text exposition of every metric.
    public func render() -> String {
        if let pending = pendingSource.withLock({ $0 }) { approvalsPending.set(to: Double(pending())) }
        process.update()
        recorder.withLock { state in
            guard let backlog = state.source?() else { return }
            recorderBacklogBytes.set(to: Double(backlog.bytes))
            recorderHeldRequests.set(to: Double(backlog.heldExchanges))
            if backlog.heldTotal > state.heldTotal {
                recorderHeldTotal.increment(by: backlog.heldTotal - state.heldTotal)
                state.heldTotal = backlog.heldTotal
            }
        }
        return registry.emitToString()
    }
}
