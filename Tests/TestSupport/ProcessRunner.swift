import Foundation

/// What a finished program printed and how it exited.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var output: String { stdout + "\n" + stderr }
}

/// Runs real programs (kubectl, python3, the agentgate binary) for end-to-end tests.
public enum ProcessRunner {
    /// Runs `executable` (looked up on PATH) and captures its output; terminates it after
    /// `timeout` seconds so a hung program fails the test instead of hanging it.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                           input: String? = nil, timeout: Double = 60) throws -> ProcessResult {
        let process = makeProcess(executable, arguments, environment)
        let out = Pipe(), err = Pipe(), inPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
        try process.run()
        if let input {
            inPipe.fileHandleForWriting.write(Data(input.utf8))
            try? inPipe.fileHandleForWriting.close()
        }
        let stdoutText = LockedText(), stderrText = LockedText()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { stdoutText.append(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)); group.leave() }
        group.enter()
        DispatchQueue.global().async { stderrText.append(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)); group.leave() }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        group.wait()
        return ProcessResult(status: process.terminationStatus, stdout: stdoutText.text, stderr: stderrText.text)
    }

    /// Starts a long-running program (`kubectl get -w`, `agentgate operator`) with stdout and
    /// stderr on one pipe; the caller terminates it.
    public static func start(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (Process, Pipe) {
        let process = makeProcess(executable, arguments, environment)
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return (process, out)
    }
}

extension ProcessRunner {
    /// `executable` looked up on PATH (or a path), with the test's environment plus `environment`.
    static func makeProcess(_ executable: String, _ arguments: [String], _ environment: [String: String]) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        return process
    }
}

/// Text appended from several threads.
public final class LockedText: @unchecked Sendable {
    private let lock = NSLock()
    private var value = ""
    public init() {}
    public func append(_ text: String) { lock.withLock { value += text } }
    public var text: String { lock.withLock { value } }
}

/// A long-running program started by ``ProcessRunner/start(_:_:environment:)`` (`kubectl
/// port-forward`, `kubectl get -w`), with its combined output collected as it arrives.
public final class RunningProcess: @unchecked Sendable {
    public let process: Process
    private let text = LockedText()

    public init(process: Process, pipe: Pipe) {
        self.process = process
        let text = self.text
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            guard !data.isEmpty else { handle.readabilityHandler = nil; return }
            text.append(String(decoding: data, as: UTF8.self))
        }
    }

    public var output: String { text.text }

    /// Waits until the output contains `marker` (true) or `timeout` passes (false).
    public func wait(for marker: String, timeout: Double = 20) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if output.contains(marker) { return true }
            usleep(50_000)
        }
        return output.contains(marker)
    }
}
