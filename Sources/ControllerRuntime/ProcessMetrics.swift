import Foundation
import Prometheus

/// The standard process metrics (Prometheus' client libraries' names, which dashboards and the
/// kube-prometheus alerts expect) and a `<prefix>_build_info` gauge, read from `/proc/self`
/// at each scrape:
///
/// - `process_cpu_seconds_total`, `process_resident_memory_bytes`,
///   `process_virtual_memory_bytes`, `process_start_time_seconds`, `process_open_fds`,
///   `process_max_fds`
/// - `agentgate_build_info{version,swift}` = 1
///
/// On a system without `/proc` only the build info is exposed.
public final class ProcessMetrics: Sendable {
    private let cpu: Gauge
    private let resident: Gauge
    private let virtual: Gauge
    private let start: Gauge
    private let openFDs: Gauge
    private let maxFDs: Gauge

    public init(registry: PrometheusCollectorRegistry, version: String) {
        func gauge(_ name: String, _ help: String) -> Gauge {
            registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help))
        }
        // A counter in Prometheus' sense; set from the kernel's figure, so exposed as a gauge
        // whose value only grows (what client_golang's process collector does too).
        cpu = gauge("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.")
        resident = gauge("process_resident_memory_bytes", "Resident memory size in bytes.")
        virtual = gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.")
        start = gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.")
        openFDs = gauge("process_open_fds", "Number of open file descriptors.")
        maxFDs = gauge("process_max_fds", "Maximum number of open file descriptors.")
        #if swift(>=6.3)
        let swift = "6.3"
        #else
        let swift = "6"
        #endif
        registry.makeGauge(descriptor: MetricNameDescriptor(metricName: "agentgate_build_info", unitName: "",
                                                            helpText: "Build information: the agentgate version; always 1."),
                           labels: [("version", version), ("swift", swift)]).set(to: 1)
        update()
    }

    /// Reads `/proc/self` now (call before rendering).
    public func update() {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = Double(sysconf(Int32(_SC_PAGESIZE)))
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            // Fields after "pid (comm)": state is field 3; utime 14, stime 15, starttime 22, vsize 23, rss 24.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            func field(_ number: Int) -> Double? { fields.count > number - 3 ? Double(fields[number - 3]) : nil }
            if let utime = field(14), let stime = field(15), ticks > 0 { cpu.set(to: (utime + stime) / ticks) }
            if let vsize = field(23) { virtual.set(to: vsize) }
            if let rss = field(24) { resident.set(to: rss * page) }
            if let started = field(22), ticks > 0, let boot = Self.bootTime() { start.set(to: boot + started / ticks) }
        }
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            openFDs.set(to: Double(entries.count))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 { maxFDs.set(to: Double(limit.rlim_cur)) }
    }

    private static func bootTime() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst("btime ".count).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}
