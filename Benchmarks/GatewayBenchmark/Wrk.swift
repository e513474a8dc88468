import Foundation

/// One `wrk` run and the figures it printed.
struct WrkResult {
    var requests: Int
    var requestsPerSecond: Double
    /// Latency percentiles in milliseconds.
    var p50: Double
    var p99: Double
    var errors: String?
}

enum Wrk {
    /// Runs wrk with `connections` clients (one thread per 32, at least one) for `seconds`.
    static func run(url: String, connections: Int, seconds: Int, headers: [String] = []) throws -> WrkResult {
        let threads = max(1, min(2, connections / 32))
        var arguments = ["-t\(threads)", "-c\(connections)", "-d\(seconds)s", "--latency", "--timeout", "30s"]
        for header in headers { arguments += ["-H", header] }
        arguments.append(url)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/wrk")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchmarkError("wrk failed: \(output)") }
        return try parse(output)
    }

    static func parse(_ output: String) throws -> WrkResult {
        func line(_ prefix: String) -> [Substring]? {
            output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .first { $0.hasPrefix(prefix) }.map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        }
        guard let rps = line("Requests/sec:").flatMap({ Double($0.last ?? "") }),
              let p50 = line("50%").flatMap({ $0.last.map(String.init) }).flatMap(milliseconds),
              let p99 = line("99%").flatMap({ $0.last.map(String.init) }).flatMap(milliseconds),
              let total = output.split(separator: "\n").first(where: { $0.contains("requests in") })
                .flatMap({ Int($0.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") }) else {
            throw BenchmarkError("cannot read wrk output:\n\(output)")
        }
        let errors = output.split(separator: "\n").filter { $0.contains("Socket errors") || $0.contains("Non-2xx") }
            .map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "; ")
        return WrkResult(requests: total, requestsPerSecond: rps, p50: p50, p99: p99, errors: errors.isEmpty ? nil : errors)
    }

    static func milliseconds(_ text: String) -> Double? {
        for (unit, factor) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0)] where text.hasSuffix(unit) {
            return Double(text.dropLast(unit.count)).map { $0 * factor }
        }
        return nil
    }
}
