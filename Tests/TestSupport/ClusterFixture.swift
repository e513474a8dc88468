import AgentGateAPI
import Foundation
import KubeClient
import KubeCore
import LocalCluster

/// A real embedded API server for one test (random port, AgentGate CRDs, state persisted in its
/// own directory so it can be restarted on the same port), and clients pointed at it.
public final class ClusterFixture: @unchecked Sendable {
    public let directory: URL
    public private(set) var cluster: LocalCluster
    private var clients: [KubernetesClient] = []
    private let useTLS: Bool
    private let watchHistory: Int
    private let bookmarkInterval: Duration

    public init(useTLS: Bool = false, watchHistory: Int = 10_000, bookmarkInterval: Duration = .seconds(30)) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kubeclient-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.useTLS = useTLS
        self.watchHistory = watchHistory
        self.bookmarkInterval = bookmarkInterval
        cluster = try await Self.start(directory: directory, port: 0, useTLS: useTLS, watchHistory: watchHistory,
                                       bookmarkInterval: bookmarkInterval)
    }

    private static func start(directory: URL, port: Int, useTLS: Bool, watchHistory: Int, bookmarkInterval: Duration) async throws -> LocalCluster {
        var configuration = LocalCluster.Configuration(dataDirectory: directory, port: port, useTLS: useTLS)
        configuration.customResourceDefinitions = AgentGateCRDs.all.map(\.yaml)
        configuration.watchHistory = watchHistory
        configuration.bookmarkInterval = bookmarkInterval
        configuration.persistState = true
        return try await LocalCluster.start(configuration)
    }

    /// Stops the server (state saved) and starts it again on the same port.
    public func restart(downFor pause: Duration = .milliseconds(100)) async throws {
        let port = cluster.port
        await cluster.stop()
        try await Task.sleep(for: pause)
        var lastError: Error?
        for _ in 0..<50 {
            do {
                cluster = try await Self.start(directory: directory, port: port, useTLS: useTLS, watchHistory: watchHistory,
                                               bookmarkInterval: bookmarkInterval)
                return
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        throw lastError ?? CancellationError()
    }

    /// A client for `token` (default: the admin) through a kubeconfig, as a user would build one.
    public func client(token: String? = nil, options: KubernetesClient.Options = .init()) throws -> KubernetesClient {
        let yaml = cluster.kubeconfig(user: "test", token: token ?? cluster.adminToken)
        let config = try KubeConfig.fromKubeconfig(yaml: yaml)
        let client = try KubernetesClient(config: config, options: options)
        clients.append(client)
        return client
    }

    /// The admin kubeconfig written to the fixture's directory, for real kubectl (use TLS:
    /// kubectl sends a bearer token only over HTTPS).
    public func kubeconfigFile() throws -> String {
        let url = directory.appendingPathComponent("admin.kubeconfig")
        try cluster.kubeconfig(user: "admin", token: cluster.adminToken).write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    public func adopt(_ client: KubernetesClient) -> KubernetesClient {
        clients.append(client)
        return client
    }

    public func tearDown() async {
        for client in clients { try? await client.shutdown() }
        clients.removeAll()
        await cluster.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A valid AgentConnection.
    /// `ttl`/`rotateBefore` set `spec.credentials` when either is given.
    public static func connection(_ name: String, namespace: String = "default", serviceAccount: String = "agent-sa",
                                  ttl: String? = nil, rotateBefore: String? = nil) -> AgentConnection {
        AgentConnection(metadata: ObjectMeta(name: name, namespace: namespace), spec: AgentConnectionSpec(
            serviceAccountName: serviceAccount,
            identity: AgentIdentity(issuer: "https://issuer.example.com", audiences: ["agentgate"], allowedSubjects: ["agent-1"]),
            credentials: ttl == nil && rotateBefore == nil ? nil : CredentialPolicy(tokenTTL: ttl, rotateBefore: rotateBefore)))
    }
}

/// Runs `body` with a fixture and always tears it down (AsyncHTTPClient must be shut down).
public func withCluster(useTLS: Bool = false, watchHistory: Int = 10_000, bookmarkInterval: Duration = .seconds(30),
                 _ body: (ClusterFixture) async throws -> Void) async throws {
    let fixture = try await ClusterFixture(useTLS: useTLS, watchHistory: watchHistory, bookmarkInterval: bookmarkInterval)
    do {
        try await body(fixture)
    } catch {
        await fixture.tearDown()
        throw error
    }
    await fixture.tearDown()
}

/// Runs `body` with a deadline, failing (not hanging) when it is exceeded.
public func withTimeout<T: Sendable>(_ seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        guard let first = try await group.next(), let value = first else {
            group.cancelAll()
            throw TimeoutError(description: "timed out after \(seconds) s: \(what)")
        }
        group.cancelAll()
        return value
    }
}

public struct TimeoutError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// Polls `condition` every 20 ms until it holds, failing (not hanging) after `seconds`.
public func eventually(_ seconds: Double = 10, _ what: @autoclosure () -> String,
                       _ condition: @Sendable () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    if try await condition() { return }
    throw TimeoutError(description: "timed out after \(seconds) s waiting for \(what())")
}

/// nil when `body` throws `KubeError.notFound`; otherwise what happened instead (for an assertion message).
public func notFoundProblem<T>(_ body: () async throws -> T) async -> String? {
    do {
        _ = try await body()
        return "expected 404, got success"
    } catch KubeError.notFound {
        return nil
    } catch {
        return "expected 404, got \(error)"
    }
}
