import Foundation

/// nginx from Debian as the fast upstream (serving recorded API responses from files) and as
/// the `proxy_pass` baseline, run from a private prefix as a foreground subprocess.
final class NginxPair {
    let directory: URL
    let directPort: Int
    let proxyPort: Int
    private var process: Process?

    static let smallPath = "/api/v1/namespaces/default/configmaps/small"
    static let listPath = "/api/v1/namespaces/default/configmaps"

    init(directory: URL, directPort: Int, proxyPort: Int) {
        self.directory = directory
        self.directPort = directPort
        self.proxyPort = proxyPort
    }

    /// Writes the recorded responses (a ~1 KiB ConfigMap and a ~1 MiB ConfigMapList) and the
    /// configuration, and starts nginx with one worker per core.
    func start() throws {
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("logs"), withIntermediateDirectories: true)
        try Data(Self.configMap(name: "small", index: 0, valueBytes: 700).utf8).write(to: directory.appendingPathComponent("small.json"))
        var items: [String] = []
        var size = 0
        var index = 0
        while size < 1 << 20 {
            let item = Self.configMap(name: "cm-\(index)", index: index, valueBytes: 900)
            items.append(item)
            size += item.utf8.count + 1
            index += 1
        }
        let list = #"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"12345"},"items":["#
            + items.joined(separator: ",") + "]}"
        try Data(list.utf8).write(to: directory.appendingPathComponent("list.json"))
        let config = """
            worker_processes auto;
            daemon off;
            pid \(directory.path)/nginx.pid;
            error_log \(directory.path)/logs/error.log warn;
            events { worker_connections 4096; }
            http {
              access_log off;
              default_type application/json;
              client_body_temp_path \(directory.path)/tmp;
              proxy_temp_path \(directory.path)/tmp;
              fastcgi_temp_path \(directory.path)/tmp;
              uwsgi_temp_path \(directory.path)/tmp;
              scgi_temp_path \(directory.path)/tmp;
              keepalive_requests 1000000;
              upstream direct { server 127.0.0.1:\(directPort); keepalive 128; }
              server {
                listen 127.0.0.1:\(directPort);
                location = \(Self.smallPath) { alias \(directory.path)/small.json; }
                location = \(Self.listPath) { alias \(directory.path)/list.json; }
              }
              server {
                listen 127.0.0.1:\(proxyPort);
                location / {
                  proxy_pass http://direct;
                  proxy_http_version 1.1;
                  proxy_set_header Connection "";
                  proxy_buffering on;
                }
              }
            }
            """
        let configFile = directory.appendingPathComponent("nginx.conf")
        try config.write(to: configFile, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("tmp"), withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
        process.arguments = ["-p", directory.path, "-c", configFile.path, "-e", directory.appendingPathComponent("logs/error.log").path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        Thread.sleep(forTimeInterval: 0.5)
        guard process.isRunning else {
            let log = (try? String(contentsOf: directory.appendingPathComponent("logs/error.log"), encoding: .utf8)) ?? ""
            throw BenchmarkError("nginx did not start: \(log)")
        }
    }

    /// CPU seconds used so far by nginx: its master and worker processes (from /proc).
    func cpuSeconds() -> Double {
        guard let master = process?.processIdentifier else { return 0 }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var total = 0.0
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // Fields after the command name: state, ppid, ... utime is the 12th, stime the 13th.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 12, let parent = Int32(fields[1]), pid == master || parent == master,
                  let user = Double(fields[11]), let system = Double(fields[12]) else { continue }
            total += (user + system) / ticks
        }
        return total
    }

    func stop() {
        guard let process, process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    static func configMap(name: String, index: Int, valueBytes: Int) -> String {
        let value = String(repeating: "abcdefghij", count: valueBytes / 10)
        return #"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"\#(name)","namespace":"default","uid":"8d1c6a7e-0000-4000-8000-\#(String(format: "%012d", index))","resourceVersion":"\#(1000 + index)","creationTimestamp":"2026-01-01T00:00:00Z","labels":{"app":"bench"}},"data":{"config":"\#(value)"}}"#
    }
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
