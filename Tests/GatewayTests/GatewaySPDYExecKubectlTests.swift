import AgentGateAPI
import Foundation
import Gateway
import HTTPServing
import KubeCore
import SessionStore
import TestSupport
import XCTest

/// `kubectl exec` and `kubectl attach` (v1.32) forced onto SPDY/3.1
/// (`KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`, as kubectl before 1.30 or its fallback) through
/// the gateway to the embedded API server: the gateway decodes both SPDY legs, so output and
/// exit codes reach the agent masked, and every stream is recorded like the WebSocket ones.
final class GatewaySPDYExecKubectlTests: ExecPodFixture {
    func kubectl(_ args: [String], input: String? = nil) throws -> ProcessResult {
        try harness.kubectl(args, token: token, input: input, environment: GatewayHarness.spdyOnly)
    }

    func text(_ chunks: [StreamChunk], _ channel: String) -> String {
        String(decoding: chunks.filter { $0.channel == channel }.flatMap(\.data), as: UTF8.self)
    }

    func testSPDYExecPrintsOutputReturnsTheExitCodeAndIsRecordedPerStream() async throws {
        let ok = try kubectl(["exec", "shell", "--", "echo", "hello", "over", "spdy"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(ok.stdout, "hello over spdy\n")

        let failed = try kubectl(["exec", "shell", "--", "sh", "-c", "echo partial; cat /nope; exit 3"])
        XCTAssertEqual(failed.status, 3, "kubectl exits with the command's exit code: \(failed.stderr)")
        XCTAssertEqual(failed.stdout, "partial\n")
        XCTAssertTrue(failed.stderr.contains("cat: can't open '/nope'"), failed.stderr)
        XCTAssertTrue(failed.stderr.contains("command terminated with exit code 3"), failed.stderr)

        let chunks = try await assertExitCodeThreeRecorded(verb: "create", "kubectl's SPDY exec is a POST")
        XCTAssertEqual(text(chunks, "stdout"), "partial\n")
        XCTAssertEqual(text(chunks, "stderr"), "cat: can't open '/nope': No such file or directory\n")
    }

    func testSPDYExecWithPipedStdinAndAttachAreRecordedAsTyped() async throws {
        let cat = try kubectl(["exec", "-i", "shell", "--", "cat"], input: "first line\nsecond line\n")
        XCTAssertEqual(cat.status, 0, cat.stderr)
        XCTAssertEqual(cat.stdout, "first line\nsecond line\n")
        let exec = try await completed("exec")
        let execChunks = try await harness.store.streamChunks(exchangeID: exec.id)
        XCTAssertEqual(text(execChunks, "stdin"), "first line\nsecond line\n", "piped input is recorded")

        let attached = try kubectl(["attach", "-i", "shell"], input: "echo attached-hello\nexit 4\n")
        XCTAssertEqual(attached.status, 4, attached.stderr)
        XCTAssertTrue(attached.stdout.contains("attached-hello\n"), attached.stdout + attached.stderr)
        let attach = try await completed("attach")
        XCTAssertEqual(attach.statusCode, 101)
        let chunks = try await harness.store.streamChunks(exchangeID: attach.id)
        XCTAssertEqual(text(chunks, "stdin"), "echo attached-hello\nexit 4\n", "typed input is recorded")
        XCTAssertTrue(text(chunks, "stdout").contains("attached-hello\n"))
    }

    func testSecretPrintedOverSPDYIsMaskedForTheAgentAndInTheRecord() async throws {
        try await assertEnvIsMaskedForTheAgentAndInTheRecord(environment: GatewayHarness.spdyOnly)
    }

    func testSecretSplitAcrossTwoSPDYDataFramesIsStillMasked() async throws {
        // The API server sends at most 32 KiB per DATA frame: this key straddles the first boundary.
        let padding = String(repeating: "x", count: 32_760)
        let result = try kubectl(["exec", "shell", "--", "echo", padding, awsKey])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.hasPrefix(padding + " "), "the output arrived: \(result.stdout.count) bytes")
        XCTAssertFalse(result.stdout.contains(awsKey), "the key is masked though no frame held it whole")
        XCTAssertFalse(result.stdout.contains("AKIAQWER"), "not even its first frame's part")
        let exchange = try await completed("exec")
        let recorded = String(decoding: try await harness.store.streamChunks(exchangeID: exchange.id).flatMap(\.data), as: UTF8.self)
        XCTAssertFalse(recorded.contains("AKIAQWER"), "nor in the record")
    }

    func testRecordedSPDYExecReplaysWithSessionsReplayToWhatKubectlPrinted() async throws {
        let replay = try await execThenReplay(environment: GatewayHarness.spdyOnly)
        XCTAssertTrue(replay.stdout.contains("/pods/shell/exec"), replay.stdout)
    }

    func testSPDYExecDeniedByAnAccessRuleFailsNamingTheRule() async throws {
        harness.config.access = AccessPolicy(rules: [AccessRule(name: "no-exec", action: .deny, resources: ["pods/exec"])])
        harness.registry.put(harness.config, token: harness.saToken)
        let result = try kubectl(["exec", "shell", "--", "echo", "no"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("\"no-exec\""), "kubectl prints the rule that refused it: \(result.stderr)")
        XCTAssertFalse(result.stdout.contains("no"))
        let refused = try await harness.exchanges().filter { $0.subresource == "exec" }
        XCTAssertEqual(refused.map(\.statusCode), [403])
    }
}
