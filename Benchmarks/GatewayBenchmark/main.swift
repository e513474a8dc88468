import AgentGateAPI
import Foundation
import Gateway
import HTTPServing
import KubeClient
import Logging
import Sandbox
import SessionStore

// Gateway benchmark: one run, one machine, one fast upstream (nginx serving recorded API
// responses). For a small GET (~1 KiB ConfigMap) and a 1 MiB LIST, with 1 and 64 clients
// (wrk), it measures
//   direct      wrk → nginx
//   nginx       wrk → nginx proxy_pass → nginx            (the baseline proxy)
//   NIO floor   wrk → a bare SwiftNIO relay → nginx      (what the gateway's stack costs alone)
//   gateway     wrk → gateway (OIDC verified, recorded in SQLite, masked) → nginx
// and prints requests/s, p50/p99 latency and the latency added over direct, and the proxy's
// CPU time per request: the gateway's from getrusage of this process while wrk, a separate
// process, runs (the gateway is the only thing this process does then); nginx's proxy_pass
// from /proc, as its proxy run's CPU per request less its direct run's.
//
// Usage: bash scripts/bench-gateway.sh [SECONDS] (a release build in .build-release, then this)
// Needs /usr/sbin/nginx and /usr/bin/wrk (apt-get install -y nginx wrk).

let seconds = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 5 : 5
/// `GatewayBenchmark SECONDS gateway` runs only the gateway rows (for profiling it with perf);
/// `GatewayBenchmark SECONDS store [POSTGRES-URL]` only the recorder (StoreBenchmark.swift), on
/// SQLite and, given a URL, on PostgreSQL too.
let onlyGateway = CommandLine.arguments.count > 2 && CommandLine.arguments[2] == "gateway"
// A line at a time: figures already measured are shown even if a later run fails.
setvbuf(stdout, nil, _IOLBF, 0)
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .error
    return handler
}

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1_000_000
}

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentgate-gateway-bench-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
if CommandLine.arguments.count > 2 && CommandLine.arguments[2] == "store" {
    for callers in [1, 64] {
        for (query, backend) in [("?journal=off", "SQLite, journal off"), ("", "SQLite")] {
            let url = "sqlite:" + directory.appendingPathComponent("store-\(callers)\(query.isEmpty ? "" : "-direct").db").path + query
            let figures = try await StoreBenchmark.run(url: url, seconds: seconds, callers: callers, cpu: cpuSeconds)
            print(StoreBenchmark.report(figures, backend: backend))
        }
    }
    if CommandLine.arguments.count > 3 {
        // `store postgres://...`: the same on PostgreSQL (its server's CPU is not counted).
        for callers in [1, 64] {
            let figures = try await StoreBenchmark.run(url: CommandLine.arguments[3], seconds: seconds, callers: callers,
                                                       cpu: cpuSeconds)
            print(StoreBenchmark.report(figures, backend: "PostgreSQL"))
        }
    }
    try? FileManager.default.removeItem(at: directory)
    exit(0)
}
let nginx = NginxPair(directory: directory.appendingPathComponent("nginx"), directPort: try LoopbackPort.free(), proxyPort: try LoopbackPort.free())
try nginx.start()
defer {
    nginx.stop()
    try? FileManager.default.removeItem(at: directory)
}

let issuer = try DevOIDCIssuer()
let issuerURL = try await issuer.start()
// The gateway counts its requests in flight and the store reads the count, as in `agentgate gateway`.
let load = RequestLoad()
var storeOptions = SessionStoreOptions()
storeOptions.requestLoad = load
let store = try await SessionStores.open(url: "sqlite:" + directory.appendingPathComponent("sessions.db").path, options: storeOptions)
let registry = ConnectionRegistry()
let audience = "agentgate-bench"
registry.put(GatewayConnectionConfig(
    namespace: "default", name: "bench", generation: 1, uid: "bench", serviceAccountName: "agent", endpoint: nil,
    identity: AgentIdentity(issuer: issuerURL, audiences: [audience], allowedSubjects: ["agent-1"]),
    approval: nil, access: nil, recording: RecordingPolicySpec(), recordingPolicyName: nil, maskingRules: [],
    credentialExpiresAt: nil), token: "bench-service-account-token-0123456789")
let gateway = try Gateway(upstream: KubeConfig(server: "http://127.0.0.1:\(nginx.directPort)"), registry: registry, store: store,
                          load: load)
let gatewayPort = try await gateway.start(host: "127.0.0.1", port: 0, tls: nil)
var tokenRequest = DevOIDCIssuer.TokenRequest(subject: "agent-1", audience: audience, model: "bench")
tokenRequest.sessionID = "bench"
tokenRequest.lifetime = 3600
let token = try await issuer.token(tokenRequest)
let auth = ["Authorization: Bearer \(token)"]

let floorProxy = NIOFloorProxy()
let floorPort = try floorProxy.start(upstreamPort: nginx.directPort, token: "bench-service-account-token-0123456789")

// Every target must answer 200 before it is timed (a fast error is not a fast proxy).
for path in [NginxPair.smallPath, NginxPair.listPath] {
    for (name, url, headers) in [("direct", "http://127.0.0.1:\(nginx.directPort)\(path)", [String]()),
                                 ("nginx proxy_pass", "http://127.0.0.1:\(nginx.proxyPort)\(path)", []),
                                 ("NIO floor", "http://127.0.0.1:\(floorPort)\(path)", auth),
                                 ("gateway", "http://127.0.0.1:\(gatewayPort)/c/default/bench\(path)", auth)] {
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-sS", "-w", "\n%{http_code}"] + headers.flatMap { ["-H", $0] } + [url]
        let pipe = Pipe()
        curl.standardOutput = pipe
        try curl.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        curl.waitUntilExit()
        guard output.hasSuffix("\n200") else {
            throw BenchmarkError("\(name) \(path) did not answer 200: \(output.suffix(600))")
        }
    }
}
print("GatewayBenchmark: pid \(ProcessInfo.processInfo.processIdentifier), \(seconds) s per run, nginx \(nginx.directPort)/\(nginx.proxyPort), gateway \(gatewayPort), \(ProcessInfo.processInfo.activeProcessorCount) cores")
// Warm up: JWKS fetched, connection pools filled, SQLite pages cached.
_ = try Wrk.run(url: "http://127.0.0.1:\(gatewayPort)/c/default/bench\(NginxPair.smallPath)", connections: 8, seconds: 1, headers: auth)

struct Row {
    var workload: String
    var clients: Int
    var target: String
    var result: WrkResult
    var cpuPerRequestMs: Double?
}
var rows: [Row] = []
for (workload, path) in [("small GET", NginxPair.smallPath), ("1 MiB LIST", NginxPair.listPath)] {
    for clients in [1, 64] {
        if !onlyGateway {
            var nginxBefore = nginx.cpuSeconds()
            let direct = try Wrk.run(url: "http://127.0.0.1:\(nginx.directPort)\(path)", connections: clients, seconds: seconds)
            let directCPU = (nginx.cpuSeconds() - nginxBefore) / Double(max(1, direct.requests))
            rows.append(Row(workload: workload, clients: clients, target: "direct", result: direct))
            nginxBefore = nginx.cpuSeconds()
            let proxy = try Wrk.run(url: "http://127.0.0.1:\(nginx.proxyPort)\(path)", connections: clients, seconds: seconds)
            let proxyCPU = (nginx.cpuSeconds() - nginxBefore) / Double(max(1, proxy.requests))
            // The same nginx serves the upstream: its proxy share is the proxy run's CPU per
            // request less the direct run's.
            rows.append(Row(workload: workload, clients: clients, target: "nginx proxy_pass", result: proxy,
                            cpuPerRequestMs: max(0, proxyCPU - directCPU) * 1000))
        }
        // The floor: what SwiftNIO alone costs to relay the request (NIOFloorProxy.swift).
        let floorBefore = cpuSeconds()
        let floor = try Wrk.run(url: "http://127.0.0.1:\(floorPort)\(path)", connections: clients, seconds: seconds, headers: auth)
        rows.append(Row(workload: workload, clients: clients, target: "NIO floor", result: floor,
                        cpuPerRequestMs: floor.requests > 0 ? (cpuSeconds() - floorBefore) * 1000 / Double(floor.requests) : nil))
        let before = cpuSeconds()
        let through = try Wrk.run(url: "http://127.0.0.1:\(gatewayPort)/c/default/bench\(path)", connections: clients,
                                  seconds: seconds, headers: auth)
        let cpu = cpuSeconds() - before
        rows.append(Row(workload: workload, clients: clients, target: "gateway", result: through,
                        cpuPerRequestMs: through.requests > 0 ? cpu * 1000 / Double(through.requests) : nil))
    }
}

func f(_ value: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", value) }
func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text : text + String(repeating: " ", count: width - text.count) }
print("")
print(pad("workload", 12) + pad("clients", 9) + pad("target", 18) + pad("req/s", 11) + pad("p50 ms", 9) + pad("p99 ms", 9)
      + pad("+p50 ms", 9) + pad("+p99 ms", 9) + pad("vs nginx", 10) + "proxy CPU ms/req")
for row in rows {
    let direct = rows.first { $0.workload == row.workload && $0.clients == row.clients && $0.target == "direct" }?.result
    let proxy = rows.first { $0.workload == row.workload && $0.clients == row.clients && $0.target == "nginx proxy_pass" }?.result
    let added = row.target == "direct" ? "" : direct.map { f(row.result.p50 - $0.p50, 3) } ?? ""
    let added99 = row.target == "direct" ? "" : direct.map { f(row.result.p99 - $0.p99, 3) } ?? ""
    let share = row.target == "gateway" ? proxy.map { f(100 * row.result.requestsPerSecond / $0.requestsPerSecond, 0) + "%" } ?? "" : ""
    print(pad(row.workload, 12) + pad("\(row.clients)", 9) + pad(row.target, 18) + pad(f(row.result.requestsPerSecond, 0), 11)
          + pad(f(row.result.p50, 3), 9) + pad(f(row.result.p99, 3), 9) + pad(added, 9) + pad(added99, 9) + pad(share, 10)
          + (row.cpuPerRequestMs.map { f($0, 3) } ?? "") + (row.result.errors.map { "  [\($0)]" } ?? ""))
}
let recorded = try await store.stats(at: Date())
print("")
print("recorded: \(recorded.values.reduce(0) { $0 + $1.bytes }) bytes in \(recorded.values.reduce(0) { $0 + $1.total }) session(s)")
print("goals (issue 7): gateway >= 70% of nginx proxy_pass req/s; small GET p99 added < 2 ms; < 0.2 ms CPU per small request")
for gateway in rows where gateway.target == "gateway" {
    let same = rows.filter { $0.workload == gateway.workload && $0.clients == gateway.clients }
    let label = pad("\(gateway.workload), \(gateway.clients) client(s):", 26)
    var verdicts: [String] = []
    if let proxy = same.first(where: { $0.target == "nginx proxy_pass" })?.result {
        let share = 100 * gateway.result.requestsPerSecond / proxy.requestsPerSecond
        verdicts.append("throughput \(f(share, 0))% of nginx (goal 70%) \(share >= 70 ? "met" : "NOT MET")")
    }
    if gateway.workload == "small GET" {
        if let direct = same.first(where: { $0.target == "direct" })?.result {
            let added = gateway.result.p99 - direct.p99
            verdicts.append("p99 added \(f(added, 3)) ms (goal < 2) \(added < 2 ? "met" : "NOT MET")")
        }
        if let cpu = gateway.cpuPerRequestMs {
            let nginxCPU = same.first(where: { $0.target == "nginx proxy_pass" })?.cpuPerRequestMs
            verdicts.append("CPU \(f(cpu, 3)) ms/req (goal < 0.2) \(cpu < 0.2 ? "met" : "NOT MET")"
                            + (nginxCPU.map { " (nginx proxy_pass \(f($0, 3)))" } ?? ""))
        }
    }
    print(label + verdicts.joined(separator: "; "))
}
if !onlyGateway {
    try await printThroughputBudget()
}
await gateway.shutdown()
// Requests wrk abandoned at the end of its last run are still completing their records.
try await Task.sleep(for: .seconds(2))
try await store.close()
await issuer.shutdown()

/// What the throughput goal (70% of nginx proxy_pass) leaves for the gateway's own work, from
/// this run's small-GET figures, next to what the bare NIO relay and the recorder alone cost.
/// - One client: requests follow one another, so the whole round trip must fit 1/target.
/// - 64 clients: wrk, nginx and the proxy keep every core busy, so at the target rate the cores
///   give `cores / target` of CPU per request; wrk and nginx take `cores / direct rate` of it
///   (the direct run, where they are all there is) and the proxy may use the rest.
@MainActor func printThroughputBudget() async throws {
    let small = rows.filter { $0.workload == "small GET" }
    func row(_ clients: Int, _ target: String) -> Row? { small.first { $0.clients == clients && $0.target == target } }
    let recorderURL = "sqlite:" + directory.appendingPathComponent("budget-recorder.db").path
    let recorder = try await StoreBenchmark.run(url: recorderURL, seconds: min(seconds, 3), callers: 64, cpu: cpuSeconds)
    let recorderMicros = recorder.cpuSeconds * 1_000_000 / Double(max(1, recorder.exchanges))
    print("")
    print("what 70% of nginx leaves the gateway (small GET, this run):")
    if let proxy = row(1, "nginx proxy_pass")?.result, let floor = row(1, "NIO floor")?.result,
       let through = row(1, "gateway")?.result {
        let target = 0.7 * proxy.requestsPerSecond
        print("  1 client:   \(f(target, 0)) req/s is a round trip of \(f(1_000_000 / target, 0)) µs; the bare NIO relay alone takes "
              + "\(f(1_000_000 / floor.requestsPerSecond, 0)) µs (\(f(100 * floor.requestsPerSecond / proxy.requestsPerSecond, 0))% of nginx), "
              + "the gateway \(f(1_000_000 / through.requestsPerSecond, 0)) µs")
    }
    if let direct = row(64, "direct")?.result, let proxy = row(64, "nginx proxy_pass")?.result,
       let floorCPU = row(64, "NIO floor")?.cpuPerRequestMs, let gatewayCPU = row(64, "gateway")?.cpuPerRequestMs {
        let cores = Double(ProcessInfo.processInfo.activeProcessorCount)
        let target = 0.7 * proxy.requestsPerSecond
        let perRequest = cores * 1_000_000 / target
        let clientAndUpstream = cores * 1_000_000 / direct.requestsPerSecond
        let budget = perRequest - clientAndUpstream
        print("  64 clients: at \(f(target, 0)) req/s \(Int(cores)) cores give \(f(perRequest, 0)) µs of CPU per request; wrk and nginx "
              + "take \(f(clientAndUpstream, 0)) µs, leaving \(f(budget, 0)) µs for the proxy. The bare NIO relay uses "
              + "\(f(floorCPU * 1000, 0)) µs, leaving \(f(budget - floorCPU * 1000, 0)) µs for authentication, recording and masking; "
              + "recording alone costs \(f(recorderMicros, 0)) µs per exchange (recorder, 64 callers); the gateway uses "
              + "\(f(gatewayCPU * 1000, 0)) µs")
    }
}
