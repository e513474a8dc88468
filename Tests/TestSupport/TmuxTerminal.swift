import Foundation

/// A real terminal for interactive tests: a tmux server of the test's own (its own socket,
/// so nothing else's sessions are touched) running one detached session, which the test
/// types into and reads the screen of, as a person at a keyboard would.
public final class TmuxTerminal {
    public struct ScreenTimeout: Error, CustomStringConvertible {
        public var marker: String
        public var screen: String
        public var description: String { "screen never showed \(marker.debugDescription):\n\(screen)" }
    }

    public let socket = "agentgate-test-\(UUID().uuidString.prefix(8))"
    public let width: Int
    public let height: Int

    /// Nil when tmux is not installed.
    public init?(width: Int = 100, height: Int = 30) {
        guard (try? ProcessRunner.run("tmux", ["-V"]))?.status == 0 else { return nil }
        self.width = width
        self.height = height
    }

    @discardableResult
    public func tmux(_ arguments: String...) throws -> ProcessResult {
        try ProcessRunner.run("tmux", ["-L", socket] + arguments, timeout: 10)
    }

    /// Starts the server with one detached session running `command`; returns tmux's exit
    /// status. The server tmux forks inherits every descriptor its client had — the output
    /// pipes, and the one Foundation's Process watches to learn that the client exited — and
    /// would hold them for its lifetime; so the client starts with only stdin, stdout and
    /// stderr, all null.
    public func start(_ command: String) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        let closeInherited = #"for fd in /proc/$$/fd/*; do n=${fd##*/}; if [ "$n" -gt 2 ]; then eval "exec $n>&-"; fi; done 2>/dev/null; exec "$@""#
        process.arguments = ["-c", closeInherited, "bash", "tmux", "-L", socket, "new-session", "-d", "-s", "term",
                             "-x", String(width), "-y", String(height), command]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Types `keys` (tmux key names such as `Enter` are keys).
    public func send(_ keys: String...) throws {
        _ = try ProcessRunner.run("tmux", ["-L", socket, "send-keys", "-t", "term"] + keys, timeout: 10)
    }

    /// The pane's text once it contains `marker`; throws ``ScreenTimeout`` after `timeout`.
    public func screen(containing marker: String, timeout: Double = 20) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var text = ""
        while Date() < deadline {
            text = try tmux("capture-pane", "-p", "-t", "term").stdout
            if text.contains(marker) { return text }
            usleep(100_000)
        }
        throw ScreenTimeout(marker: marker, screen: text)
    }

    public func kill() {
        _ = try? tmux("kill-server")
    }
}
