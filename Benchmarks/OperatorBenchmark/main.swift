// OperatorBenchmark: applies N AgentConnections and prints how long the operator takes to
// make them all Ready, the API requests it made, and its peak resident memory (issue 6's goals:
// under 60 s, under 300 MiB, at most 4 API writes per connection, for N = 10,000).
//
//   swift build -c release --product agentgate && swift run -c release OperatorBenchmark [--connections 10000] [--workers 4]
//
// The embedded API server runs in this process; the operator is the real `agentgate operator`
// binary in its own process (found next to this executable), so its memory is its own. Requests
// are read from the operator's /metrics (rest_client_requests_total).
import AgentGateAPI
import Foundation
import KubeClient
import KubeCore
import LocalCluster

let arguments = CommandLine.arguments
func option(_ name: String, _ fallback: Int) -> Int {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return fallback }
    return Int(arguments[index + 1]) ?? fallback
}
let count = option("--connections", 10_000)
let workers = option("--workers", 4)

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("operator-bench-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
var configuration = LocalCluster.Configuration(dataDirectory: directory, port: 0, useTLS: false)
configuration.customResourceDefinitions = AgentGateCRDs.all.map(\.yaml)
configuration.watchHistory = 100_000
let cluster = try await LocalCluster.start(configuration)
let kubeconfig = directory.appendingPathComponent("admin.kubeconfig")
try cluster.kubeconfig(user: "admin", token: cluster.adminToken).write(to: kubeconfig, atomically: true, encoding: .utf8)
let client = try KubernetesClient(config: try KubeConfig.fromKubeconfig(yaml: cluster.kubeconfig(user: "admin", token: cluster.adminToken)))
_ = try await client.create(Namespace(name: "bench"))
_ = try await client.create(ServiceAccount(metadata: ObjectMeta(name: "agent-sa", namespace: "bench")))
// As installed (config/admission): the operator mints no token without it.
for object in try JSONValue.parseYAMLDocuments(ServiceAccountBindingPolicy.yaml) {
    try await cluster.applyObject(object)
}

let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("agentgate")
guard FileManager.default.isExecutableFile(atPath: binary.path) else {
    print("error: \(binary.path) not found; build it first: swift build -c release --product agentgate")
    exit(1)
}
let operatorProcess = Process()
operatorProcess.executableURL = binary
operatorProcess.arguments = ["operator", "--kubeconfig", kubeconfig.path, "--metrics-address", "127.0.0.1:0",
                             "--health-address", "", "--gateway-url", "https://gateway.example.com", "--workers", String(workers)]
let log = directory.appendingPathComponent("operator.log")
_ = FileManager.default.createFile(atPath: log.path, contents: nil)
let logHandle = try FileHandle(forWritingTo: log)
operatorProcess.standardOutput = logHandle
operatorProcess.standardError = logHandle
try operatorProcess.run()
defer { operatorProcess.terminate() }

func peakRSSMiB(_ pid: Int32) -> Double {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }
    return 0
}

print("AgentGate operator benchmark: \(count) AgentConnections, \(workers) workers, \(ProcessInfo.processInfo.activeProcessorCount) cores")
try await Task.sleep(for: .seconds(1))
let idleRSS = peakRSSMiB(operatorProcess.processIdentifier)

let started = ContinuousClock.now
try await withThrowingTaskGroup(of: Void.self) { group in
    let perWriter = (count + 15) / 16
    for writer in 0..<16 {
        group.addTask {
            for index in (writer * perWriter)..<min(count, (writer + 1) * perWriter) {
                let connection = AgentConnection(metadata: ObjectMeta(name: "conn-\(index)", namespace: "bench"), spec: AgentConnectionSpec(
                    serviceAccountName: "agent-sa",
                    identity: AgentIdentity(issuer: "https://issuer.example.com", audiences: ["agentgate"], allowedSubjects: ["agent-\(index)"])))
                _ = try await client.create(connection)
            }
        }
    }
    try await group.waitForAll()
}
let applied = ContinuousClock.now - started
print("applied \(count) AgentConnections in \(applied)")

var ready = 0
while ready < count {
    try await Task.sleep(for: .seconds(1))
    // A Table-free untyped list, checked without Codable: the poll should not compete for CPU.
    let list = try await client.list(AgentConnection.resourceType, namespace: "bench")
    ready = list.items.filter { item in
        (item[path: ["status", "conditions"]]?.arrayValue ?? []).contains {
            $0["type"]?.stringValue == "Ready" && $0["status"]?.stringValue == "True"
                && $0["observedGeneration"] == item[path: ["metadata", "generation"]]
        }
    }.count
    if ContinuousClock.now - started > .seconds(600) {
        print("gave up after 600 s with \(ready) Ready; operator log: \(log.path)")
        exit(1)
    }
}
let elapsed = ContinuousClock.now - started
let peak = peakRSSMiB(operatorProcess.processIdentifier)

// The operator's own request counts, from its /metrics (its port is in its log).
let logText = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
var requests: [String: Double] = [:]
if let line = logText.split(separator: "\n").first(where: { $0.contains("metrics=true") }),
   let address = line.split(separator: " ").first(where: { $0.hasPrefix("address=") })?.dropFirst("address=".count) {
    let curl = Process()
    curl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    curl.arguments = ["curl", "-sf", "http://\(address)/metrics"]
    let pipe = Pipe()
    curl.standardOutput = pipe
    try curl.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    curl.waitUntilExit()
    do {
        for sampleLine in String(decoding: data, as: UTF8.self).split(separator: "\n") where sampleLine.hasPrefix("rest_client_requests_total{") {
            let labels = sampleLine[sampleLine.index(after: sampleLine.firstIndex(of: "{")!)..<sampleLine.firstIndex(of: "}")!]
            var method = "", resource = ""
            for pair in labels.split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                let value = kv.count == 2 ? kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) : ""
                if kv.first == "method" { method = value } else if kv.first == "resource" { resource = value }
            }
            // One line per status code: add them up.
            requests["\(method) \(resource)", default: 0] += Double(sampleLine.split(separator: " ").last ?? "0") ?? 0
        }
    }
}
let writes = requests.filter { !$0.key.hasPrefix("GET ") && !$0.key.hasPrefix("WATCH ") && !$0.key.contains("leases") }.values.reduce(0, +)
let total = requests.values.reduce(0, +)

func goal(_ ok: Bool) -> String { ok ? "goal met" : "GOAL MISSED" }
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
print(String(format: "all Ready after           %.1f s  (goal < 60 s: %@)", seconds, goal(seconds < 60)))
print(String(format: "operator peak RSS         %.1f MiB (idle %.1f MiB; goal < 300 MiB: %@)", peak, idleRSS, goal(peak < 300)))
print(String(format: "API requests              %.0f total, %.0f writes = %.2f writes per connection (goal <= 4: %@)",
             total, writes, writes / Double(count), goal(writes / Double(count) <= 4)))
for (key, value) in requests.sorted(by: { $0.key < $1.key }) { print(String(format: "  %-45@ %8.0f", key as NSString, value)) }
operatorProcess.terminate()
operatorProcess.waitUntilExit()
try? await client.shutdown()
await cluster.stop()
try? FileManager.default.removeItem(at: directory)
