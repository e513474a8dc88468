import Foundation
import Prometheus

/// The Prometheus metrics of a controller and its work queue, under controller-runtime's
/// names and labels so existing dashboards and alerts work unchanged:
///
/// - `controller_runtime_reconcile_total{controller,result}` (`success`, `error`,
///   `requeue`, `requeue_after`), `controller_runtime_reconcile_errors_total{controller}`,
///   `controller_runtime_terminal_reconcile_errors_total{controller}`,
///   `controller_runtime_reconcile_time_seconds{controller}`,
///   `controller_runtime_active_workers{controller}`, `controller_runtime_max_concurrent_reconciles{controller}`
/// - `workqueue_depth`, `workqueue_adds_total`, `workqueue_retries_total`,
///   `workqueue_queue_duration_seconds`, `workqueue_work_duration_seconds`, each
///   `{controller,name}`
/// - `leader_election_master_status{name}` (see ``LeaderElector``)
public struct WorkQueueMetrics: Sendable {
    public let depth: Gauge
    public let adds: Counter
    public let retries: Counter
    public let queueDuration: DurationHistogram
    public let workDuration: DurationHistogram

    /// client-go's buckets: 10 ns to 1000 s, ten times apart.
    static let buckets: [Duration] = (0..<12).map { .nanoseconds(Int64(10 * pow(10, Double($0)))) }

    public init(registry: PrometheusCollectorRegistry, name: String) {
        let labels = [("controller", name), ("name", name)]
        depth = registry.makeGauge(
            descriptor: Self.descriptor("workqueue_depth", "Current depth of workqueue"), labels: labels)
        adds = registry.makeCounter(
            descriptor: Self.descriptor("workqueue_adds_total", "Total number of adds handled by workqueue"), labels: labels)
        retries = registry.makeCounter(
            descriptor: Self.descriptor("workqueue_retries_total", "Total number of retries handled by workqueue"), labels: labels)
        queueDuration = registry.makeDurationHistogram(
            descriptor: Self.descriptor("workqueue_queue_duration_seconds",
                                        "How long in seconds an item stays in workqueue before being requested"),
            labels: labels, buckets: Self.buckets)
        workDuration = registry.makeDurationHistogram(
            descriptor: Self.descriptor("workqueue_work_duration_seconds",
                                        "How long in seconds processing an item from workqueue takes"),
            labels: labels, buckets: Self.buckets)
    }

    static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}

/// Reconcile counters and timings of one controller (see ``WorkQueueMetrics`` for the names).
public struct ControllerMetrics: Sendable {
    public let success: Counter
    public let error: Counter
    public let requeue: Counter
    public let requeueAfter: Counter
    public let errors: Counter
    public let terminalErrors: Counter
    public let time: DurationHistogram
    public let activeWorkers: Gauge
    public let maxConcurrent: Gauge

    static let buckets: [Duration] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7,
                                      0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15,
                                      20, 25, 30, 40, 50, 60].map { .nanoseconds(Int64($0 * 1e9)) }

    public init(registry: PrometheusCollectorRegistry, controller: String) {
        func total(_ result: String) -> Counter {
            registry.makeCounter(
                descriptor: WorkQueueMetrics.descriptor("controller_runtime_reconcile_total",
                                                        "Total number of reconciliations per controller"),
                labels: [("controller", controller), ("result", result)])
        }
        success = total("success")
        error = total("error")
        requeue = total("requeue")
        requeueAfter = total("requeue_after")
        let labels = [("controller", controller)]
        errors = registry.makeCounter(
            descriptor: WorkQueueMetrics.descriptor("controller_runtime_reconcile_errors_total",
                                                    "Total number of reconciliation errors per controller"), labels: labels)
        terminalErrors = registry.makeCounter(
            descriptor: WorkQueueMetrics.descriptor("controller_runtime_terminal_reconcile_errors_total",
                                                    "Total number of terminal reconciliation errors per controller"), labels: labels)
        time = registry.makeDurationHistogram(
            descriptor: WorkQueueMetrics.descriptor("controller_runtime_reconcile_time_seconds",
                                                    "Length of time per reconciliation per controller"),
            labels: labels, buckets: Self.buckets)
        activeWorkers = registry.makeGauge(
            descriptor: WorkQueueMetrics.descriptor("controller_runtime_active_workers",
                                                    "Number of currently used workers per controller"), labels: labels)
        maxConcurrent = registry.makeGauge(
            descriptor: WorkQueueMetrics.descriptor("controller_runtime_max_concurrent_reconciles",
                                                    "Maximum number of concurrent reconciles per controller"), labels: labels)
    }
}
