import AgentGateAPI
import Foundation
import Gateway
import KubeClient
import KubeCore
import LocalCluster
import NIOSSL
import Sandbox
import SessionStore
import TestSupport
import XCTest

/// The operator and the gateway together: an AgentConnection applied with kubectl becomes a
/// working endpoint for an agent's kubectl, and deleting it closes the endpoint.
final class OperatorGatewayEndToEndTests: XCTestCase {
    func testAppliedConnectionServesTheAgentThroughTheGatewayAndDeletingItClosesTheEndpoint() async throws {
        try await withOperatorHarness { h in
            let issuer = try DevOIDCIssuer()
            let issuerURL = try await issuer.start()
            let directory = h.fixture.directory.appendingPathComponent("gateway")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let store = try await SessionStores.open(url: "sqlite:\(directory.appendingPathComponent("sessions.db").path)")
            let registry = ConnectionRegistry()
            // The gateway reads the operator's Secrets with its own ServiceAccount and the shipped RBAC.
            let rbac = try h.kubectl(["apply", "-k", OperatorHarness.repositoryRoot.appendingPathComponent("config/rbac").path])
            XCTAssertEqual(rbac.status, 0, rbac.output)
            let gatewayToken = try await h.admin.createToken(namespace: "agentgate-system", serviceAccount: "agentgate-gateway").token
            let watcher = ConnectionConfigWatcher(client: try h.fixture.client(token: gatewayToken), namespace: "agentgate-system",
                                                  registry: registry)
            watcher.start()
            let upstream = try KubeConfig.fromKubeconfig(yaml: h.fixture.cluster.kubeconfig(user: "gateway", token: ""))
            let gateway = try Gateway(upstream: upstream, registry: registry, store: store)
            let authority = try ClusterCertificateAuthority.loadOrCreate(in: directory.appendingPathComponent("tls"))
            let port = try await gateway.start(host: "127.0.0.1", port: 0,
                                               tls: NIOSSLContext(configuration: authority.serverTLSConfiguration()))
            defer {
                watcher.stop()
                Task {
                    await gateway.shutdown()
                    try? await store.close()
                    await issuer.shutdown()
                }
            }
            _ = try await h.startOperator { $0.gatewayURL = "https://127.0.0.1:\(port)" }

            let scenario = """
                apiVersion: v1
                kind: ServiceAccount
                metadata: {name: reader, namespace: default}
                ---
                apiVersion: rbac.authorization.k8s.io/v1
                kind: Role
                metadata: {name: reader, namespace: default}
                rules: [{apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list"]}]
                ---
                apiVersion: rbac.authorization.k8s.io/v1
                kind: RoleBinding
                metadata: {name: reader, namespace: default}
                roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
                subjects: [{kind: ServiceAccount, name: reader, namespace: default}]
                ---
                apiVersion: v1
                kind: ConfigMap
                metadata: {name: app-settings, namespace: default}
                data: {mode: blue}
                ---
                apiVersion: agentgate.io/v1alpha1
                kind: AgentConnection
                metadata: {name: reader, namespace: default}
                spec:
                  serviceAccountName: reader
                  identity: {issuer: "\(issuerURL)", audiences: [agentgate], allowedSubjects: [agent-7]}
                """
            let applied = try h.kubectl(["apply", "-f", "-"], input: scenario)
            XCTAssertEqual(applied.status, 0, applied.output)
            let ready = try await h.ready("reader")
            let endpoint = try XCTUnwrap(ready.status?.endpoint)
            XCTAssertEqual(endpoint, "https://127.0.0.1:\(port)/c/default/reader")
            try await eventually(10, "the gateway to load the connection") { registry.connection(namespace: "default", name: "reader") != nil }

            let agentToken = try await issuer.token(DevOIDCIssuer.TokenRequest(subject: "agent-7", audience: "agentgate", model: "test-model"))
            let agentKubeconfig = directory.appendingPathComponent("agent.kubeconfig")
            try """
                apiVersion: v1
                kind: Config
                clusters: [{name: gw, cluster: {server: "\(endpoint)", certificate-authority-data: \(Data(authority.caPEM.utf8).base64EncodedString())}}]
                users: [{name: agent, user: {token: "\(agentToken)"}}]
                contexts: [{name: gw, context: {cluster: gw, user: agent, namespace: default}}]
                current-context: gw
                """.write(to: agentKubeconfig, atomically: true, encoding: .utf8)
            func agentKubectl(_ arguments: [String]) throws -> ProcessResult {
                try ProcessRunner.run("kubectl", ["--kubeconfig", agentKubeconfig.path, "--request-timeout=20s"] + arguments)
            }
            let get = try agentKubectl(["get", "configmap", "app-settings", "-o", "jsonpath={.data.mode}"])
            XCTAssertEqual(get.status, 0, get.output)
            XCTAssertEqual(get.stdout, "blue")
            let forbidden = try agentKubectl(["get", "secrets"])
            XCTAssertNotEqual(forbidden.status, 0, "the agent has exactly the ServiceAccount's RBAC")
            XCTAssertTrue(forbidden.output.contains("system:serviceaccount:default:reader"), forbidden.output)

            let deleted = try h.kubectl(["delete", "agc", "reader", "-n", "default", "--wait=true", "--timeout=15s"])
            XCTAssertEqual(deleted.status, 0, deleted.output)
            try await eventually(10, "the gateway to drop the connection") { registry.connection(namespace: "default", name: "reader") == nil }
            let closed = try agentKubectl(["get", "configmap", "app-settings"])
            XCTAssertNotEqual(closed.status, 0)
            XCTAssertTrue(closed.output.contains("NotFound") || closed.output.contains("not found"), closed.output)
        }
    }
}
