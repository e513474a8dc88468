import AgentGateAPI
import Foundation
import Gateway
import HTTPServing
import KubeClient
import KubeCore
import NIOHTTP1
import SessionStore
import TestSupport
import XCTest

/// The operator contract (connection Secrets watched and applied live) and the admin API.
class GatewayConfigAndAdminTests: XCTestCase {
    /// The session-store backend; the `...OnPostgres` subclass runs every test here on PostgreSQL.
    class var backend: GatewayStoreBackend { .sqlite }

    var harness: GatewayHarness!

    override func setUp() async throws { harness = try await GatewayHarness(backend: Self.backend) }
    override func tearDown() async throws { await harness?.stop() }

    private func secret(token: String) throws -> JSONValue {
        var config = harness.config
        config.name = "from-secret"
        let json = try JSONEncoder().encode(config)
        return [
            "apiVersion": "v1", "kind": "Secret",
            "metadata": ["name": .string(GatewayConnectionConfig.secretName(namespace: "default", name: "from-secret")),
                         "namespace": "agentgate-system",
                         "labels": [.init(stringLiteral: GatewayConnectionConfig.managedByLabel): .string(GatewayConnectionConfig.managedByValue)]],
            "data": [.init(stringLiteral: GatewayConnectionConfig.configKey): .string(json.base64EncodedString()),
                     .init(stringLiteral: GatewayConnectionConfig.tokenKey): .string(Data(token.utf8).base64EncodedString())],
        ]
    }

    func testConnectionSecretsAreAppliedLiveAndATokenRotationTakesEffectWithoutRestart() async throws {
        let registry = ConnectionRegistry()
        let client = try KubernetesClient(config: KubeConfig(server: harness.cluster.url, credentials: .token(harness.cluster.adminToken)))
        let watcher = ConnectionConfigWatcher(client: client, namespace: "agentgate-system", registry: registry)
        watcher.start()
        await watcher.waitUntilSynced()
        XCTAssertNil(registry.connection(namespace: "default", name: "from-secret"))
        _ = try await harness.cluster.applyObject(try secret(token: "first-token-123456"))
        try await eventually(10, "the first token is served") { registry.connection(namespace: "default", name: "from-secret")?.token == "first-token-123456" }
        _ = try await harness.cluster.applyObject(try secret(token: "rotated-token-654321"))
        try await eventually(10, "the rotated token is served") { registry.connection(namespace: "default", name: "from-secret")?.token == "rotated-token-654321" }
        let name = GatewayConnectionConfig.secretName(namespace: "default", name: "from-secret")
        _ = await harness.cluster.request(method: "DELETE", path: "/api/v1/namespaces/agentgate-system/secrets/\(name)", body: nil)
        try await eventually(10, "the deleted Secret's connection is gone") { registry.connection(namespace: "default", name: "from-secret") == nil }
        watcher.stop()
        try await client.shutdown()
    }

    func testAdminTokenIsCreatedOnceReadBackAndAnUnwritableFileIsAnErrorNamingIt() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("admin-token-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("admin-token")
        let created = try AdminAPI.loadOrCreateToken(at: file)
        XCTAssertEqual(created.count, 64)
        XCTAssertEqual(try AdminAPI.loadOrCreateToken(at: file), created, "the same token on the next start")
        let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
        // A directory where the file should be: no token anybody could read back.
        let blocked = directory.appendingPathComponent("blocked")
        try FileManager.default.createDirectory(at: blocked, withIntermediateDirectories: true)
        XCTAssertThrowsError(try AdminAPI.loadOrCreateToken(at: blocked)) { error in
            XCTAssertTrue("\(error)".contains(blocked.path), "\(error)")
        }
    }

    func testAdminAPIListsAndShowsSessionsWithFiltersBehindItsToken() async throws {
        let token = try await harness.token()
        _ = try await GatewayHarness.send(.GET, "\(harness.connectionURL)/api/v1/namespaces/default/configmaps",
                                          headers: [("Authorization", "Bearer \(token)"), ("Kubectl-Command", "kubectl get")])
        let admin = AdminAPI(store: harness.store, token: "admin-secret-token")
        func get(_ uri: String, token: String? = "admin-secret-token") async -> (Int, JSONValue) {
            var headers = HTTPHeaders()
            if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
            let response = await admin.handle(HTTPRequest(method: "GET", uri: uri, headers: headers, body: []))
            guard case .bytes(let bytes) = response.body else { return (response.status, .null) }
            return (response.status, (try? JSONValue(parsing: bytes)) ?? .null)
        }
        let (denied, _) = await get("/api/v1/sessions", token: "wrong")
        XCTAssertEqual(denied, 401)
        let (code, list) = await get("/api/v1/sessions?connection=default/conn&verb=list&resource=configmaps")
        XCTAssertEqual(code, 200)
        let item = try XCTUnwrap(list["items"]?.arrayValue?.first)
        XCTAssertEqual(item["subject"]?.stringValue, "agent-1")
        XCTAssertEqual(item["model"]?.stringValue, "claude-test")
        let (_, none) = await get("/api/v1/sessions?verb=delete")
        XCTAssertEqual(none["items"]?.arrayValue?.count, 0)
        let (badCode, _) = await get("/api/v1/sessions?since=yesterday")
        XCTAssertEqual(badCode, 400)
        let id = try XCTUnwrap(item["id"]?.stringValue)
        let (showCode, detail) = await get("/api/v1/sessions/\(id)")
        XCTAssertEqual(showCode, 200)
        let exchange = try XCTUnwrap(detail["exchanges"]?.arrayValue?.first)
        XCTAssertEqual(exchange["verb"]?.stringValue, "list")
        XCTAssertEqual(exchange["statusCode"], .int(200))
        XCTAssertEqual(exchange["kubectlCommand"]?.stringValue, "kubectl get")
        XCTAssertNotNil(exchange["responseBody"]?.stringValue)
        let (missing, _) = await get("/api/v1/sessions/nope")
        XCTAssertEqual(missing, 404)
    }
}

/// GatewayConfigAndAdminTests with the session store on PostgreSQL.
final class GatewayConfigAndAdminOnPostgresTests: GatewayConfigAndAdminTests {
    override class var backend: GatewayStoreBackend { .postgres }

    override func testConnectionSecretsAreAppliedLiveAndATokenRotationTakesEffectWithoutRestart() async throws { try await super.testConnectionSecretsAreAppliedLiveAndATokenRotationTakesEffectWithoutRestart() }
    override func testAdminAPIListsAndShowsSessionsWithFiltersBehindItsToken() async throws { try await super.testAdminAPIListsAndShowsSessionsWithFiltersBehindItsToken() }
}
