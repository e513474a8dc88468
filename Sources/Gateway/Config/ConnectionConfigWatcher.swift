import AgentGateAPI
import ControllerRuntime
import Foundation
import KubeClient
import KubeCore
import Logging
import ServiceLifecycle

/// Feeds a ``ConnectionRegistry`` from the operator's Secrets in the gateway namespace
/// (label `app.kubernetes.io/managed-by=agentgate-operator`), through an ``Informer`` of the
/// controller runtime, which lists first, resumes after disconnects and relists after
/// 410 Gone (delivering what the relist no longer found as deletions).
///
/// Contract: added/modified Secrets are applied as they arrive (no restart); deleted ones
/// remove their connection; a Secret that cannot be read is logged with its name and the
/// connection keeps its previous configuration. ``hasSynced`` turns true (and
/// ``waitUntilSynced()`` returns) once the first full list was applied, so the gateway does
/// not answer 404 for connections it simply has not read yet. As a `Service`, ``run()``
/// watches until graceful shutdown or cancellation; ``start()``/``stop()`` do the same
/// outside a `ServiceGroup` (tests).
public final class ConnectionConfigWatcher: Service, @unchecked Sendable {
    /// The informer over the connection Secrets.
    public let informer: Informer<Secret>
    private let lock = NSLock()
    private var task: Task<Void, Never>?

    public init(client: KubernetesClient, namespace: String, registry: ConnectionRegistry,
                logger: Logger = Logger(label: "agentgate.gateway.config")) {
        let selector = "\(GatewayConnectionConfig.managedByLabel)=\(GatewayConnectionConfig.managedByValue)"
        informer = Informer<Secret>(client: client, namespace: namespace, labelSelector: selector, logger: logger)
        informer.addHandler { event in
            switch event {
            case .added(let secret), .updated(_, let secret):
                do {
                    try registry.apply(secretName: secret.metadata.name ?? "<unnamed>", data: secret.data ?? [:])
                } catch {
                    logger.error("\(error)")
                }
            case .deleted(let secret):
                registry.removeSecret(named: secret.metadata.name ?? "")
            }
        }
    }

    /// Whether the first full list of connection Secrets has been applied.
    public var hasSynced: Bool { informer.hasSynced }

    public func run() async {
        await cancelWhenGracefulShutdown { await self.informer.run() }
    }

    public func start() {
        lock.withLock { task = Task { await self.run() } }
    }

    public func waitUntilSynced() async {
        await informer.waitForSync()
    }

    public func stop() {
        lock.withLock { task }?.cancel()
    }
}
