import AgentGateAPI
import Foundation
import Gateway
import KubeCore
import SessionStore
import TestSupport
import XCTest

/// Every way real kubectl can show a secret, through the gateway: none reveals a value, and
/// ordinary objects come back untouched.
final class GatewayMaskingKubectlTests: XCTestCase {
    var harness: GatewayHarness!
    static let password = "S3cr3t-Passw0rd-Value"
    static let jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDp4In0.c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMTIzNDU2Nzg5MA"

    override func setUp() async throws {
        harness = try await GatewayHarness()
        try await harness.cluster.applyObject([
            "apiVersion": "v1", "kind": "Secret", "metadata": ["name": "db", "namespace": "default"],
            "type": "Opaque", "data": ["password": .string(Data(Self.password.utf8).base64EncodedString())],
        ])
    }

    override func tearDown() async throws { await harness.stop() }

    /// Fails when `text` holds the password, plain or base64, or the JWT.
    func assertNoSecret(_ text: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(text.contains(Self.password), "\(what) revealed the password", file: file, line: line)
        XCTAssertFalse(text.contains(Data(Self.password.utf8).base64EncodedString()), "\(what) revealed the password in base64", file: file, line: line)
        XCTAssertFalse(text.contains(Self.jwt), "\(what) revealed the JWT", file: file, line: line)
    }

    func testNoKubectlViewOfASecretRevealsItsValue() async throws {
        let token = try await harness.token()
        // Applied through the gateway, so the last-applied annotation holds the value in clear upstream.
        let applied = try harness.kubectl(["apply", "--validate=false", "-f", "-"], token: token, input: """
            apiVersion: v1
            kind: Secret
            metadata:
              name: applied
            stringData:
              password: \(Self.password)
            """)
        XCTAssertEqual(applied.status, 0, applied.output)
        let views: [[String]] = [
            ["get", "secret", "db", "-o", "json"], ["get", "secret", "db", "-o", "yaml"],
            ["get", "secret", "db", "-o", "jsonpath={.data.password}"], ["get", "secrets", "-A"], ["get", "secrets", "-A", "-o", "yaml"],
            ["describe", "secret", "db"], ["get", "secret", "applied", "-o", "yaml"],
            ["get", "secret", "applied", "-o", "jsonpath={.metadata.annotations}"],
        ]
        for view in views {
            let result = try harness.kubectl(view, token: token)
            XCTAssertEqual(result.status, 0, "\(view): \(result.output)")
            assertNoSecret(result.output, "kubectl \(view.joined(separator: " "))")
        }
        let yaml = try harness.kubectl(["get", "secret", "db", "-o", "yaml"], token: token)
        XCTAssertTrue(yaml.stdout.contains("password:"), "the key stays visible, only the value is masked")
        // What was recorded is masked too (the created Secret's request body included).
        for exchange in try await harness.exchanges() {
            assertNoSecret(String(decoding: exchange.requestBody ?? [], as: UTF8.self), "recorded request \(exchange.path)")
            assertNoSecret(String(decoding: exchange.responseBody ?? [], as: UTF8.self), "recorded response \(exchange.path)")
        }
    }

    /// A JSON patch `copy` or `move` would carry a masked value to a field the masking does not
    /// hide (the Secret's password into an annotation, shown in clear by the patch's own
    /// answer), and a `test` would confirm a guess. The gateway refuses them before the API
    /// server acts; a `test` of the resourceVersion, a concurrency guard, still passes.
    func testAJSONPatchCannotCopyMoveOrTestAMaskedValue() async throws {
        let token = try await harness.token()
        let base64 = Data(Self.password.utf8).base64EncodedString()
        for (op, patch) in [
            ("copy", #"[{"op":"add","path":"/metadata/annotations","value":{}},{"op":"copy","from":"/data/password","path":"/metadata/annotations/note"}]"#),
            ("move", #"[{"op":"add","path":"/metadata/annotations","value":{}},{"op":"move","from":"/data/password","path":"/metadata/annotations/note"}]"#),
            ("test", #"[{"op":"test","path":"/data/password","value":"\#(base64)"}]"#),
        ] {
            let result = try harness.kubectl(["patch", "secret", "db", "--type=json", "-p", patch, "-o", "json"], token: token)
            XCTAssertNotEqual(result.status, 0, "the \(op) patch was applied: \(result.output)")
            XCTAssertTrue(result.stderr.contains("(Forbidden)") && result.stderr.contains("JSON patch may"), result.output)
            assertNoSecret(result.output, "a JSON patch \(op)")
        }
        let secret = try JSONValue(parsing: Array(try harness.kubectl(["get", "secret", "db", "-o", "json"], token: token).stdout.utf8))
        XCTAssertNil(secret["metadata"]?["annotations"], "a refused patch reached the API server")
        let resourceVersion = try XCTUnwrap(secret["metadata"]?["resourceVersion"]?.stringValue)
        let guarded = try harness.kubectl(["patch", "secret", "db", "--type=json", "-p",
                                           #"[{"op":"test","path":"/metadata/resourceVersion","value":"\#(resourceVersion)"},"#
                                           + #"{"op":"add","path":"/metadata/labels","value":{"checked":"yes"}}]"#], token: token)
        XCTAssertEqual(guarded.status, 0, guarded.output)
    }

    func testWatchedSecretsAreMaskedEventByEvent() async throws {
        let token = try await harness.token()
        let (watcher, pipe) = try ProcessRunner.start("kubectl", ["--kubeconfig", try harness.kubeconfig(token: token), "get", "secrets",
                                                                  "-w", "-o", "json"])
        defer { watcher.terminate() }
        let collected = LockedText()
        pipe.fileHandleForReading.readabilityHandler = { collected.append(String(decoding: $0.availableData, as: UTF8.self)) }
        defer { pipe.fileHandleForReading.readabilityHandler = nil }
        try await eventually(15, "the initial list") { collected.text.contains("\"db\"") }
        try await harness.cluster.applyObject([
            "apiVersion": "v1", "kind": "Secret", "metadata": ["name": "later", "namespace": "default"],
            "stringData": ["token": .string(Self.jwt)],
        ])
        try await eventually(15, "the new Secret's event") { collected.text.contains("\"later\"") }
        assertNoSecret(collected.text, "kubectl get secrets -w")
    }

    func testTokensInConfigMapsPodEnvLogsAndCreateTokenAreMasked() async throws {
        let token = try await harness.token()
        try await harness.cluster.applyObject([
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "app-config", "namespace": "default"],
            "data": ["settings.yaml": .string("endpoint: https://api.example.com\nauth: Bearer \(Self.jwt)\n")],
        ])
        try await harness.cluster.applyObject([
            "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "web", "namespace": "default"],
            "spec": ["containers": [["name": "app", "image": "nginx", "env": [
                ["name": "DB_PASSWORD", "value": .string(Self.password)], ["name": "LOG_LEVEL", "value": "debug"],
            ]]]],
        ])
        let jwt = Self.jwt
        harness.cluster.apiServer.podLogs = { _, _, _ in "starting\nusing token \(jwt)\nready\n" }

        let cm = try harness.kubectl(["get", "cm", "app-config", "-o", "yaml"], token: token)
        XCTAssertEqual(cm.status, 0, cm.output)
        assertNoSecret(cm.output, "kubectl get cm")
        XCTAssertTrue(cm.stdout.contains("https://api.example.com"), "the rest of the value stays readable")

        let pod = try harness.kubectl(["get", "pod", "web", "-o", "json"], token: token)
        assertNoSecret(pod.output, "kubectl get pod")
        XCTAssertTrue(pod.stdout.contains("\"debug\""), "an env var not named like a secret stays visible")

        let logs = try harness.kubectl(["logs", "web"], token: token)
        XCTAssertEqual(logs.status, 0, logs.output)
        assertNoSecret(logs.output, "kubectl logs")
        XCTAssertTrue(logs.stdout.contains("starting") && logs.stdout.contains("ready"))

        let created = try harness.kubectl(["create", "token", "agent"], token: token)
        XCTAssertEqual(created.status, 0, created.output)
        XCTAssertFalse(created.stdout.contains("eyJ"), "kubectl create token must not hand the agent a usable token: \(created.stdout)")
    }

    func testOrdinaryObjectsComeBackByteIdentical() async throws {
        let token = try await harness.token()
        try await harness.cluster.applyObject([
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "ordinary", "namespace": "default", "labels": ["app": "web"]],
            "data": ["image": "registry.example.com/web@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                     "uid": "5f0c2b8e-8d3c-4d6a-9b1e-2f7a3c4d5e6f", "commit": "3f786850e387550fdab836ed7e6dc881de23001b",
                     "text": "the quick brown fox; timeout=30s; replicas=3"],
        ])
        let path = "/api/v1/namespaces/default/configmaps/ordinary"
        let direct = await harness.cluster.request(method: "GET", path: path, body: nil)
        let through = try await GatewayHarness.send(.GET, "\(harness.connectionURL)\(path)", headers: [("Authorization", "Bearer \(token)")])
        XCTAssertEqual(through.status, 200)
        XCTAssertEqual(try JSONValue(parsing: Array(through.body.utf8)), direct.body,
                       "digests, UIDs, SHAs, resourceVersions and plain text are not secrets")
    }

    func testMaskingRulesOfTheConnectionAddPatternsFieldRulesAndHashing() async throws {
        harness.config.maskingRules = [NamedMaskingRule(name: "pci", spec: MaskingRuleSpec(
            fieldRules: [MaskingFieldRule(name: "api-keys", apiGroups: [""], resources: ["configmaps"], paths: ["data.api-key"])],
            customPatterns: [CustomPattern(name: "card", regex: "4[0-9]{15}")],
            replacement: MaskReplacement(style: .hash)))]
        harness.registry.put(harness.config, token: harness.saToken)
        try await harness.cluster.applyObject([
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "payments", "namespace": "default"],
            "data": ["api-key": "plain-looking-key", "note": "card 4111111111111111 on file", "region": "eu-west-1"],
        ])
        let token = try await harness.token()
        let result = try harness.kubectl(["get", "cm", "payments", "-o", "json"], token: token)
        XCTAssertEqual(result.status, 0, result.output)
        let object = try JSONValue(parsing: Array(result.stdout.utf8))
        let apiKey = object[path: ["data", "api-key"]]?.stringValue ?? ""
        XCTAssertTrue(apiKey.hasPrefix("hmac:"), "field rule with the rule's Hash style: \(apiKey)")
        let note = object[path: ["data", "note"]]?.stringValue ?? ""
        XCTAssertFalse(note.contains("4111111111111111"), note)
        XCTAssertTrue(note.hasPrefix("card hmac:") && note.hasSuffix(" on file"), note)
        XCTAssertEqual(object[path: ["data", "region"]]?.stringValue, "eu-west-1")
        // The same value hashes the same on the next read.
        let again = try JSONValue(parsing: Array(try harness.kubectl(["get", "cm", "payments", "-o", "json"], token: token).stdout.utf8))
        XCTAssertEqual(again[path: ["data", "api-key"]]?.stringValue, apiKey)
    }
}
