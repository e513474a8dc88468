import AgentGateAPI
import ControllerRuntime
import Foundation
import KubeClient
import KubeCore
import Operator
import TestSupport
import XCTest

/// An embedded API server (HTTPS, so real kubectl sends tokens) with operators running
/// in-process against it, and helpers to read what they wrote.
final class OperatorHarness: @unchecked Sendable {
    let fixture: ClusterFixture
    let admin: KubernetesClient
    let kubeconfigPath: String
    private var running: [(AgentGateOperator, Task<Void, Error>)] = []

    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    init() async throws {
        fixture = try await ClusterFixture(useTLS: true)
        admin = try fixture.client()
        kubeconfigPath = try fixture.kubeconfigFile()
        try await installBindingPolicy()
    }

    /// Applies `config/admission/serviceaccount_binding_policy.yaml` as the install does: without
    /// it the operator mints no token (BindingPolicyMissing). The admin, who creates the tests'
    /// connections, may use every ServiceAccount.
    func installBindingPolicy() async throws {
        let file = Self.repositoryRoot.appendingPathComponent("config/admission/serviceaccount_binding_policy.yaml")
        for document in try JSONValue.parseYAMLDocuments(String(contentsOf: file, encoding: .utf8)) {
            try await fixture.cluster.applyObject(document)
        }
    }

    /// Starts an operator; by default as the admin, on a fresh client (so its request counts are its own).
    @discardableResult
    func startOperator(token: String? = nil, identity: String = "operator-test",
                       configure: (inout OperatorOptions) -> Void = { _ in }) async throws -> (AgentGateOperator, KubernetesClient) {
        let client = try fixture.client(token: token)
        var options = OperatorOptions(gatewayNamespace: "agentgate-system", gatewayURL: "https://gateway.example.com")
        options.identity = identity
        configure(&options)
        let agentOperator = try AgentGateOperator(client: client, options: options)
        let task = Task { try await agentOperator.run() }
        running.append((agentOperator, task))
        return (agentOperator, client)
    }

    /// Stops an operator as SIGTERM would (drain, release).
    func stop(_ agentOperator: AgentGateOperator) async {
        guard let index = running.firstIndex(where: { $0.0 === agentOperator }) else { return }
        let (_, task) = running.remove(at: index)
        agentOperator.shutDown()
        _ = try? await task.value
    }

    /// Kills an operator as SIGKILL would (no drain, no release).
    func kill(_ agentOperator: AgentGateOperator) async {
        guard let index = running.firstIndex(where: { $0.0 === agentOperator }) else { return }
        let (_, task) = running.remove(at: index)
        task.cancel()
        _ = try? await task.value
    }

    func tearDown() async {
        for (agentOperator, task) in running {
            agentOperator.shutDown()
            _ = try? await task.value
        }
        running.removeAll()
        await fixture.tearDown()
    }

    @discardableResult
    func kubectl(_ arguments: [String], input: String? = nil) throws -> ProcessResult {
        try ProcessRunner.run("kubectl", ["--kubeconfig", kubeconfigPath, "--request-timeout=20s"] + arguments, input: input, timeout: 60)
    }

    func connection(_ name: String, namespace: String = "default") async throws -> AgentConnection {
        try await admin.get(AgentConnection.self, name: name, namespace: namespace)
    }

    func waitFor(_ name: String, namespace: String = "default", _ what: String, timeout: Double = 15,
                 _ condition: @escaping @Sendable (AgentConnection) -> Bool) async throws -> AgentConnection {
        let admin = self.admin
        try await eventually(timeout, "\(namespace)/\(name): \(what)") {
            guard let connection = try? await admin.get(AgentConnection.self, name: name, namespace: namespace) else { return false }
            return condition(connection)
        }
        return try await connection(name, namespace: namespace)
    }

    func ready(_ name: String, namespace: String = "default", timeout: Double = 15) async throws -> AgentConnection {
        try await waitFor(name, namespace: namespace, "Ready=True at its generation", timeout: timeout) {
            ($0.status?.conditions ?? []).isTrue("Ready") && $0.status?.observedGeneration == $0.metadata.generation
        }
    }

    /// The connection's Secret in the gateway namespace, decoded.
    func secret(_ name: String, namespace: String = "default") async throws -> (config: GatewayConnectionConfig, token: String, secret: Secret)? {
        let secretName = GatewayConnectionConfig.secretName(namespace: namespace, name: name)
        guard let secret = try? await admin.get(Secret.self, name: secretName, namespace: "agentgate-system"),
              let config = secret.data?[GatewayConnectionConfig.configKey].flatMap({ Data(base64Encoded: $0) }),
              let token = secret.data?[GatewayConnectionConfig.tokenKey].flatMap({ Data(base64Encoded: $0) }) else { return nil }
        return (try JSONDecoder().decode(GatewayConnectionConfig.self, from: config), String(decoding: token, as: UTF8.self), secret)
    }

    /// ``secret(_:namespace:)``, failing when there is none.
    func requireSecret(_ name: String, namespace: String = "default") async throws -> (config: GatewayConnectionConfig, token: String, secret: Secret) {
        guard let found = try await secret(name, namespace: namespace) else {
            throw TimeoutError(description: "no connection Secret for \(namespace)/\(name)")
        }
        return found
    }

    func createServiceAccount(_ name: String, namespace: String = "default") async throws {
        _ = try await admin.create(ServiceAccount(metadata: ObjectMeta(name: name, namespace: namespace)))
    }

    /// Events (core/v1, as kubectl describe reads them) about a connection.
    func events(about name: String, namespace: String = "default") async throws -> [JSONValue] {
        try await admin.list(.events, namespace: namespace, options: ListOptions(fieldSelector: "involvedObject.name=\(name)")).items
    }
}

/// Runs `body` with a harness and always tears it down.
func withOperatorHarness(_ body: (OperatorHarness) async throws -> Void) async throws {
    let harness = try await OperatorHarness()
    do {
        try await body(harness)
    } catch {
        await harness.tearDown()
        throw error
    }
    await harness.tearDown()
}
