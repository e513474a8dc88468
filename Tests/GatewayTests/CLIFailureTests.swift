import Foundation
import KubeCore
import TestSupport
import XCTest

/// How the `agentgate` binary fails and logs, as a user or a log collector reads it: a runtime
/// failure is one `Error: ` sentence and exit status 1, a usage error keeps exit status 64 and
/// the usage text, and `--log-format json` keeps standard error one JSON object per line.
final class CLIFailureTests: XCTestCase {
    static let leakedTypeNames = ["NSCocoaErrorDomain", "HTTPClientError", "Error Domain=", "errno", "SocketAddressError", "IOError"]

    var binary: String { GatewayHarness.binary.path }
    var directory: URL!

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw XCTSkip("\(binary) is missing: run `swift build` first") }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentgate-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    /// Runs the binary and asserts the runtime-failure contract; returns the sentence.
    @discardableResult
    func assertRuntimeFailure(_ arguments: [String], mentions expected: [String], file: StaticString = #filePath,
                              line: UInt = #line) throws -> String {
        let result = try ProcessRunner.run(binary, arguments, timeout: 60)
        let command = "agentgate " + arguments.joined(separator: " ")
        XCTAssertEqual(result.status, 1, "\(command): \(result.output)", file: file, line: line)
        let lines = result.stderr.split(whereSeparator: \.isNewline)
        XCTAssertEqual(lines.count, 1, "\(command): one line, not \(result.stderr)", file: file, line: line)
        let sentence = String(lines.first ?? "")
        XCTAssertTrue(sentence.hasPrefix("Error: "), "\(command): \(sentence)", file: file, line: line)
        XCTAssertFalse(result.stderr.contains("Usage:"), "\(command): a runtime failure shows no usage: \(result.stderr)", file: file, line: line)
        for name in Self.leakedTypeNames {
            XCTAssertFalse(sentence.contains(name), "\(command) leaks \(name): \(sentence)", file: file, line: line)
        }
        for text in expected {
            XCTAssertTrue(sentence.contains(text), "\(command) should say \"\(text)\": \(sentence)", file: file, line: line)
        }
        return sentence
    }

    func assertUsageError(_ arguments: [String], mentions expected: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try ProcessRunner.run(binary, arguments, timeout: 60)
        let command = "agentgate " + arguments.joined(separator: " ")
        XCTAssertEqual(result.status, 64, "\(command): \(result.output)", file: file, line: line)
        XCTAssertTrue(result.stderr.hasPrefix("Error: "), "\(command): \(result.stderr)", file: file, line: line)
        XCTAssertTrue(result.stderr.contains("Usage: "), "\(command): a usage error shows the usage: \(result.stderr)", file: file, line: line)
        for text in expected {
            XCTAssertTrue(result.stderr.contains(text), "\(command) should say \"\(text)\": \(result.stderr)", file: file, line: line)
        }
    }

    func testUnreadableFilesAndUnreachableAdminAPIsExitOneWithOneSentenceNamingThem() throws {
        let notAFile = directory.appendingPathComponent("a-directory").path
        try FileManager.default.createDirectory(atPath: notAFile, withIntermediateDirectories: true)
        try assertRuntimeFailure(["operator", "--kubeconfig", notAFile], mentions: [notAFile])
        try assertRuntimeFailure(["gateway", "--kubeconfig", notAFile], mentions: [notAFile])
        try assertRuntimeFailure(["operator", "--kubeconfig", "/nonexistent/kubeconfig"], mentions: ["/nonexistent/kubeconfig"])
        try assertRuntimeFailure(["gateway", "--store-file", "/nonexistent"],
                                 mentions: ["--store-file /nonexistent: cannot be read: no such file or directory"])
        try assertRuntimeFailure(["generate", "crds", "--output-dir", "/proc/agentgate"], mentions: ["/proc/agentgate"])
        let ports = try (0..<4).map { _ in String(try LoopbackTCP.freePort()) }
        try assertRuntimeFailure(["dev", "--data-dir", "/proc/agentgate", "--api-port", ports[0], "--gateway-port", ports[1],
                                  "--admin-port", ports[2], "--issuer-port", ports[3]], mentions: ["/proc/agentgate"])

        // AsyncHTTPClient retries a refused connection until the request's deadline (30 s).
        let port = try LoopbackTCP.freePort()
        try assertRuntimeFailure(["sessions", "list", "--admin-url", "http://127.0.0.1:\(port)", "--token", "t"],
                                 mentions: ["http://127.0.0.1:\(port)", "connection refused"])
        try assertRuntimeFailure(["sessions", "list", "--data-dir", "/nonexistent"], mentions: ["/nonexistent"])
        // A data directory whose admin-address is not an http(s) URL.
        let data = directory.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        try "ftp://x\n".write(to: data.appendingPathComponent("admin-address"), atomically: true, encoding: .utf8)
        try "token\n".write(to: data.appendingPathComponent("admin-token"), atomically: true, encoding: .utf8)
        try assertRuntimeFailure(["sessions", "list", "--data-dir", data.path], mentions: ["ftp://x", "\"ftp\" is not supported"])
    }

    func testAWrongAdminTokenIsToldApartFromAMissingOne() async throws {
        let harness = try await GatewayHarness()
        do {
            let wrong = try assertRuntimeFailure(["sessions", "list", "--admin-url", harness.adminURL, "--token", "not-the-token"],
                                                 mentions: ["401", "the bearer token is not this gateway's admin token"])
            XCTAssertFalse(wrong.contains("is required"), wrong)
            let missing = try await GatewayHarness.send(.GET, "\(harness.adminURL)/api/v1/sessions")
            XCTAssertEqual(missing.status, 401)
            XCTAssertTrue(missing.body.contains("no bearer token"), missing.body)
            let right = try ProcessRunner.run(binary, ["sessions", "list", "--admin-url", harness.adminURL, "--token", harness.adminToken])
            XCTAssertEqual(right.status, 0, right.output)
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    func testUsageErrorsKeepExitStatus64AndTheUsage() throws {
        for command in [["operator"], ["gateway"], ["dev"], ["sessions", "list"]] {
            let help = try ProcessRunner.run(binary, command + ["--help"])
            XCTAssertEqual(help.status, 0, help.output)
            XCTAssertTrue(help.stdout.contains("OPTIONS:"), help.output)
        }
        try assertUsageError(["operator", "--no-such-flag"], mentions: ["--no-such-flag"])
        try assertUsageError(["gateway", "--log-format", "yaml"], mentions: ["--log-format", "yaml", "'text'", "'json'"])
        try assertUsageError(["operator", "--log-level", "loud"], mentions: ["--log-level", "warning", "critical"])
        try assertUsageError(["dev", "--log-format", "yaml"], mentions: ["--log-format"])
        try assertUsageError(["sessions", "list", "--admin-url", "ftp://x", "--token", "t"], mentions: ["--admin-url ftp://x"])
        try assertUsageError(["sessions", "list", "--admin-url", "http://127.0.0.1:1"], mentions: ["--admin-url needs --token"])
        try assertUsageError(["gateway", "--store", "sqlite:/tmp/x.db", "--store-file", "/tmp/x"], mentions: ["--store and --store-file"])
        try assertUsageError(["gateway", "--tls-cert", "/tmp/x"], mentions: ["--tls-cert and --tls-key"])
        try assertUsageError(["gateway", "--listen", "nonsense"], mentions: ["--listen nonsense"])
        try assertUsageError(["gateway", "--listen", "0.0.0.0:8443"], mentions: ["--listen 0.0.0.0:8443: plain HTTP is only served on loopback"])
    }

    /// Every line parses as a JSON object with the four fixed keys; returns them.
    func jsonLines(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [JSONValue] {
        text.split(whereSeparator: \.isNewline).compactMap { row in
            guard let value = try? JSONValue(parsing: Array(row.utf8)), value.objectValue != nil else {
                XCTFail("not a JSON object: \(row)", file: file, line: line)
                return nil
            }
            for key in ["time", "level", "label", "message"] {
                XCTAssertNotNil(value[key]?.stringValue, "\(key) missing: \(row)", file: file, line: line)
            }
            let time = value["time"]?.stringValue ?? ""
            XCTAssertNotNil(time.wholeMatch(of: #/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/#), "RFC 3339 with milliseconds: \(time)",
                            file: file, line: line)
            return value
        }
    }

    func testJSONLogsAreOneObjectPerLineAndLogLevelHidesLowerLevels() async throws {
        let harness = try await GatewayHarness()
        let kubeconfig = directory.appendingPathComponent("admin.kubeconfig")
        do {
            try harness.cluster.adminKubeconfig().write(to: kubeconfig, atomically: true, encoding: .utf8)
        } catch {
            await harness.stop()
            throw error
        }
        let operatorArguments = ["operator", "--kubeconfig", kubeconfig.path, "--metrics-address", "", "--health-address", "",
                                 "--log-format", "json"]
        // Stopped by SIGTERM after a few seconds: it logs its start, then shuts down cleanly.
        let info = try ProcessRunner.run(binary, operatorArguments, timeout: 4)
        let warning = try ProcessRunner.run(binary, operatorArguments + ["--log-level", "warning"], timeout: 4)
        await harness.stop()

        let lines = jsonLines(info.stderr)
        let starting = lines.first { $0["message"]?.stringValue == "operator starting" }
        XCTAssertNotNil(starting, info.stderr)
        XCTAssertEqual(starting?["level"]?.stringValue, "info")
        XCTAssertEqual(starting?["label"]?.stringValue, "agentgate.operator")
        XCTAssertEqual(starting?["gatewayNamespace"]?.stringValue, "agentgate-system", "metadata is flattened to top-level keys")

        let quiet = jsonLines(warning.stderr)
        XCTAssertFalse(quiet.contains { ["trace", "debug", "info", "notice"].contains($0["level"]?.stringValue ?? "") },
                       "--log-level warning hides info lines: \(warning.stderr)")
        XCTAssertFalse(warning.stderr.contains("operator starting"), warning.stderr)
    }

    func testARuntimeFailureWithJSONLogsIsAJSONLineToo() throws {
        let notAFile = directory.appendingPathComponent("a-directory").path
        try FileManager.default.createDirectory(atPath: notAFile, withIntermediateDirectories: true)
        for command in ["operator", "gateway"] {
            let result = try ProcessRunner.run(binary, [command, "--log-format", "json", "--kubeconfig", notAFile], timeout: 60)
            XCTAssertEqual(result.status, 1, result.output)
            let lines = jsonLines(result.stderr)
            XCTAssertEqual(lines.last?["level"]?.stringValue, "critical", result.stderr)
            let message = lines.last?["message"]?.stringValue ?? ""
            XCTAssertTrue(message.contains(notAFile), message)
            for name in Self.leakedTypeNames { XCTAssertFalse(message.contains(name), message) }
        }
    }
}
