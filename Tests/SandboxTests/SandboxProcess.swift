import Foundation
import HTTPServing
import TestSupport
import XCTest

/// `agentgate dev` as a user runs it: the built binary, in its own working directory (with
/// `samples/` and `.build/` linked from the repository, as in a checkout), stopped with
/// Ctrl-C (SIGINT).
final class SandboxProcess {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static var binDirectory: URL { repositoryRoot.appendingPathComponent(".build/debug") }
    static var binary: String { binDirectory.appendingPathComponent("agentgate").path }

    let workDirectory: URL
    let dataDirectory: URL
    let ports: Ports
    let process: Process
    private let output = LockedText()

    struct Ports {
        var api = 16443, gateway = 18443, admin = 18444, issuer = 18445
        static let defaults = Ports()
        /// Four ports free right now.
        static func free() throws -> Ports {
            let picked = try (0..<4).map { _ in try LoopbackPort.free() }
            guard Set(picked).count == 4 else { return try free() }
            return Ports(api: picked[0], gateway: picked[1], admin: picked[2], issuer: picked[3])
        }
        var flags: [String] {
            ["--api-port", "\(api)", "--gateway-port", "\(gateway)", "--admin-port", "\(admin)", "--issuer-port", "\(issuer)"]
        }
    }

    /// Starts the sandbox and waits until it says it is running (its first start applies the
    /// scenario and waits for the connection, so this can take a while on a busy machine).
    init(ports: Ports = .defaults, extraArguments: [String] = [], workDirectory existing: URL? = nil) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw SandboxTestError("\(Self.binary) is missing: run `swift build` first (scripts/test.sh builds it)")
        }
        self.ports = ports
        if let existing {
            workDirectory = existing
        } else {
            workDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("agentgate-sandbox-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: workDirectory, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(at: workDirectory.appendingPathComponent("samples"),
                                                       withDestinationURL: Self.repositoryRoot.appendingPathComponent("samples"))
            try FileManager.default.createSymbolicLink(at: workDirectory.appendingPathComponent(".build"),
                                                       withDestinationURL: Self.repositoryRoot.appendingPathComponent(".build"))
        }
        dataDirectory = workDirectory.appendingPathComponent(".agentgate")
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["dev"] + (ports.api == Ports.defaults.api ? [] : ports.flags) + extraArguments
        process.currentDirectoryURL = workDirectory
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        let output = self.output
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if !data.isEmpty { output.append(String(decoding: data, as: UTF8.self)) }
        }
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while !output.text.contains("Press Ctrl-C to stop.") {
            if !process.isRunning {
                throw SandboxTestError("agentgate dev exited with \(process.terminationStatus):\n\(output.text)")
            }
            if Date() > deadline {
                stop()
                throw SandboxTestError("agentgate dev did not report running within 120 s:\n\(output.text)")
            }
            usleep(100_000)
        }
    }

    var text: String { output.text }

    /// Ctrl-C, and wait for a clean exit.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning {
            kill(process.processIdentifier, SIGINT)
            let deadline = Date().addingTimeInterval(20)
            while process.isRunning && Date() < deadline { usleep(50_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Runs `command` with bash in the work directory, the build directory first on PATH.
    func shell(_ command: String, timeout: Double = 120) throws -> ProcessResult {
        try ProcessRunner.run("bash", ["-c", "cd '\(workDirectory.path)' && \(command)"],
                              environment: ["PATH": "\(Self.binDirectory.path):\(ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")",
                                            "KUBECONFIG": dataDirectory.appendingPathComponent("admin.kubeconfig").path],
                              timeout: timeout)
    }

    func removeWorkDirectory() {
        try? FileManager.default.removeItem(at: workDirectory)
    }
}

struct SandboxTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
