import AgentGateAPI
import Foundation
import Gateway
import HTTPServing
import KubeCore
import SessionStore
import TestSupport
import XCTest

/// A gateway in front of the embedded API server with one pod, `shell`, whose env holds an
/// AWS key and the connection's own credential (as a careless pod spec might) — what the exec
/// tests of both transports start from.
class ExecPodFixture: XCTestCase {
    var harness: GatewayHarness!
    var token = ""
    /// An AWS access key id the masker's built-in detectors know.
    let awsKey = "AKIAQWERTYUIOPASDFGH"

    override func setUp() async throws {
        harness = try await GatewayHarness()
        token = try await harness.token()
        try await harness.cluster.applyObject([
            "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "shell", "namespace": "default"],
            "spec": ["containers": [["name": "main", "image": "busybox", "env": [
                ["name": "AWS_ACCESS_KEY_ID", "value": .string(awsKey)],
                ["name": "LEAKED_TOKEN", "value": .string(harness.saToken)],
            ]]]],
        ])
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    func streamExchanges(_ subresource: String) async throws -> [ExchangeRecord] {
        try await harness.exchanges().filter { $0.subresource == subresource }
    }

    /// Runs a two-line command through the gateway (with `environment` for kubectl), then plays
    /// its session back with `agentgate sessions replay` and `--format asciicast`: the replay
    /// shows the terminal's lines, and the cast (v2, 80x24) holds exactly what kubectl printed.
    /// Returns the replay command's result.
    func execThenReplay(environment: [String: String] = [:], file: StaticString = #filePath,
                        line: UInt = #line) async throws -> ProcessResult {
        let binary = GatewayHarness.binary.path
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw XCTSkip("\(binary) is missing: run `swift build` first") }
        let result = try harness.kubectl(["exec", "shell", "--", "sh", "-c", "echo first line; echo second line"], token: token,
                                         environment: environment)
        XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
        _ = try await completed("exec")
        let admin = AdminAPI(store: harness.store, token: "admin-token-for-replay")
        let server = HTTPServer()
        let port = try await server.start(host: "127.0.0.1", port: 0, tls: nil) { await admin.handle($0) }
        defer { Task { await server.shutdown() } }
        let sessions = try await harness.store.listSessions(SessionFilter(limit: 10))
        let session = try XCTUnwrap(sessions.first).id
        let target = ["--admin-url", "http://127.0.0.1:\(port)", "--token", "admin-token-for-replay"]

        let replay = try ProcessRunner.run(binary, ["sessions", "replay", session, "--speed", "4"] + target, timeout: 30)
        XCTAssertEqual(replay.status, 0, replay.stderr, file: file, line: line)
        XCTAssertTrue(replay.stdout.contains("first line\nsecond line\n"), "the exec stream is played as the terminal showed it: \(replay.stdout)",
                      file: file, line: line)

        let cast = try ProcessRunner.run(binary, ["sessions", "replay", session, "--format", "asciicast"] + target, timeout: 30)
        XCTAssertEqual(cast.status, 0, cast.stderr, file: file, line: line)
        let lines = cast.stdout.split(separator: "\n")
        let header = try JSONValue(parsing: Array(lines[0].utf8))
        XCTAssertEqual(header["version"]?.intValue, 2, file: file, line: line)
        XCTAssertEqual(header["width"]?.intValue, 80, file: file, line: line)
        XCTAssertEqual(header["height"]?.intValue, 24, file: file, line: line)
        let output = try lines.dropFirst().map { line -> String in
            let event = try JSONValue(parsing: Array(line.utf8)).arrayValue ?? []
            XCTAssertEqual(event.count, 3)
            XCTAssertEqual(event[1].stringValue, "o")
            return event[2].stringValue ?? ""
        }.joined()
        XCTAssertEqual(output, result.stdout, "the cast plays back what kubectl printed", file: file, line: line)
        return replay
    }

    /// Waits until the stream's exchange is completed (the proxy completes it as the stream ends).
    func completed(_ subresource: String) async throws -> ExchangeRecord {
        try await eventually(5, "the \(subresource) exchange is completed") {
            try await self.streamExchanges(subresource).last.map { $0.state != .inProgress } ?? false
        }
        let done = try await streamExchanges(subresource).last
        return try XCTUnwrap(done)
    }

    /// Runs `env` in the pod (kubectl with `environment`): the AWS key and the gateway's
    /// credential in it reach neither kubectl's output nor the record; the rest does.
    func assertEnvIsMaskedForTheAgentAndInTheRecord(environment: [String: String] = [:], file: StaticString = #filePath,
                                                     line: UInt = #line) async throws {
        let result = try harness.kubectl(["exec", "shell", "--", "env"], token: token, environment: environment)
        XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
        XCTAssertTrue(result.stdout.contains("AWS_ACCESS_KEY_ID="), result.stdout, file: file, line: line)
        XCTAssertFalse(result.stdout.contains(awsKey), "the agent never sees the key: \(result.stdout)", file: file, line: line)
        XCTAssertFalse(result.stdout.contains(harness.saToken), "nor the gateway's credential", file: file, line: line)
        XCTAssertTrue(result.stdout.contains("HOSTNAME=shell"), "the rest of the output is intact: \(result.stdout)",
                      file: file, line: line)

        let exchange = try await completed("exec")
        let recorded = try await harness.store.streamChunks(exchangeID: exchange.id).flatMap(\.data)
        let text = String(decoding: recorded, as: UTF8.self)
        XCTAssertTrue(text.contains("AWS_ACCESS_KEY_ID="), text, file: file, line: line)
        XCTAssertFalse(text.contains(awsKey), "the record holds the masked output: \(text)", file: file, line: line)
        XCTAssertFalse(text.contains(harness.saToken), file: file, line: line)
    }

    /// Checks the record of an exec that exited with code 3 (kubectl's `verb` for it, and why)
    /// and returns its stream chunks: the exit status is the exchange's response body and the
    /// last chunk.
    func assertExitCodeThreeRecorded(verb: String, _ why: String, file: StaticString = #filePath,
                                     line: UInt = #line) async throws -> [StreamChunk] {
        let exchange = try await completed("exec")
        XCTAssertEqual(exchange.statusCode, 101, file: file, line: line)
        XCTAssertEqual(exchange.state, .complete, file: file, line: line)
        XCTAssertEqual(exchange.verb, verb, why, file: file, line: line)
        XCTAssertEqual(exchange.kubectlCommand, "kubectl exec", file: file, line: line)
        let status = try JSONValue(parsing: exchange.responseBody ?? [])
        XCTAssertEqual(status["reason"]?.stringValue, "NonZeroExitCode", "the exit status is the exchange's response body",
                       file: file, line: line)
        XCTAssertEqual(status[path: ["details", "causes"]]?.arrayValue?.first?["message"]?.stringValue, "3", file: file, line: line)
        let chunks = try await harness.store.streamChunks(exchangeID: exchange.id)
        XCTAssertEqual(chunks.last?.channel, "status", file: file, line: line)
        return chunks
    }
}

/// `kubectl exec` and `kubectl attach` (v1.32, WebSocket `v5.channel.k8s.io`) through the
/// gateway against the embedded API server's scripted shell: output and exit codes reach
/// the agent, the stream is recorded per channel, masked, and replays to what the agent saw.
final class GatewayExecKubectlTests: ExecPodFixture {
    func testExecCommandPrintsOutputAndReturnsItsExitCode() async throws {
        let ok = try harness.kubectl(["exec", "shell", "--", "echo", "hello", "through", "the", "gateway"], token: token)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(ok.stdout, "hello through the gateway\n")

        let failed = try harness.kubectl(["exec", "shell", "--", "sh", "-c", "echo partial; exit 3"], token: token)
        XCTAssertEqual(failed.status, 3, "kubectl exits with the command's exit code: \(failed.stderr)")
        XCTAssertEqual(failed.stdout, "partial\n")
        XCTAssertTrue(failed.stderr.contains("command terminated with exit code 3"), failed.stderr)

        let chunks = try await assertExitCodeThreeRecorded(verb: "get", "kubectl's WebSocket exec is a GET")
        XCTAssertEqual(chunks.filter { $0.channel == "stdout" }.flatMap(\.data), Array("partial\n".utf8))
    }

    func testRecordedExecStreamReplaysToTheOutputTheAgentSawAndExportsAsciicast() async throws {
        let result = try harness.kubectl(["exec", "shell", "--", "sh", "-c", "echo one; ls; hostname; cat /nope"], token: token)
        XCTAssertEqual(result.status, 1, result.stderr)
        let exchange = try await completed("exec")
        let recording = TerminalRecording(try await harness.store.streamChunks(exchangeID: exchange.id))
        let stdout = try await harness.store.streamChunks(exchangeID: exchange.id).filter { $0.channel == "stdout" }.flatMap(\.data)
        XCTAssertEqual(String(decoding: stdout, as: UTF8.self), result.stdout, "recorded stdout is what kubectl printed")
        XCTAssertTrue(String(decoding: recording.output, as: UTF8.self).hasPrefix(result.stdout))
        XCTAssertTrue(String(decoding: recording.output, as: UTF8.self).hasSuffix(result.stderr.components(separatedBy: "command terminated").first ?? ""))

        var played: [UInt8] = []
        try await recording.play(speed: 0) { played += $0 }
        XCTAssertEqual(played, recording.output, "playback writes the recorded output")

        let cast = recording.asciicast(title: "kubectl exec default/shell")
        let lines = cast.split(separator: "\n").map(String.init)
        let header = try JSONValue(parsing: Array(lines[0].utf8))
        XCTAssertEqual(header["version"]?.intValue, 2)
        XCTAssertEqual(header["width"]?.intValue, 80)
        XCTAssertEqual(header["height"]?.intValue, 24)
        XCTAssertNotNil(header["timestamp"]?.intValue)
        var text = ""
        var previous = 0.0
        for line in lines.dropFirst() {
            let event = try JSONValue(parsing: Array(line.utf8)).arrayValue ?? []
            XCTAssertEqual(event.count, 3, line)
            let time = event[0].doubleValue ?? Double(event[0].intValue ?? -1)
            XCTAssertGreaterThanOrEqual(time, previous, "event times never go back: \(line)")
            previous = time
            XCTAssertEqual(event[1].stringValue, "o", line)
            text += event[2].stringValue ?? ""
        }
        XCTAssertEqual(text, String(decoding: recording.output, as: UTF8.self), "the cast's output events are the recorded output")
    }

    func testSecretPrintedByTheCommandIsMaskedForTheAgentAndInTheRecord() async throws {
        try await assertEnvIsMaskedForTheAgentAndInTheRecord()
    }

    func testInjectedCredentialNeverAppearsInAnyRecordedFrameOrBody() async throws {
        _ = try harness.kubectl(["exec", "shell", "--", "printenv", "LEAKED_TOKEN"], token: token)
        _ = try harness.kubectl(["exec", "-i", "shell", "--", "cat"], token: token, input: "typed \(harness.saToken)\n")
        _ = try harness.kubectl(["attach", "-i", "shell"], token: token, input: "echo \(harness.saToken)\nexit 0\n")
        _ = try await completed("attach")
        let secret = Array(harness.saToken.utf8)
        func contains(_ haystack: [UInt8]?) -> Bool {
            guard let haystack, haystack.count >= secret.count else { return false }
            return (0...(haystack.count - secret.count)).contains { Array(haystack[$0..<($0 + secret.count)]) == secret }
        }
        let exchanges = try await harness.exchanges()
        XCTAssertGreaterThanOrEqual(exchanges.filter { !$0.subresource.isEmpty }.count, 3)
        for exchange in exchanges {
            XCTAssertFalse(contains(exchange.requestBody) || contains(exchange.responseBody), "exchange \(exchange.sequence) \(exchange.path)")
            for chunk in try await harness.store.streamChunks(exchangeID: exchange.id) {
                XCTAssertFalse(contains(chunk.data), "chunk \(chunk.sequence) on \(chunk.channel) of \(exchange.path) holds the credential")
            }
        }
    }

    func testAttachWithStdinRunsTypedLinesAndIsRecordedAsAttach() async throws {
        let result = try harness.kubectl(["attach", "-i", "shell"], token: token, input: "echo attached-hello\nexit 0\n")
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("attached-hello"), result.stdout + result.stderr)
        let exchange = try await completed("attach")
        XCTAssertEqual(exchange.statusCode, 101)
        let chunks = try await harness.store.streamChunks(exchangeID: exchange.id)
        XCTAssertEqual(String(decoding: chunks.filter { $0.channel == "stdin" }.flatMap(\.data), as: UTF8.self),
                       "echo attached-hello\nexit 0\n", "typed input is recorded")
        XCTAssertTrue(String(decoding: chunks.filter { $0.channel == "stdout" }.flatMap(\.data), as: UTF8.self).contains("attached-hello\n"))
    }

    func testExecIsRefusedByAccessRulesLikeAnyOtherVerb() async throws {
        harness.config.access = AccessPolicy(rules: [AccessRule(name: "no-exec", action: .deny, resources: ["pods/exec"])])
        harness.registry.put(harness.config, token: harness.saToken)
        let result = try harness.kubectl(["exec", "shell", "--", "echo", "no"], token: token)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("forbidden") || result.stderr.contains("Forbidden"), result.stderr)
        XCTAssertFalse(result.stdout.contains("no"))
        let refused = try await streamExchanges("exec")
        XCTAssertFalse(refused.isEmpty)
        XCTAssertTrue(refused.allSatisfy { $0.statusCode == 403 }, "\(refused.map(\.statusCode))")
    }

    func testSessionsReplayCommandPrintsTheStreamAndExportsAsciicast() async throws {
        let replay = try await execThenReplay()
        XCTAssertTrue(replay.stdout.contains("/pods/shell/exec"), replay.stdout)
    }

    func testExecReachesAnHTTPSAPIServerTrustedByItsCA() async throws {
        let secure = try await GatewayHarness(upstreamTLS: true)
        do {
            XCTAssertTrue(secure.cluster.url.hasPrefix("https://"), secure.cluster.url)
            try await secure.cluster.applyObject([
                "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "shell", "namespace": "default"],
                "spec": ["containers": [["name": "main", "image": "busybox"]]],
            ])
            let agent = try await secure.token()
            let result = try secure.kubectl(["exec", "shell", "--", "sh", "-c", "echo over tls; exit 4"], token: agent)
            XCTAssertEqual(result.status, 4, result.stderr)
            XCTAssertEqual(result.stdout, "over tls\n")
        } catch {
            await secure.stop()
            throw error
        }
        await secure.stop()
    }

    func testExecStreamsOffRecordsTheExchangeButNoFrames() async throws {
        harness.config.recording = RecordingPolicySpec(capture: CaptureSettings(execStreams: false))
        harness.registry.put(harness.config, token: harness.saToken)
        let result = try harness.kubectl(["exec", "shell", "--", "echo", "unrecorded"], token: token)
        XCTAssertEqual(result.stdout, "unrecorded\n", result.stderr)
        let exchange = try await completed("exec")
        XCTAssertEqual(exchange.statusCode, 101)
        let chunks = try await harness.store.streamChunks(exchangeID: exchange.id)
        XCTAssertEqual(chunks, [], "capture.execStreams false: who exec'd what is recorded, not the stream")
    }

    func testExecIsRefusedWhenTheRecorderIsDownUnderFailClosed() async throws {
        try await harness.store.close()
        // kubectl's own discovery would be refused first; this is its exec handshake.
        let client = try LoopbackTCP(port: harness.port)
        try client.write("GET /c/default/conn/api/v1/namespaces/default/pods/shell/exec?command=echo&stdout=true HTTP/1.1\r\n"
            + "Host: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n")
        var answer = ""
        while !answer.contains("}") {
            let bytes = try client.readSome()
            if bytes.isEmpty { break }
            answer += String(decoding: bytes, as: UTF8.self)
        }
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 503"), "the upgrade is refused, not switched: \(answer)")
        XCTAssertTrue(answer.contains("session recorder is unavailable"), answer)
    }

    func testExecToMissingPodGetsTheAPIServersNotFound() async throws {
        let result = try harness.kubectl(["exec", "nope", "--", "echo"], token: token)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("not found"), result.stderr)
    }
}

/// `kubectl exec -it` through the gateway in a real terminal (tmux): typed input, TTY echo,
/// resize and the exit code, and the recording of it all.
final class GatewayInteractiveExecTests: XCTestCase {
    var harness: GatewayHarness!
    var terminal: TmuxTerminal!

    override func setUp() async throws {
        guard let terminal = TmuxTerminal(width: 100, height: 30) else {
            throw XCTSkip("tmux is not installed (apt-get install -y tmux; .ci/run installs it)")
        }
        self.terminal = terminal
        harness = try await GatewayHarness()
        try await harness.cluster.applyObject([
            "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "shell", "namespace": "default"],
            "spec": ["containers": [["name": "main", "image": "busybox"]]],
        ])
    }

    override func tearDown() async throws {
        terminal?.kill()
        await harness?.stop()
    }

    /// Runs `kubectl exec -it shell -- sh` in the terminal (after `environment`), types `line`,
    /// checks the TTY size, exits with `exitCode`; returns the completed exchange and its record.
    func typeIntoShell(environment: String = "", line: String, exitCode: Int) async throws -> (ExchangeRecord, [StreamChunk]) {
        let kubeconfig = try harness.kubeconfig(token: try await harness.token())
        let command = "\(environment)kubectl --kubeconfig \(kubeconfig) exec -it shell -- sh; echo KUBECTL-EXIT=$?; sleep 60"
        XCTAssertEqual(try terminal.start(command), 0, "tmux new-session")
        _ = try terminal.screen(containing: "/ #")

        try terminal.send(line, "Enter")
        let afterEcho = try terminal.screen(containing: "\n" + line.dropFirst("echo ".count))
        XCTAssertTrue(afterEcho.contains("/ # \(line)"), "typed input is echoed through the gateway: \(afterEcho)")
        try terminal.send("stty size", "Enter")
        _ = try terminal.screen(containing: "\n30 100")
        try terminal.send("exit \(exitCode)", "Enter")
        let end = try terminal.screen(containing: "KUBECTL-EXIT=")
        XCTAssertTrue(end.contains("KUBECTL-EXIT=\(exitCode)"), "kubectl exits with the shell's exit code: \(end)")

        let harness = self.harness!
        try await eventually(5, "the exec exchange is completed") {
            try await harness.exchanges().contains { $0.subresource == "exec" && $0.state != .inProgress }
        }
        let completed = try await harness.exchanges().last { $0.subresource == "exec" && $0.state != .inProgress }
        let exec = try XCTUnwrap(completed)
        XCTAssertEqual(exec.state, .complete)
        let chunks = try await harness.store.streamChunks(exchangeID: exec.id)
        let typed = String(decoding: chunks.filter { $0.channel == "stdin" }.flatMap(\.data), as: UTF8.self)
        XCTAssertTrue(typed.contains(line + "\r"), "typed input is recorded: \(typed.debugDescription)")
        let recording = TerminalRecording(chunks)
        XCTAssertEqual(recording.width, 100, "the terminal size is recorded")
        XCTAssertEqual(recording.height, 30)
        let shown = String(decoding: recording.output, as: UTF8.self)
        XCTAssertTrue(shown.contains("/ # \(line)\r\n\(line.dropFirst("echo ".count))\r\n"), shown.debugDescription)
        XCTAssertTrue(shown.contains("30 100"), shown.debugDescription)
        return (exec, chunks)
    }

    func testInteractiveExecThroughGatewayRunsTypedCommandsAndRecordsTheTerminal() async throws {
        let (_, chunks) = try await typeIntoShell(line: "echo hello from tmux", exitCode: 7)
        XCTAssertTrue(chunks.contains { $0.channel == "resize" }, "the terminal size is recorded")
        let header = try JSONValue(parsing: Array(TerminalRecording(chunks).asciicast().split(separator: "\n")[0].utf8))
        XCTAssertEqual(header["width"]?.intValue, 100)
        XCTAssertEqual(header["height"]?.intValue, 30)
    }

    /// The same over SPDY (kubectl's fallback): the TTY size travels on the resize stream and is
    /// recorded like the WebSocket resize channel.
    func testInteractiveSPDYExecRunsTypedCommandsAndRecordsTheTerminalSize() async throws {
        let (exec, chunks) = try await typeIntoShell(environment: "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false ",
                                                     line: "echo hello over spdy", exitCode: 6)
        XCTAssertEqual(exec.verb, "create", "the SPDY upgrade (a POST) was used")
        XCTAssertTrue(chunks.contains { $0.channel == "resize" })
    }
}
