import AgentGateAPI
import Foundation
import Gateway
import HTTPServing
import KubeCore
import NIOHTTP1
import Sandbox
import SessionStore
import TestSupport
import XCTest

/// `agentgate credential` as kubectl's exec plugin, in a kubeconfig written by `agentgate
/// kubeconfig`: real kubectl, the built binary, a real gateway and the embedded cluster, the
/// dev issuer standing in for each source's issuer (another cluster's ServiceAccount issuer,
/// an OAuth2 server, a CI provider). Each request is answered and recorded under the
/// subject the source's token names.
final class AgentCredentialTests: XCTestCase {
    var harness: GatewayHarness!
    var files: URL { harness.directory }

    override func setUp() async throws {
        guard FileManager.default.isExecutableFile(atPath: GatewayHarness.binary.path) else {
            throw XCTSkip("\(GatewayHarness.binary.path) is missing: run `swift build` first")
        }
        harness = try await GatewayHarness()
        // The AgentConnection `agentgate kubeconfig` reads (the harness serves it from its registry).
        let identity = harness.config.identity
        try await harness.cluster.applyObject([
            "apiVersion": "agentgate.io/v1alpha1", "kind": "AgentConnection",
            "metadata": ["name": "conn", "namespace": "default"],
            "spec": ["serviceAccountName": "agent",
                     "identity": ["issuer": .string(identity.issuer), "audiences": .array(identity.audiences.map { .string($0) }),
                                  "allowedGroups": ["agents"]]],
        ])
        try harness.cluster.adminKubeconfig().write(to: files.appendingPathComponent("admin.kubeconfig"), atomically: true, encoding: .utf8)
        try harness.certificateAuthority.caPEM.write(to: files.appendingPathComponent("gateway-ca.crt"), atomically: true, encoding: .utf8)
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    // MARK: Helpers

    func agentgate(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
        try ProcessRunner.run(GatewayHarness.binary.path, arguments, environment: environment, timeout: 60)
    }

    /// `agentgate kubeconfig` for `default/conn` with the token-source flags `source`; the file's path.
    func agentKubeconfig(_ source: [String]) throws -> String {
        let result = try agentgate(["kubeconfig", "--connection", "default/conn",
                                    "--kubeconfig", files.appendingPathComponent("admin.kubeconfig").path,
                                    "--server", "https://127.0.0.1:\(harness.tlsPort)/c/default/conn",
                                    "--certificate-authority", files.appendingPathComponent("gateway-ca.crt").path] + source)
        XCTAssertEqual(result.status, 0, result.output)
        let path = files.appendingPathComponent("agent-\(UUID().uuidString).kubeconfig")
        try result.stdout.write(to: path, atomically: true, encoding: .utf8)
        return path.path
    }

    func kubectl(_ kubeconfig: String, _ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
        try ProcessRunner.run("kubectl", ["--kubeconfig", kubeconfig, "--request-timeout=20s"] + arguments,
                              environment: environment, timeout: 60)
    }

    /// The subjects of the recorded sessions that hold a `list configmaps`.
    func recordedSubjects() async throws -> Set<String> {
        var subjects: Set<String> = []
        for session in try await harness.store.listSessions(SessionFilter(limit: 100)) {
            let exchanges = try await harness.store.exchanges(sessionID: session.id)
            if exchanges.contains(where: { $0.verb == "list" && $0.resource == "configmaps" }) { subjects.insert(session.subject) }
        }
        return subjects
    }

    func token(subject: String, lifetime: TimeInterval = 3600, issuedAt: Date = Date()) async throws -> String {
        try await harness.token(subject: subject, groups: ["agents"], model: nil) {
            $0.lifetime = lifetime
            $0.issuedAt = issuedAt
            $0.extraClaims["kubernetes.io"] = ["namespace": "agents", "serviceaccount": ["name": "builder", "uid": "u-1"]]
        }
    }

    func write(_ text: String, _ name: String) throws -> String {
        let url = files.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    // MARK: Sources, end to end

    func testAProjectedTokenFileIsReadOnEveryCallSoTheKubeletsRotationIsUsed() async throws {
        let tokenFile = try write(try await token(subject: "system:serviceaccount:agents:builder"), "token")
        let kubeconfig = try agentKubeconfig(["--token-file", tokenFile])
        let first = try kubectl(kubeconfig, ["get", "configmaps"])
        XCTAssertEqual(first.status, 0, first.output)
        let recordedFirst = try await recordedSubjects()
        XCTAssertEqual(recordedFirst, ["system:serviceaccount:agents:builder"])
        // The kubelet replaces the file's token (here with another subject, to tell them apart).
        _ = try write(try await token(subject: "system:serviceaccount:agents:builder-rotated"), "token")
        let second = try kubectl(kubeconfig, ["get", "configmaps"])
        XCTAssertEqual(second.status, 0, second.output)
        let recordedSecond = try await recordedSubjects()
        XCTAssertEqual(recordedSecond, ["system:serviceaccount:agents:builder", "system:serviceaccount:agents:builder-rotated"])
    }

    func testAClientCredentialsGrantThroughKubectlIsRecordedUnderTheClientsSubjectAndCachedPrivately() async throws {
        harness.issuer.register(DevOIDCIssuer.Client(id: "ops-bot", secret: "bot-secret", subject: "agent:ops-bot", groups: ["agents"],
                                                     audiences: ["elsewhere", GatewayHarness.audience]))
        let secretFile = try write("bot-secret\n", "client-secret")
        let cacheFile = files.appendingPathComponent("cache/ops-bot.json").path
        try FileManager.default.createDirectory(atPath: files.appendingPathComponent("cache").path, withIntermediateDirectories: true)
        let source = ["--issuer", harness.issuer.issuer, "--client-id", "ops-bot", "--client-secret-file", secretFile,
                      "--audience", GatewayHarness.audience, "--cache-file", cacheFile]
        let kubectlResult = try kubectl(try agentKubeconfig(source), ["get", "configmaps"])
        XCTAssertEqual(kubectlResult.status, 0, kubectlResult.output)
        let recorded = try await recordedSubjects()
        XCTAssertEqual(recorded, ["agent:ops-bot"])

        let mode = try FileManager.default.attributesOfItem(atPath: cacheFile)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600, "the cached token is private to its owner")
        // The cache answers the next call, even with the secret gone (no grant was made).
        try FileManager.default.removeItem(atPath: secretFile)
        let cached = try agentgate(["credential", "--output", "token"] + source)
        XCTAssertEqual(cached.status, 0, cached.output)
        XCTAssertTrue(try String(contentsOfFile: cacheFile, encoding: .utf8).contains(cached.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        // Another audience is another cache entry: it needs a grant, and the secret is gone.
        let other = try agentgate(["credential", "--output", "token"] + source.dropLast(4) + ["--audience", "elsewhere", "--cache-file", cacheFile])
        XCTAssertEqual(other.status, 1, other.output)
        XCTAssertTrue(other.stderr.contains("--client-secret-file \(secretFile): cannot be read: no such file or directory"), other.stderr)
    }

    func testACachedTokenNearItsExpiryIsReplacedByANewGrant() async throws {
        harness.issuer.register(DevOIDCIssuer.Client(id: "ops-bot", secret: "bot-secret", subject: "agent:ops-bot", groups: ["agents"],
                                                     audiences: [GatewayHarness.audience]))
        let secretFile = try write("bot-secret", "client-secret")
        let cacheFile = files.appendingPathComponent("ops-bot.json").path
        let source = ["credential", "--output", "token", "--issuer", harness.issuer.issuer, "--client-id", "ops-bot",
                      "--client-secret-file", secretFile, "--cache-file", cacheFile]
        let first = try agentgate(source)
        XCTAssertEqual(first.status, 0, first.output)
        // Rewrite the cache as if the token had been granted 58 minutes ago.
        var entry = try JSONValue(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: cacheFile))))
        let now = Date().timeIntervalSinceReferenceDate  // JSONEncoder's default date encoding
        entry["issuedAt"] = .double(now - 3480)
        entry["expiresAt"] = .double(now + 120)
        try Data(entry.serialized()).write(to: URL(fileURLWithPath: cacheFile))
        let second = try agentgate(source)
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertNotEqual(second.stdout, first.stdout, "2 minutes before expiry, a new token is granted")
        let third = try agentgate(source)
        XCTAssertEqual(third.stdout, second.stdout, "and that one is cached")
    }

    func testACIProvidersTokenInAnEnvironmentVariableIsUsed() async throws {
        let kubeconfig = try agentKubeconfig(["--token-env", "CI_AGENTGATE_TOKEN"])
        let token = try await token(subject: "project_path:acme/app:ref_type:branch:ref:main")
        let result = try kubectl(kubeconfig, ["get", "configmaps"], environment: ["CI_AGENTGATE_TOKEN": token])
        XCTAssertEqual(result.status, 0, result.output)
        let recorded = try await recordedSubjects()
        XCTAssertEqual(recorded, ["project_path:acme/app:ref_type:branch:ref:main"])
    }

    func testGitHubActionsIDTokenIsRequestedForTheConnectionsAudience() async throws {
        let token = try await token(subject: "repo:acme/app:ref:refs/heads/main")
        let seen = LockedText()
        let service = HTTPServer()
        let port = try await service.start(host: "127.0.0.1", port: 0, tls: nil) { request in
            seen.append("\(request.uri) \(request.header("authorization") ?? "")\n")
            guard request.header("authorization") == "bearer request-token-1" else { return .json(401, Array(#"{"message":"bad"}"#.utf8)) }
            return .json(200, JSONValue.object(["value": .string(token)]).serialized())
        }
        defer { Task { await service.shutdown() } }
        // No --audience: `agentgate kubeconfig` asks for the connection's first audience.
        let kubeconfig = try agentKubeconfig(["--github-actions"])
        let environment = ["ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:\(port)/_apis/token?api-version=2.0",
                           "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token-1"]
        let result = try kubectl(kubeconfig, ["get", "configmaps"], environment: environment)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(seen.text.contains("/_apis/token?api-version=2.0&audience=\(GatewayHarness.audience) bearer request-token-1"), seen.text)
        let recorded = try await recordedSubjects()
        XCTAssertEqual(recorded, ["repo:acme/app:ref:refs/heads/main"])

        let refused = try agentgate(["credential", "--github-actions", "--audience", "agentgate-test"],
                                    environment: environment.merging(["ACTIONS_ID_TOKEN_REQUEST_TOKEN": "stolen"]) { $1 })
        XCTAssertEqual(refused.status, 1, refused.output)
        XCTAssertTrue(refused.stderr.contains("answered HTTP 401: bad"), refused.stderr)
    }

    // MARK: The plugin's output and failures

    func testTheExecCredentialCarriesTheTokensExpiry() async throws {
        let issued = Date(timeIntervalSince1970: floor(Date().timeIntervalSince1970))
        let tokenFile = try write(try await token(subject: "agent-1", lifetime: 900, issuedAt: issued) + "\n", "token")
        let result = try agentgate(["credential", "--token-file", tokenFile])
        XCTAssertEqual(result.status, 0, result.output)
        let credential = try JSONValue(parsing: result.stdout)
        XCTAssertEqual(credential["apiVersion"]?.stringValue, "client.authentication.k8s.io/v1")
        XCTAssertEqual(credential["kind"]?.stringValue, "ExecCredential")
        XCTAssertEqual(credential[path: ["status", "expirationTimestamp"]]?.stringValue, KubeTime.format(issued.addingTimeInterval(900)))
    }

    func testEachSourceFailsWithOneSentenceNamingItsFileVariableOrURL() async throws {
        harness.issuer.register(DevOIDCIssuer.Client(id: "ops-bot", secret: "bot-secret", subject: "agent:ops-bot",
                                                     audiences: [GatewayHarness.audience]))
        let wrongSecret = try write("not-the-secret", "wrong-secret")
        let cases: [(arguments: [String], environment: [String: String], message: String)] = [
            (["--token-file", "/nonexistent/token"], [:], "--token-file /nonexistent/token: cannot be read: no such file or directory"),
            (["--token-file", try write("  \n", "empty")], [:], "is empty"),
            (["--token-file", try write(try await token(subject: "agent-1", issuedAt: Date().addingTimeInterval(-7200)), "old")], [:],
             "the token in --token-file \(files.path)/old expired at"),
            (["--token-env", "NO_SUCH_TOKEN_VARIABLE"], [:], "--token-env NO_SUCH_TOKEN_VARIABLE: the environment variable NO_SUCH_TOKEN_VARIABLE is not set"),
            (["--issuer", harness.issuer.issuer, "--client-id", "ops-bot", "--client-secret-file", wrongSecret], [:],
             "the token endpoint \(harness.issuer.issuer)/token refused client ops-bot (HTTP 401, invalid_client: client authentication failed for ops-bot)"),
            (["--issuer", harness.issuer.issuer, "--client-id", "ops-bot", "--client-secret-file", try write("bot-secret", "secret"),
              "--audience", "kubernetes"], [:], "(HTTP 400, invalid_target: client ops-bot may not request audience kubernetes"),
            (["--issuer", "http://127.0.0.1:1", "--client-id", "ops-bot", "--client-secret-file", wrongSecret], [:],
             "cannot reach the issuer's discovery document http://127.0.0.1:1/.well-known/openid-configuration: connection refused"),
            (["--github-actions", "--audience", "agentgate-test"], ["ACTIONS_ID_TOKEN_REQUEST_URL": "", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": ""],
             "--github-actions: ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set"),
        ]
        for (arguments, environment, message) in cases {
            let result = try agentgate(["credential"] + arguments, environment: environment)
            XCTAssertEqual(result.status, 1, "\(arguments): \(result.output)")
            XCTAssertTrue(result.stderr.contains(message), "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count, 1, result.stderr)
            XCTAssertFalse(result.stderr.contains("Error Domain") || result.stderr.contains("HTTPClientError"), result.stderr)
            XCTAssertTrue(result.stdout.isEmpty, "nothing for kubectl to mistake for a credential: \(result.stdout)")
        }
    }

    func testConflictingOrIncompleteSourceFlagsAreUsageErrors() throws {
        let cases: [([String], String)] = [
            (["credential"], "choose a token source"),
            (["credential", "--token-file", "/t", "--token-env", "T"], "choose one token source, not --token-file and --token-env"),
            (["credential", "--issuer", "https://login.example.com", "--client-id", "x"], "--issuer needs --client-secret-file"),
            (["credential", "--issuer", "http://login.example.com", "--client-id", "x", "--client-secret-file", "/s"], "use https"),
            (["credential", "--token-file", "/t", "--cache-file", "/c"], "--cache-file only go with --issuer"),
            (["credential", "--github-actions"], "--github-actions needs --audience"),
            (["kubeconfig", "--connection", "default/conn", "--token", "t", "--token-file", "/t"], "give an agent token or a token source, not both"),
        ]
        for (arguments, message) in cases {
            let result = try agentgate(arguments)
            XCTAssertEqual(result.status, 64, "\(arguments): \(result.output)")
            XCTAssertTrue(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
    }

    func testAKubeconfigWithAnEmbeddedTokenStillWorks() async throws {
        let embedded = try kubectl(try agentKubeconfig(["--token", try await token(subject: "agent-embedded")]), ["get", "configmaps"])
        XCTAssertEqual(embedded.status, 0, embedded.output)
        let recorded = try await recordedSubjects()
        XCTAssertEqual(recorded, ["agent-embedded"])
    }
}
