import Foundation
import HTTPServing

/// A real OIDC issuer in its own process (scripts/e2e/oidc_issuer.py, built on joserfc, not on
/// the gateway's code), which a test can stop, restart on the same port, and whose keys it can
/// rotate while it runs. Tokens are minted from the same state directory, so they can be had
/// while the issuer is down.
public final class OIDCIssuerProcess: @unchecked Sendable {
    public static var script: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/e2e/oidc_issuer.py")
    }

    public let port: Int
    public let state: URL
    private var running: RunningProcess?

    /// The issuer URL of `tenant` ("" is the root): `http://127.0.0.1:PORT[/tenant]`.
    public func issuer(tenant: String = "") -> String {
        "http://127.0.0.1:\(port)" + (tenant.isEmpty ? "" : "/" + tenant)
    }

    /// Creates the state directory; call ``start()`` to serve.
    public init() throws {
        port = try LoopbackPort.free()
        state = FileManager.default.temporaryDirectory.appendingPathComponent("oidc-issuer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: state)
    }

    /// Whether python3 can import joserfc (.ci/run installs it).
    public static func unavailableReason() -> String? {
        guard let probe = try? ProcessRunner.run("python3", ["-c", "import joserfc"]), probe.status == 0 else {
            return "python3 with joserfc is not installed (.ci/run installs it)"
        }
        return nil
    }

    /// Starts serving and waits until it accepts connections.
    public func start() throws {
        let (process, pipe) = try ProcessRunner.start("python3", [Self.script.path, "serve", "--state", state.path, "--port", String(port)])
        let running = RunningProcess(process: process, pipe: pipe)
        self.running = running
        guard running.wait(for: "listening", timeout: 30) else {
            throw Failure(description: "the OIDC issuer did not start: \(running.output)")
        }
    }

    /// Stops the process (SIGTERM, then SIGKILL after 5 s) and waits for it to exit: the port
    /// refuses connections.
    public func stop() {
        guard let running else { return }
        running.process.terminate()
        let deadline = Date().addingTimeInterval(5)
        while running.process.isRunning && Date() < deadline { usleep(20_000) }
        if running.process.isRunning { kill(running.process.processIdentifier, SIGKILL) }
        running.process.waitUntilExit()
        self.running = nil
    }

    public func addKey(_ kid: String, alg: String = "ES256", tenant: String = "") throws {
        try command(["add-key", "--kid", kid, "--alg", alg], tenant: tenant)
    }

    public func removeKey(_ kid: String, tenant: String = "") throws {
        try command(["remove-key", "--kid", kid], tenant: tenant)
    }

    /// `Cache-Control: max-age` of the JWKS answer; nil sends none.
    public func setMaxAge(_ seconds: Int?, tenant: String = "") throws {
        try command(["set"] + (seconds.map { ["--max-age", String($0)] } ?? ["--no-max-age"]), tenant: tenant)
    }

    /// Tokens signed by `kid`, one per claims object.
    public func mint(kid: String, claims: [[String: Any]], tenant: String = "") throws -> [String] {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: claims), as: UTF8.self)
        return try command(["mint", "--kid", kid, "--claims", json], tenant: tenant)
            .split(separator: "\n").map(String.init)
    }

    /// How many times the JWKS of `tenant` was requested.
    public func jwksRequests(tenant: String = "") -> Int {
        let log = (try? String(contentsOf: state.appendingPathComponent("requests.log"), encoding: .utf8)) ?? ""
        let path = (tenant.isEmpty ? "" : "/" + tenant) + "/keys"
        return log.split(separator: "\n").filter { $0.removingPercentEncoding == "GET " + path }.count
    }

    @discardableResult
    private func command(_ arguments: [String], tenant: String) throws -> String {
        let run = try ProcessRunner.run("python3", [Self.script.path] + Array(arguments.prefix(1))
            + ["--state", state.path, "--tenant", tenant] + Array(arguments.dropFirst()))
        guard run.status == 0 else { throw Failure(description: "oidc_issuer.py \(arguments.first ?? ""): \(run.output)") }
        return run.stdout
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }
}
