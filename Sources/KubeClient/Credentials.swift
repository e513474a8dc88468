import Foundation
import KubeCore

/// Produces the `Authorization` header for each request from ``KubeConfig/Credentials``.
///
/// Contract:
/// - a static token or basic credentials never change;
/// - a token file is re-read when its modification time, size or inode changes (`stat` follows
///   the symlinks kubelet swaps on rotation), so a rotated token is used on the next request;
/// - an exec plugin runs at most once per validity period: its token is cached until
///   `status.expirationTimestamp` (with 10 s of slack), or until the server answers 401
///   (``invalidate()``), or forever when the plugin gives no expiry, as client-go does.
///   Concurrent requests share one plugin run.
final class CredentialProvider: @unchecked Sendable {
    private let credentials: KubeConfig.Credentials
    private let server: String
    private let lock = NSLock()
    // Token file state.
    private var fileStamp: (mtime: Int, mtimeNanos: Int, size: Int, inode: UInt64)?
    private var fileToken: String?
    // Exec plugin state.
    private var execToken: String?
    private var execExpiry: Date?
    private var execRun: Task<(token: String, expiry: Date?), Error>?

    init(_ credentials: KubeConfig.Credentials, server: String) {
        self.credentials = credentials
        self.server = server
    }

    /// The header value (`Bearer ...` / `Basic ...`), or nil for anonymous requests.
    func authorization() async throws -> String? {
        switch credentials {
        case .none: return nil
        case .token(let token): return "Bearer \(token)"
        case .basic(let user, let password): return "Basic \(Data("\(user):\(password)".utf8).base64EncodedString())"
        case .tokenFile(let path): return "Bearer \(try readTokenFile(path))"
        case .exec(let exec): return "Bearer \(try await execToken(exec))"
        }
    }

    /// Drops cached plugin output after a 401, so the next request runs the plugin again.
    /// Returns whether retrying can help (only for exec plugins and token files).
    func invalidate() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        switch credentials {
        case .exec:
            execToken = nil
            execExpiry = nil
            return true
        case .tokenFile:
            fileStamp = nil
            return true
        default:
            return false
        }
    }

    private func readTokenFile(_ path: String) throws -> String {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw KubeConfigError("token file \(path) cannot be read: \(String(cString: strerror(errno)))")
        }
        let stamp = (mtime: Int(info.st_mtim.tv_sec), mtimeNanos: Int(info.st_mtim.tv_nsec), size: Int(info.st_size), inode: UInt64(info.st_ino))
        lock.lock()
        if let current = fileStamp, current == stamp, let token = fileToken {
            lock.unlock()
            return token
        }
        lock.unlock()
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KubeConfigError("token file \(path) cannot be read")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw KubeConfigError("token file \(path) is empty") }
        lock.lock()
        fileStamp = stamp
        fileToken = token
        lock.unlock()
        return token
    }

    private func execToken(_ exec: ExecConfig) async throws -> String {
        let server = self.server
        let cached: String?
        let pending: Task<(token: String, expiry: Date?), Error>?
        (cached, pending) = lock.withLock {
            if let token = execToken, execExpiry.map({ $0.timeIntervalSinceNow > 10 }) ?? true {
                return (token, nil)
            }
            if let running = execRun { return (nil, running) }
            let started = Task { try await ExecPlugin.run(exec, server: server) }
            execRun = started
            return (nil, started)
        }
        if let cached { return cached }
        guard let task = pending else { throw CancellationError() }
        do {
            let (token, expiry) = try await task.value
            lock.withLock {
                execToken = token
                execExpiry = expiry
                execRun = nil
            }
            return token
        } catch {
            lock.withLock { execRun = nil }
            throw error
        }
    }
}

/// Runs a client-go credential plugin and reads its `ExecCredential`.
enum ExecPlugin {
    static func run(_ exec: ExecConfig, server: String) async throws -> (token: String, expiry: Date?) {
        let output: (status: Int32, stdout: Data, stderr: Data) = try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                let process = Process()
                if exec.command.contains("/") {
                    process.executableURL = URL(fileURLWithPath: exec.command)
                    process.arguments = exec.args
                } else {
                    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                    process.arguments = [exec.command] + exec.args
                }
                var environment = ProcessInfo.processInfo.environment
                environment.merge(exec.env) { _, new in new }
                let info: JSONValue = [
                    "apiVersion": .string(exec.apiVersion), "kind": "ExecCredential",
                    "spec": ["interactive": false],
                ]
                environment["KUBERNETES_EXEC_INFO"] = info.serializedString()
                process.environment = environment
                let stdout = Pipe(), stderr = Pipe()
                process.standardOutput = stdout
                process.standardError = stderr
                process.standardInput = FileHandle.nullDevice
                do {
                    try process.run()
                } catch {
                    let hint = exec.installHint.map { "\n\($0)" } ?? ""
                    continuation.resume(throwing: KubeConfigError("\(exec.origin): cannot run \(exec.command): \(error.localizedDescription)\(hint)"))
                    return
                }
                // Read stderr concurrently so a chatty plugin cannot fill the pipe and block.
                let errBox = DataBox()
                let group = DispatchGroup()
                group.enter()
                DispatchQueue.global().async {
                    errBox.set(stderr.fileHandleForReading.readDataToEndOfFile())
                    group.leave()
                }
                let outData = stdout.fileHandleForReading.readDataToEndOfFile()
                group.wait()
                process.waitUntilExit()
                continuation.resume(returning: (status: process.terminationStatus, stdout: outData, stderr: errBox.get()))
            }
        }
        guard output.status == 0 else {
            let message = String(decoding: output.stderr.prefix(1000), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw KubeConfigError("\(exec.origin): \(exec.command) exited with status \(output.status): \(message)")
        }
        let credential: JSONValue
        do {
            credential = try JSONValue(parsing: output.stdout)
        } catch {
            throw KubeConfigError("\(exec.origin): \(exec.command) did not print an ExecCredential as JSON: \(error)")
        }
        guard credential["kind"]?.stringValue == "ExecCredential" else {
            throw KubeConfigError("\(exec.origin): \(exec.command) printed kind \(credential["kind"]?.stringValue ?? "(none)"), want ExecCredential")
        }
        if let version = credential["apiVersion"]?.stringValue, version != exec.apiVersion {
            throw KubeConfigError("\(exec.origin): plugin answered apiVersion \(version), but the kubeconfig asks for \(exec.apiVersion)")
        }
        guard let token = credential[path: ["status", "token"]]?.stringValue, !token.isEmpty else {
            throw KubeConfigError("\(exec.origin): the ExecCredential has no status.token (client certificates from plugins are not supported)")
        }
        var expiry: Date?
        if let text = credential[path: ["status", "expirationTimestamp"]]?.stringValue {
            guard let date = KubeTime.parse(text) else {
                throw KubeConfigError("\(exec.origin): status.expirationTimestamp \"\(text)\" is not an RFC 3339 time")
            }
            expiry = date
        }
        return (token, expiry)
    }
}

/// Output read on another thread (a plugin's stderr), handed over under a lock.
private final class DataBox: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ value: Data) { lock.lock(); data = value; lock.unlock() }
    func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
}
