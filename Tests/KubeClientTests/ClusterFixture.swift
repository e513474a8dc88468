import AgentGateAPI
import Foundation
import KubeClient
import KubeCore
import LocalCluster
import XCTest

extension AgentConnection: KubernetesResource {
    public static var group: String { kindInfo.group }
    public static var version: String { kindInfo.version }
    public static var plural: String { kindInfo.plural }
    public static var kind: String { kindInfo.kind }
    public static var namespaced: Bool { kindInfo.namespaced }
}

/// A real embedded API server for one test (random port, AgentGate CRDs, state persisted in its
/// own directory so it can be restarted on the same port), and clients pointed at it.
final class ClusterFixture {
    let directory: URL
    private(set) var cluster: LocalCluster
    private var clients: [KubernetesClient] = []
    private let useTLS: Bool
    private let watchHistory: Int
    private let bookmarkInterval: Duration

    init(useTLS: Bool = false, watchHistory: Int = 10_000, bookmarkInterval: Duration = .seconds(30)) async throws {
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
    func restart(downFor pause: Duration = .milliseconds(100)) async throws {
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
    func client(token: String? = nil, options: KubernetesClient.Options = .init()) throws -> KubernetesClient {
        let yaml = cluster.kubeconfig(user: "test", token: token ?? cluster.adminToken)
        let config = try KubeConfig.fromKubeconfig(yaml: yaml)
        let client = try KubernetesClient(config: config, options: options)
        clients.append(client)
        return client
    }

    func adopt(_ client: KubernetesClient) -> KubernetesClient {
        clients.append(client)
        return client
    }

    func tearDown() async {
        for client in clients { try? await client.shutdown() }
        clients.removeAll()
        await cluster.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A valid AgentConnection.
    static func connection(_ name: String, namespace: String = "default") -> AgentConnection {
        AgentConnection(metadata: ObjectMeta(name: name, namespace: namespace),
                        spec: AgentConnectionSpec(serviceAccountName: "agent-sa",
                                                  identity: AgentIdentity(issuer: "https://issuer.example.com", audiences: ["agentgate"],
                                                                          allowedSubjects: ["agent-1"])))
    }
}

/// Runs `body` with a fixture and always tears it down (AsyncHTTPClient must be shut down).
func withCluster(useTLS: Bool = false, watchHistory: Int = 10_000, bookmarkInterval: Duration = .seconds(30),
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

/// Fails the test unless `body` throws a KubeError matching `matches`; returns the error.
@discardableResult
func assertKubeError<T>(_ body: @autoclosure () async throws -> T, file: StaticString = #filePath, line: UInt = #line,
                        _ matches: (KubeError) -> Bool) async -> KubeError? {
    do {
        _ = try await body()
        XCTFail("expected a KubeError, got success", file: file, line: line)
        return nil
    } catch let error as KubeError {
        XCTAssertTrue(matches(error), "unexpected KubeError: \(error) (\(String(describing: error.status)))", file: file, line: line)
        return error
    } catch {
        XCTFail("expected a KubeError, got \(error)", file: file, line: line)
        return nil
    }
}

/// Runs `body` with a deadline, failing (not hanging) when it is exceeded.
func withTimeout<T: Sendable>(_ seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
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

struct TimeoutError: Error, CustomStringConvertible {
    var description: String
}
