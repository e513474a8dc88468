import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Who a store instance runs as, so a later process can tell whether it is still alive.
///
/// `host` is the hostname plus the kernel boot id (Linux), so a reboot or another machine
/// never matches. `processStart` is the process start time in clock ticks since boot from
/// `/proc/<pid>/stat`; pid plus start time identifies a process even when pids are reused
/// (a restarted container's gateway is pid 1 again, with another start time).
/// Where `/proc` is missing, `processStart` is empty and liveness falls back to heartbeats.
struct ProcessIdentity: Hashable, Sendable {
    var host: String
    var pid: Int64
    var processStart: String

    static let current: ProcessIdentity = {
        let pid = Int64(getpid())
        return ProcessIdentity(host: hostIdentity(), pid: pid, processStart: startTime(of: pid) ?? "")
    }()

    /// True when `other` ran on this host and boot and provably no longer runs.
    /// False when it runs, or when that cannot be known from here.
    func provesDead(_ other: ProcessIdentity) -> Bool {
        guard other.host == host, !other.processStart.isEmpty, !processStart.isEmpty else { return false }
        if other.pid == pid { return other.processStart != processStart }
        guard let start = Self.startTime(of: other.pid) else { return true }
        return start != other.processStart
    }

    private static func hostIdentity() -> String {
        let name = ProcessInfo.processInfo.hostName
        let boot = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return boot.isEmpty ? name : "\(name)/\(boot)"
    }

    /// Field 22 of /proc/<pid>/stat; nil when the process does not exist (or no /proc).
    static func startTime(of pid: Int64) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // After "pid (comm)" come fields 3...; starttime is field 22, i.e. index 19 here.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? String(fields[19]) : nil
    }
}
