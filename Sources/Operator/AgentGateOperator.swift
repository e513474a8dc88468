import AgentGateAPI
import ControllerRuntime
import Foundation
import KubeClient
import KubeCore
import Logging
import Prometheus
import ServiceLifecycle

/// What `agentgate operator` is told on its command line.
public struct OperatorOptions: Sendable {
    /// Where the connection Secrets go (the gateway's namespace; only its ServiceAccount reads them).
    public var gatewayNamespace = "agentgate-system"
    /// The gateway's external URL; `status.endpoint` is `<gatewayURL>/c/<namespace>/<name>`.
    public var gatewayURL: String?
    /// Field manager of every write (server-side apply), so the gateway's own fields are never touched.
    public var fieldManager = "agentgate-operator"
    /// Concurrent AgentConnection reconciles.
    public var workers = 4
    /// Mint tokens even when the `agentgate-serviceaccount-binding` admission policy or its
    /// binding is missing (`--allow-missing-binding-policy`; see ``BindingPolicyCheck``).
    public var allowMissingBindingPolicy = false
    /// Issuers whose connections are served (`--trusted-issuer`); empty: every issuer.
    public var trustedIssuers = TrustedIssuers([])
    /// Namespaces whose AgentConnections, MaskingRules, RecordingPolicies and ServiceAccounts
    /// are watched (`--watch-namespace`); empty: all namespaces.
    public var watchNamespaces: [String] = []
    /// How connections' issuers are checked for the `IssuerReachable` condition (nil: not checked).
    public var issuerChecks: IssuerReachability.Configuration? = IssuerReachability.Configuration()
    /// Leader election (nil: off); the Lease lives in the gateway namespace by default.
    public var leaderElection: LeaderElector.Configuration?
    public var metricsAddress: (host: String, port: Int)?
    public var healthAddress: (host: String, port: Int)?
    /// This replica's name in Events and the Lease.
    public var identity = LeaderElector.defaultIdentity()
    /// The clock (tests move it).
    public var now: @Sendable () -> Date = { Date() }
    public var logger = Logger(label: "agentgate.operator")

    public init(gatewayNamespace: String = "agentgate-system", gatewayURL: String? = nil) {
        self.gatewayNamespace = gatewayNamespace
        self.gatewayURL = gatewayURL
    }
}

/// The operator: three controllers on one ``Manager``.
///
/// - `agentconnection` (``AgentConnectionReconciler``), requeued by its own objects and by
///   the ServiceAccounts, RecordingPolicies and MaskingRules it resolves, by changes to
///   its Secrets in the gateway namespace (deleted or edited by someone else: repaired), and
///   by an issuer whose ``IssuerReachability`` outcome changed;
/// - `maskingrule` and `recordingpolicy`, which validate and report status.
///
/// Run it as a swift-service-lifecycle `Service` (``manager``), or with ``run()``.
public final class AgentGateOperator: Sendable {
    public let manager: Manager
    public let options: OperatorOptions
    let connectionReconciler: AgentConnectionReconciler

    public init(client: KubernetesClient, options: OperatorOptions) throws {
        self.options = options
        var election = options.leaderElection
        election?.identity = options.identity
        var managerOptions = Manager.Options(leaderElection: election, metricsAddress: options.metricsAddress,
                                             healthAddress: options.healthAddress)
        managerOptions.logger = options.logger
        managerOptions.version = AgentGateVersion.current
        let manager = try Manager(client: client, options: managerOptions)
        self.manager = manager

        let logger = options.logger
        let watched = options.watchNamespaces
        let connections = Informer<AgentConnection>(client: client, namespaces: watched, logger: logger)
        let rules = Informer<MaskingRule>(client: client, namespaces: watched, logger: logger)
        let policies = Informer<RecordingPolicy>(client: client, namespaces: watched, logger: logger)
        let serviceAccounts = Informer<ServiceAccount>(client: client, namespaces: watched, logger: logger)
        let secrets = Informer<Secret>(client: client, namespace: options.gatewayNamespace,
                                       labelSelector: "\(GatewayConnectionConfig.managedByLabel)=\(GatewayConnectionConfig.managedByValue)",
                                       logger: logger)
        let status = StatusApplier(client: client, fieldManager: options.fieldManager)
        let events = EventRecorder(configuration: .init(controller: "agentgate.io/operator", instance: options.identity),
                                   client: client, logger: logger)

        let issuers = options.issuerChecks.map { IssuerReachability(configuration: $0) }
        let reconciler = AgentConnectionReconciler(
            client: client, options: options, connections: connections, serviceAccounts: serviceAccounts,
            recordingPolicies: policies, maskingRules: rules, secrets: secrets, issuers: issuers, status: status, events: events,
            logger: logger)
        connectionReconciler = reconciler
        let bindingPolicyCheck = options.allowMissingBindingPolicy ? nil : BindingPolicyCheck(
            wrapping: reconciler, policies: Informer(client: client, logger: logger), bindings: Informer(client: client, logger: logger),
            connections: connections, status: status, events: events)
        let connectionController = Controller(name: "agentconnection", reconciler: bindingPolicyCheck ?? reconciler, workers: options.workers,
                                              registry: manager.registry, logger: logger)
        let ruleController = Controller(name: "maskingrule", reconciler: MaskingRuleReconciler(rules: rules, status: status, events: events),
                                        workers: 2, registry: manager.registry, logger: logger)
        let policyController = Controller(name: "recordingpolicy",
                                          reconciler: RecordingPolicyReconciler(policies: policies, status: status, events: events),
                                          workers: 2, registry: manager.registry, logger: logger)

        connections.addHandler(EventHandler.enqueueObject(connectionController))
        rules.addHandler(EventHandler.enqueueObject(ruleController))
        policies.addHandler(EventHandler.enqueueObject(policyController))
        @Sendable func requests(_ matching: [AgentConnection]) -> [ReconcileRequest] {
            matching.map { ReconcileRequest(namespace: $0.metadata.namespace ?? "", name: $0.metadata.name ?? "") }
        }
        serviceAccounts.addHandler(EventHandler.enqueueMapped(connectionController) { (account: ServiceAccount) in
            requests(connections.cache.list(namespace: account.metadata.namespace ?? "").filter {
                $0.spec.serviceAccountName == account.metadata.name
            })
        })
        policies.addHandler(EventHandler.enqueueMapped(connectionController) { (policy: RecordingPolicy) in
            requests(connections.cache.list(namespace: policy.metadata.namespace ?? "").filter {
                $0.spec.recordingPolicyRef?.name == policy.metadata.name
            })
        })
        rules.addHandler(EventHandler.enqueueMapped(connectionController) { (rule: MaskingRule) in
            let labels = rule.metadata.labels ?? [:]
            return requests(connections.cache.list(namespace: rule.metadata.namespace ?? "").filter {
                $0.spec.maskingRuleSelector?.matches(labels) == true
            })
        })
        issuers?.addHandler { issuer in
            for request in requests(connections.cache.list().filter({ $0.spec.identity.issuer == issuer })) {
                connectionController.enqueue(request)
            }
        }
        secrets.addHandler { event in
            guard let key = event.object.metadata.annotations?[ConnectionSecret.connectionAnnotation],
                  let slash = key.firstIndex(of: "/") else { return }
            let request = ReconcileRequest(namespace: String(key[..<slash]), name: String(key[key.index(after: slash)...]))
            let current: Secret? = if case .deleted = event { nil } else { event.object }
            if reconciler.secretChanged(request, now: current) { connectionController.enqueue(request) }
        }

        if let bindingPolicyCheck {
            bindingPolicyCheck.requeueAll(into: connectionController)
            manager.add(bindingPolicyCheck.policies)
            manager.add(bindingPolicyCheck.bindings)
        }
        manager.add(connections)
        manager.add(rules)
        manager.add(policies)
        manager.add(serviceAccounts)
        manager.add(secrets)
        manager.add(connectionController)
        manager.add(ruleController)
        manager.add(policyController)
    }

    /// Runs until graceful shutdown (``shutDown()``, or SIGTERM when run in a `ServiceGroup`).
    public func run() async throws {
        try await manager.run()
    }

    public func shutDown() {
        manager.shutDown()
    }
}
