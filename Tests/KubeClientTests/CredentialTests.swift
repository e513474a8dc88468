import Foundation
import KubeClient
import KubeCore
import TestSupport
import XCTest

/// Credentials and TLS end to end against a real API server.
final class CredentialTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kubeclient-cred-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func write(_ name: String, _ text: String, mode: Int = 0o600) throws -> String {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
        return url.path
    }

    func invocations(_ path: String) -> Int {
        (try? String(contentsOfFile: path, encoding: .utf8))?.split(separator: "\n").count ?? 0
    }

    /// A plugin that appends a line to COUNT_FILE per run and prints an ExecCredential.
    func writePlugin() throws -> String {
        try write("bin/plugin.sh", """
            #!/bin/sh
            echo run >> "$COUNT_FILE"
            printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"%s"}}' "$TOKEN" "$EXPIRY"
            """, mode: 0o755)
    }

    func execKubeconfig(server: String, caData: String?, token: String, expiry: Date, count: String) -> String {
        """
        apiVersion: v1
        kind: Config
        current-context: dev
        clusters:
        - name: dev
          cluster:
            server: \(server)
        \(caData.map { "    certificate-authority-data: \($0)" } ?? "")
        contexts:
        - name: dev
          context: {cluster: dev, user: plugin}
        users:
        - name: plugin
          user:
            exec:
              apiVersion: client.authentication.k8s.io/v1
              command: ./bin/plugin.sh
              env:
              - {name: COUNT_FILE, value: "\(count)"}
              - {name: TOKEN, value: "\(token)"}
              - {name: EXPIRY, value: "\(KubeTime.format(expiry))"}
        """
    }

    func testExecPluginTokenIsCachedUntilItsExpiry() async throws {
        try await withCluster(useTLS: true) { fixture in
            _ = try writePlugin()
            let caData = fixture.cluster.certificateAuthority.map { Data($0.caPEM.utf8).base64EncodedString() }
            let count = dir.appendingPathComponent("count").path
            let longLived = try write("kc-long", execKubeconfig(server: fixture.cluster.url, caData: caData, token: fixture.cluster.adminToken,
                                                                 expiry: Date().addingTimeInterval(3600), count: count))
            let client = fixture.adopt(try KubernetesClient(config: try KubeConfig.fromKubeconfigFiles([longLived])))
            for _ in 0..<3 { _ = try await client.list(.configMaps, namespace: "default") }
            XCTAssertEqual(invocations(count), 1, "a token valid for an hour is fetched once")

            // A token about to expire (within the 10 s slack) is fetched again for every request.
            let shortCount = dir.appendingPathComponent("count-short").path
            let shortLived = try write("kc-short", execKubeconfig(server: fixture.cluster.url, caData: caData, token: fixture.cluster.adminToken,
                                                                   expiry: Date().addingTimeInterval(5), count: shortCount))
            let shortClient = fixture.adopt(try KubernetesClient(config: try KubeConfig.fromKubeconfigFiles([shortLived])))
            for _ in 0..<3 { _ = try await shortClient.list(.configMaps, namespace: "default") }
            XCTAssertEqual(invocations(shortCount), 3)
        }
    }

    func testExecPluginIsRerunOnceAfterA401() async throws {
        try await withCluster { fixture in
            _ = try writePlugin()
            let count = dir.appendingPathComponent("count").path
            let path = try write("kc", execKubeconfig(server: fixture.cluster.url, caData: nil, token: "rejected-token",
                                                      expiry: Date().addingTimeInterval(3600), count: count))
            let client = fixture.adopt(try KubernetesClient(config: try KubeConfig.fromKubeconfigFiles([path])))
            await assertKubeError(try await client.list(.configMaps, namespace: "default")) {
                if case .unauthorized = $0 { return true } else { return false }
            }
            XCTAssertEqual(invocations(count), 2, "the cached token is dropped after a 401 and the plugin run once more")
        }
    }

    func testInClusterConfigTrustsTheCAFileAndRereadsARotatedTokenFile() async throws {
        try await withCluster(useTLS: true) { fixture in
            guard let ca = fixture.cluster.certificateAuthority else { return XCTFail("TLS cluster without CA") }
            let root = dir.appendingPathComponent("sa").path
            _ = try write("sa/token", "not-a-valid-token")
            _ = try write("sa/ca.crt", ca.caPEM)
            _ = try write("sa/namespace", "kube-system\n")
            let config = try KubeConfig.load(kubeconfigPath: nil, context: nil,
                                             environment: ["KUBERNETES_SERVICE_HOST": "127.0.0.1",
                                                           "KUBERNETES_SERVICE_PORT": String(fixture.cluster.port),
                                                           "HOME": dir.path],
                                             inClusterRoot: root)
            XCTAssertEqual(config.namespace, "kube-system")
            let client = fixture.adopt(try KubernetesClient(config: config))
            await assertKubeError(try await client.list(.configMaps)) {
                if case .unauthorized = $0 { return true } else { return false }
            }
            // kubelet rotates the projected token by swapping the file.
            _ = try write("sa/token.new", fixture.cluster.adminToken)
            XCTAssertEqual(rename(root + "/token.new", root + "/token"), 0)
            let list = try await client.list(.configMaps)
            XCTAssertFalse(list.resourceVersion.isEmpty)
        }
    }

    func testTLSNeedsTheClusterCAUnlessInsecureSkipTLSVerify() async throws {
        try await withCluster(useTLS: true) { fixture in
            let token = fixture.cluster.adminToken
            let noCA = fixture.adopt(try KubernetesClient(config: KubeConfig(server: fixture.cluster.url, credentials: .token(token))))
            await assertKubeError(try await noCA.list(.namespaces)) {
                if case .transport = $0 { return true } else { return false }
            }
            let insecure = fixture.adopt(try KubernetesClient(config: KubeConfig(server: fixture.cluster.url, insecureSkipTLSVerify: true,
                                                                                 credentials: .token(token))))
            let namespaces = try await insecure.list(.namespaces)
            XCTAssertTrue(namespaces.items.contains { $0[path: ["metadata", "name"]] == "default" })
            let viaKubeconfig = try fixture.client()
            let fetched = try await viaKubeconfig.get(Namespace.self, name: "default")
            XCTAssertEqual(fetched.metadata.name, "default")
        }
    }

    func testRateLimiterSpacesRequestsBeyondTheBurst() async throws {
        let limiter = RateLimiter(qps: 20, burst: 2)
        let start = ContinuousClock.now
        for _ in 0..<6 { try await limiter.acquire() }
        let elapsed = ContinuousClock.now - start
        // 2 immediately, then 4 more at 20/s: about 200 ms.
        XCTAssertGreaterThanOrEqual(elapsed, .milliseconds(180))
        XCTAssertLessThan(elapsed, .milliseconds(1500))
        let unlimited = RateLimiter(qps: 1000, burst: 100)
        let fast = ContinuousClock.now
        for _ in 0..<50 { try await unlimited.acquire() }
        XCTAssertLessThan(ContinuousClock.now - fast, .milliseconds(100), "within the burst there is no waiting")
    }
}
