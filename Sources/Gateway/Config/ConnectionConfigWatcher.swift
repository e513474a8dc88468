import AgentGateAPI
import Foundation
import KubeClient
import KubeCore
import Logging

/// Feeds a ``ConnectionRegistry`` from the operator's Secrets in the gateway namespace
/// (label `app.kubernetes.io/managed-by=agentgate-operator`), through KubeClient's watcher,
/// which lists first, resumes after disconnects and relists after 410 Gone.
///
/// Contract: added/modified Secrets are applied as they arrive (no restart); deleted ones
/// remove their connection; a Secret that cannot be read is logged with its name and the
/// connection keeps its previous configuration. ``waitUntilSynced()`` returns once the first
/// full list was applied, so the gateway does not answer 404 for connections it simply has
/// not read yet.
public final class ConnectionConfigWatcher: @unchecked Sendable {
    private let client: KubernetesClient
    private let namespace: String
    private let registry: ConnectionRegistry
    private let logger: Logger
    private var task: Task<Void, Never>?
    private let synced = AsyncFlag()

    public init(client: KubernetesClient, namespace: String, registry: ConnectionRegistry,
                logger: Logger = Logger(label: "agentgate.gateway.config")) {
        self.client = client
        self.namespace = namespace
        self.registry = registry
        self.logger = logger
    }

    public func start() {
        let selector = "\(GatewayConnectionConfig.managedByLabel)=\(GatewayConnectionConfig.managedByValue)"
        var options = WatchOptions(labelSelector: selector)
        let logger = self.logger
        options.onError = { error in logger.warning("watching connection Secrets: \(error)") }
        let watcher = client.watch(.secrets, namespace: namespace, options: options)
        let registry = self.registry
        let synced = self.synced
        task = Task {
            var seen = Set<String>()
            for await event in watcher {
                switch event {
                case .added(let secret), .modified(let secret):
                    let name = secret[path: ["metadata", "name"]]?.stringValue ?? ""
                    seen.insert(name)
                    do {
                        try registry.apply(secret: secret)
                    } catch {
                        logger.error("\(error)")
                    }
                case .deleted(let secret):
                    let name = secret[path: ["metadata", "name"]]?.stringValue ?? ""
                    seen.remove(name)
                    registry.removeSecret(named: name)
                case .synced:
                    registry.retainSecrets(seen)
                    await synced.set()
                case .bookmark:
                    break
                }
            }
        }
    }

    public func waitUntilSynced() async {
        await synced.wait()
    }

    public func stop() {
        task?.cancel()
    }
}

/// A one-shot flag tasks can wait for.
actor AsyncFlag {
    private var isSet = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func set() {
        guard !isSet else { return }
        isSet = true
        for waiter in waiters { waiter.resume() }
        waiters = []
    }

    func wait() async {
        if isSet { return }
        await withCheckedContinuation { waiters.append($0) }
    }
}
