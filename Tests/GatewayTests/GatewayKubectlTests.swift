import Foundation
import Gateway
import KubeCore
import SessionStore
import TestSupport
import XCTest

/// Real kubectl through the gateway to the embedded API server, recorded in SQLite.
class GatewayKubectlTests: XCTestCase {
    /// The session-store backend; the `...OnPostgres` subclass runs every test here on PostgreSQL.
    class var backend: GatewayStoreBackend { .sqlite }

    var harness: GatewayHarness!

    override func setUp() async throws {
        harness = try await GatewayHarness(backend: Self.backend)
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    func testKubectlApplyGetListDeleteAndLogsThroughGatewayAreRecordedWithKubectlHeaders() async throws {
        let token = try await harness.token()
        let configMap = """
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: via-gateway
            data:
              greeting: hello
            """
        let apply = try harness.kubectl(["apply", "--validate=false", "-f", "-"], token: token, input: configMap)
        XCTAssertEqual(apply.status, 0, apply.output)
        let get = try harness.kubectl(["get", "configmap", "via-gateway", "-o", "json"], token: token)
        XCTAssertEqual(get.status, 0, get.output)
        XCTAssertEqual(try JSONValue(parsing: get.stdout)[path: ["data", "greeting"]]?.stringValue, "hello")
        let list = try harness.kubectl(["get", "configmaps"], token: token)
        XCTAssertTrue(list.stdout.contains("via-gateway"), list.output)
        let pod = """
            apiVersion: v1
            kind: Pod
            metadata:
              name: p
            spec:
              containers:
              - name: c
                image: busybox
            """
        XCTAssertEqual(try harness.kubectl(["apply", "--validate=false", "-f", "-"], token: token, input: pod).status, 0)
        let logs = try harness.kubectl(["logs", "p", "-c", "c"], token: token)
        XCTAssertTrue(logs.stdout.contains("log line 1 from p"), logs.output)
        let delete = try harness.kubectl(["delete", "configmap", "via-gateway"], token: token)
        XCTAssertEqual(delete.status, 0, delete.output)
        let gone = await harness.cluster.request(method: "GET", path: "/api/v1/namespaces/default/configmaps/via-gateway", body: nil)
        XCTAssertEqual(gone.status, 404, "the delete reached the API server")

        let exchanges = try await harness.exchanges()
        let sessions = try await harness.store.listSessions(SessionFilter())
        XCTAssertEqual(sessions.first?.subject, "agent-1")
        XCTAssertEqual(sessions.first?.model, "claude-test")
        let deleteRecord = try XCTUnwrap(exchanges.first { $0.verb == "delete" })
        XCTAssertEqual(deleteRecord.resource, "configmaps")
        XCTAssertEqual(deleteRecord.namespace, "default")
        XCTAssertEqual(deleteRecord.name, "via-gateway")
        XCTAssertEqual(deleteRecord.statusCode, 200)
        XCTAssertEqual(deleteRecord.state, .complete)
        XCTAssertNotNil(deleteRecord.latencyMs)
        XCTAssertEqual(deleteRecord.kubectlCommand, "kubectl delete")
        XCTAssertNotNil(deleteRecord.kubectlSession)
        XCTAssertTrue(exchanges.contains { $0.verb == "get" && $0.resource == "pods" && $0.subresource == "log" })
        XCTAssertTrue(exchanges.contains { $0.verb == "list" && $0.resource == "configmaps" })
        XCTAssertTrue(exchanges.contains { $0.kubectlCommand == "kubectl apply" && ($0.statusCode ?? 0) < 300 })
    }

    func testWatchEventsStreamThroughTheGatewayAsTheyHappenAndAreRecorded() async throws {
        let token = try await harness.token()
        let kubeconfig = try harness.kubeconfig(token: token)
        let (process, pipe) = try ProcessRunner.start("kubectl", ["--kubeconfig", kubeconfig, "get", "configmaps", "-w",
                                                                  "--no-headers", "-o", "custom-columns=NAME:.metadata.name"])
        let watcher = RunningProcess(process: process, pipe: pipe)
        defer { process.terminate() }
        // kubectl lists, then watches from the list's resourceVersion: once its watch request is
        // at the gateway, a new object arrives as a watch event (not as a row of the list).
        try await eventually(15, "kubectl's watch request is recorded by the gateway") {
            try await self.harness.exchanges().contains { $0.verb == "watch" }
        }
        _ = try await harness.cluster.applyObject(["apiVersion": "v1", "kind": "ConfigMap",
                                                   "metadata": ["name": "watched-1", "namespace": "default"]])
        try await eventually(15, "the event arrives while the watch is open: \(watcher.output)") { watcher.output.contains("watched-1") }
        process.terminate()
        let recorded = try await harness.exchanges()
        let watch = try XCTUnwrap(recorded.first { $0.verb == "watch" })
        try await eventually(10, "the event was recorded as it passed") {
            try await self.harness.store.streamChunks(exchangeID: watch.id).contains {
                String(decoding: $0.data, as: UTF8.self).contains("watched-1")
            }
        }
    }

    func testInjectedServiceAccountTokenNeverAppearsInResponsesOrTheStore() async throws {
        let token = try await harness.token()
        // A Secret holding the SA token itself: the gateway must scrub it even if a rule would not.
        let secret = """
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: leak
            data:
              copied: "\(harness.saToken)"
            """
        _ = try harness.kubectl(["apply", "--validate=false", "-f", "-"], token: token, input: secret)
        let get = try harness.kubectl(["get", "configmap", "leak", "-o", "yaml"], token: token)
        XCTAssertEqual(get.status, 0, get.output)
        XCTAssertFalse(get.output.contains(harness.saToken), "the injected token is scrubbed from responses")
        let reply = try await GatewayHarness.send(.GET, "\(harness.connectionURL)/api/v1/namespaces/default/configmaps",
                                                  headers: [("Authorization", "Bearer \(token)")])
        XCTAssertEqual(reply.status, 200)
        XCTAssertFalse(reply.body.contains(harness.saToken))
        // Everything the store holds, as read back through it (both backends)...
        var stored = Data()
        for exchange in try await harness.exchanges() {
            stored.append(contentsOf: exchange.requestBody ?? [])
            stored.append(contentsOf: exchange.responseBody ?? [])
            stored.append(Data("\(exchange.path)?\(exchange.query)".utf8))
            for chunk in try await harness.store.streamChunks(exchangeID: exchange.id) { stored.append(contentsOf: chunk.data) }
        }
        XCTAssertGreaterThan(stored.count, 0)
        XCTAssertNil(stored.range(of: Data(harness.saToken.utf8)), "the SA token is not in any recorded exchange")
        XCTAssertNil(stored.range(of: Data(Data(harness.saToken.utf8).base64EncodedString().utf8)), "nor base64-encoded")
        // ...and, on SQLite, the raw database file with its journal.
        guard let storePath = harness.storePath else { return }
        try await harness.store.close()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: storePath))
        var all = bytes
        for suffix in ["-wal", "-shm"] {
            if let extra = try? Data(contentsOf: URL(fileURLWithPath: storePath + suffix)) { all.append(extra) }
        }
        XCTAssertGreaterThan(all.count, 0)
        XCTAssertNil(all.range(of: Data(harness.saToken.utf8)), "the SA token is not in the SQLite file")
        XCTAssertNil(all.range(of: Data(Data(harness.saToken.utf8).base64EncodedString().utf8)), "nor base64-encoded")
    }
}

/// GatewayKubectlTests with the session store on PostgreSQL.
final class GatewayKubectlOnPostgresTests: GatewayKubectlTests {
    override class var backend: GatewayStoreBackend { .postgres }

    override func testKubectlApplyGetListDeleteAndLogsThroughGatewayAreRecordedWithKubectlHeaders() async throws { try await super.testKubectlApplyGetListDeleteAndLogsThroughGatewayAreRecordedWithKubectlHeaders() }
    override func testWatchEventsStreamThroughTheGatewayAsTheyHappenAndAreRecorded() async throws { try await super.testWatchEventsStreamThroughTheGatewayAsTheyHappenAndAreRecorded() }
    override func testInjectedServiceAccountTokenNeverAppearsInResponsesOrTheStore() async throws { try await super.testInjectedServiceAccountTokenNeverAppearsInResponsesOrTheStore() }
}
