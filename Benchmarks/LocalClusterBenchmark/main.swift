// LocalClusterBenchmark: prints the embedded API server's figures (issue 3's goals).
//
//   swift run -c release LocalClusterBenchmark [--objects 10000] [--watchers 100] [--wrk-seconds 5]
//
// Figures: GETs per second of one object (in-process through the full handler stack:
// authentication, RBAC, routing, storage; and over HTTP measured by wrk when wrk is
// installed — `--wrk-seconds N`, default 5), LIST latency of N AgentConnections, watch fan-out latency p50/p99 with W
// watchers, and the process's resident memory holding N AgentConnections (with a baseline
// measured before they were created, in the same run).
import HTTPServing
import AgentGateAPI
import Foundation
import KubeCore
import LocalCluster
import NIOHTTP1

func residentMiB() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kb = Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        return kb / 1024
    }
    return 0
}

/// The path of `name` on PATH, if it is there and executable.
func findExecutable(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))]
}

let arguments = CommandLine.arguments
func option(_ name: String, _ fallback: Int) -> Int {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return fallback }
    return Int(arguments[index + 1]) ?? fallback
}
let objectCount = option("--objects", 10_000)
let watcherCount = option("--watchers", 100)

var configuration = LocalCluster.Configuration(dataDirectory: nil, port: 0, useTLS: false)
configuration.customResourceDefinitions = AgentGateCRDs.all.map(\.yaml)
let cluster = try await LocalCluster.start(configuration)
let server = cluster.apiServer
let base = "/apis/agentgate.io/v1alpha1/namespaces/default/agentconnections"

func request(_ method: String, _ uri: String, _ body: JSONValue? = nil, accept: String = "application/json",
             token: String = cluster.adminToken) async -> HTTPResponse {
    let headers = HTTPHeaders([("Authorization", "Bearer \(token)"), ("Content-Type", "application/json"), ("Accept", accept)])
    return await server.handle(HTTPRequest(method: method, uri: uri, headers: headers, body: body?.serialized() ?? [],
                                           bodyTooLarge: false, remoteAddress: nil))
}

func connection(_ i: Int) -> JSONValue {
    ["apiVersion": "agentgate.io/v1alpha1", "kind": "AgentConnection",
     "metadata": ["name": .string("conn-\(i)"), "namespace": "default", "labels": ["bench": "yes", "shard": .string(String(i % 10))]],
     "spec": ["serviceAccountName": .string("sa-\(i % 50)"),
              "identity": ["issuer": "https://issuer.example.com", "audiences": ["agentgate"], "allowedSubjects": [.string("agent-\(i)")]]]]
}

print("AgentGate local cluster benchmark (\(ProcessInfo.processInfo.activeProcessorCount) cores)")
let baselineRSS = residentMiB()
let createStart = Date()
for i in 0..<objectCount {
    let response = await request("POST", base, connection(i))
    if response.status != 201 { print("create failed: \(response.status)"); exit(1) }
}
let createSeconds = Date().timeIntervalSince(createStart)
let loadedRSS = residentMiB()
print(String(format: "create %d AgentConnections: %.2f s (%.0f/s)", objectCount, createSeconds, Double(objectCount) / createSeconds))
print(String(format: "resident memory: %.1f MiB before, %.1f MiB holding %d AgentConnections (+%.1f MiB)",
             baselineRSS, loadedRSS, objectCount, loadedRSS - baselineRSS))

// GET of one object, in-process through the whole handler stack.
let getCount = 20_000
let getStart = Date()
for _ in 0..<getCount {
    let response = await request("GET", "\(base)/conn-1")
    if response.status != 200 { print("get failed"); exit(1) }
}
let getSeconds = Date().timeIntervalSince(getStart)
print(String(format: "GET one object (in-process, 1 client): %.0f req/s", Double(getCount) / getSeconds))
let concurrentStart = Date()
await withTaskGroup(of: Void.self) { group in
    for _ in 0..<8 {
        group.addTask { for _ in 0..<(getCount / 8) { _ = await request("GET", "\(base)/conn-1") } }
    }
}
print(String(format: "GET one object (in-process, 8 concurrent): %.0f req/s", Double(getCount) / Date().timeIntervalSince(concurrentStart)))

// The same GET with a ServiceAccount token (JWT verification, then RBAC through a RoleBinding),
// as the gateway's upstream requests are.
_ = await request("POST", "/api/v1/namespaces/default/serviceaccounts",
                  ["apiVersion": "v1", "kind": "ServiceAccount", "metadata": ["name": "bench-reader"]])
_ = await request("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
                  ["apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": ["name": "bench-reader"],
                   "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"],
                   "subjects": [["kind": "ServiceAccount", "name": "bench-reader", "namespace": "default"]]])
let readerSA = await request("GET", "/api/v1/namespaces/default/serviceaccounts/bench-reader")
let readerUID: String = {
    guard case .bytes(let bytes) = readerSA.body, let value = try? JSONValue(parsing: bytes) else { return "" }
    return value[path: ["metadata", "uid"]]?.stringValue ?? ""
}()
let saToken = try cluster.tokenIssuer.issue(namespace: "default", name: "bench-reader", uid: readerUID).token
let saStart = Date()
for _ in 0..<getCount {
    let response = await request("GET", "\(base)/conn-1", token: saToken)
    if response.status != 200 { print("get with a ServiceAccount token failed: \(response.status)"); exit(1) }
}
print(String(format: "GET one object with a ServiceAccount token (in-process, 1 client): %.0f req/s",
             Double(getCount) / Date().timeIntervalSince(saStart)))

// LIST of all objects.
var listTimes: [Double] = []
for _ in 0..<5 {
    let start = Date()
    let response = await request("GET", base)
    listTimes.append(Date().timeIntervalSince(start) * 1000)
    if case .bytes(let bytes) = response.body, listTimes.count == 1 {
        print(String(format: "LIST body: %.1f MiB", Double(bytes.count) / 1_048_576))
    }
}
print(String(format: "LIST %d AgentConnections: p50 %.1f ms, max %.1f ms", objectCount, percentile(listTimes, 0.5), listTimes.max() ?? 0))
var tableTimes: [Double] = []
for _ in 0..<3 {
    let start = Date()
    _ = await request("GET", base, accept: "application/json;as=Table;v=v1;g=meta.k8s.io")
    tableTimes.append(Date().timeIntervalSince(start) * 1000)
}
print(String(format: "LIST as Table (kubectl get): p50 %.1f ms", percentile(tableTimes, 0.5)))

// Watch fan-out: W watchers, each update's delivery latency to every watcher.
let updates = 200
let latencies = LatencyBox()
var watchTasks: [Task<Void, Never>] = []
for _ in 0..<watcherCount {
    let response = await request("GET", "\(base)?watch=true&fieldSelector=metadata.name%3Dconn-2")
    guard case .stream(let stream) = response.body else { print("watch failed"); exit(1) }
    watchTasks.append(Task {
        for await chunk in stream {
            guard let line = try? JSONValue(parsing: Array(chunk.dropLast())),
                  let sent = line[path: ["object", "metadata", "annotations", "sent"]]?.stringValue,
                  let sentTime = Double(sent) else { continue }
            latencies.add((Date().timeIntervalSince1970 - sentTime) * 1000)
        }
    })
}
try await Task.sleep(for: .milliseconds(200))
for i in 0..<updates {
    let patch: JSONValue = ["metadata": ["annotations": ["sent": .string(String(Date().timeIntervalSince1970)), "i": .string(String(i))]]]
    let headers = HTTPHeaders([("Authorization", "Bearer \(cluster.adminToken)"), ("Content-Type", "application/merge-patch+json")])
    _ = await server.handle(HTTPRequest(method: "PATCH", uri: "\(base)/conn-2", headers: headers, body: patch.serialized(),
                                        bodyTooLarge: false, remoteAddress: nil))
    try await Task.sleep(for: .milliseconds(5))
}
try await Task.sleep(for: .milliseconds(500))
let samples = latencies.values
print(String(format: "watch fan-out, %d watchers x %d updates (%d deliveries): p50 %.2f ms, p99 %.2f ms",
             watcherCount, updates, samples.count, percentile(samples, 0.5), percentile(samples, 0.99)))
watchTasks.forEach { $0.cancel() }

// GET of one object over HTTP, from wrk (a separate process, so the figure includes
// HTTP parsing, NIO and the loopback network, as a client sees it).
if let wrk = findExecutable("wrk") {
    let seconds = option("--wrk-seconds", 5)
    let process = Process()
    let output = Pipe()
    process.executableURL = URL(fileURLWithPath: wrk)
    process.arguments = ["-t2", "-c16", "-d\(seconds)s", "-H", "Authorization: Bearer \(cluster.adminToken)",
                         "http://127.0.0.1:\(cluster.port)\(base)/conn-1"]
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    let requestsPerSecond = text.split(separator: "\n").first { $0.hasPrefix("Requests/sec:") }
        .flatMap { Double($0.split(separator: " ").last ?? "") }
    let non2xx = text.split(separator: "\n").first { $0.contains("Non-2xx") }
    if let requestsPerSecond, process.terminationStatus == 0, non2xx == nil {
        print(String(format: "GET one object over HTTP (wrk, 2 threads, 16 connections, %d s): %.0f req/s (goal: 5,000)",
                     seconds, requestsPerSecond))
    } else {
        print("GET one object over HTTP (wrk): no figure, wrk said:\n\(text)")
    }
} else {
    print("GET one object over HTTP (wrk): skipped, wrk is not installed (apt-get install -y wrk)")
}
await cluster.stop()

final class LatencyBox: @unchecked Sendable {
    private let lock = NSLock()
    private var samples: [Double] = []
    func add(_ value: Double) { lock.lock(); samples.append(value); lock.unlock() }
    var values: [Double] { lock.lock(); defer { lock.unlock() }; return samples }
}
