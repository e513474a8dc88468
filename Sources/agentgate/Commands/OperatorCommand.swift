import ArgumentParser
import ControllerRuntime
import Foundation
import HTTPServing
import KubeClient
import KubeCore
import Logging
import Operator
import ServiceLifecycle

/// `agentgate operator`: reconciles AgentConnection, MaskingRule and RecordingPolicy into
/// gateway configuration (see Sources/Operator). Flags as DESIGN.md lists them.
struct OperatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "operator",
        abstract: "Run the operator: turn AgentConnections, MaskingRules and RecordingPolicies into gateway configuration.",
        discussion: """
            For each AgentConnection the operator requests a short-lived token for \
            spec.serviceAccountName (TokenRequest), stores it with the compiled gateway \
            configuration in a Secret in --gateway-namespace (readable by the gateway's \
            ServiceAccount only), rotates it spec.credentials.rotateBefore ahead of expiry, and \
            reports Ready / Reconciling / Stalled conditions and status.endpoint \
            (--gateway-url + /c/<namespace>/<name>). Deleting a connection deletes its Secret.

            With --leader-elect only the replica holding the Lease \
            (--leader-election-namespace/--leader-election-id) reconciles; SIGTERM drains \
            in-flight work, then releases the Lease. /metrics (controller-runtime names) is \
            served on --metrics-address, /healthz and /readyz on --health-address.

            No token is requested while the ValidatingAdmissionPolicy \
            agentgate-serviceaccount-binding or its binding (config/admission) is missing: \
            every connection is then Stalled with reason BindingPolicyMissing, since without \
            the policy anyone who may create a connection could borrow any ServiceAccount of \
            its namespace. --allow-missing-binding-policy turns this check off.

            A connection whose spec.identity.issuer is not one of the --trusted-issuer URLs \
            (compared exactly, a trailing slash dropped) is Stalled with reason \
            IssuerNotTrusted and its Secret is deleted; without --trusted-issuer every issuer \
            is trusted, with a warning at start. Each issuer's discovery document and JWKS are \
            fetched (every 5 min, every 30 s while failing) into the IssuerReachable \
            condition, a warning that leaves Ready as it is. --watch-namespace limits what is \
            listed and watched to those namespaces.

            In-cluster configuration is used when --kubeconfig is absent and neither \
            KUBECONFIG nor ~/.kube/config exists.
            """
    )

    @OptionGroup var kube: KubeconfigOptions

    @OptionGroup var logging: LogOptions

    @Flag(name: .long, help: "Elect a leader among replicas through a coordination.k8s.io Lease; only the leader reconciles.")
    var leaderElect = false

    @Option(name: .long, help: "Namespace of the leader-election Lease (default: --gateway-namespace).")
    var leaderElectionNamespace: String?

    @Option(name: .long, help: "Name of the leader-election Lease.")
    var leaderElectionID = "agentgate-operator"

    @Option(name: .long, help: "HOST:PORT serving Prometheus metrics at /metrics (empty: off).")
    var metricsAddress = "127.0.0.1:8080"

    @Option(name: .long, help: "HOST:PORT serving /healthz and /readyz (empty: off).")
    var healthAddress = "127.0.0.1:8081"

    @Option(name: .long, help: "Namespace where connection Secrets are written (the gateway's).")
    var gatewayNamespace = "agentgate-system"

    @Option(name: .long, help: "The gateway's external URL, published in each connection's status.endpoint.")
    var gatewayURL: String?

    @Option(name: .long, help: "Concurrent AgentConnection reconciles.")
    var workers = 4

    @Option(name: .customLong("trusted-issuer"),
            help: "An OIDC issuer URL connections may name in spec.identity.issuer (repeat for several; none: every issuer is trusted).")
    var trustedIssuers: [String] = []

    @Flag(name: .customLong("allow-missing-binding-policy"),
          help: "Request tokens even when the agentgate-serviceaccount-binding admission policy or its binding is not installed (then nothing checks that a connection's author may use its ServiceAccount).")
    var allowMissingBindingPolicy = false

    @Option(name: .customLong("watch-namespace"),
            help: "A namespace whose AgentConnections, MaskingRules and RecordingPolicies are reconciled (repeat for several; none: all).")
    var watchNamespaces: [String] = []

    func validate() throws {
        guard workers >= 1 else { throw ValidationError("--workers \(workers): must be at least 1") }
        if let gatewayURL {
            guard let url = URL(string: gatewayURL), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw ValidationError("--gateway-url \(gatewayURL): expected an http(s) URL such as https://agentgate.example.com")
            }
        }
        for issuer in trustedIssuers {
            guard let url = URL(string: issuer), ["http", "https"].contains(url.scheme ?? ""), !(url.host ?? "").isEmpty else {
                throw ValidationError("--trusted-issuer \(issuer): expected an issuer URL such as https://token.actions.githubusercontent.com")
            }
        }
        for namespace in watchNamespaces {
            let problems = NameValidation.isDNS1123Label(namespace)
            guard problems.isEmpty else { throw ValidationError("--watch-namespace \(namespace): not a namespace name: \(problems.joined(separator: "; "))") }
        }
        for (flag, value) in [("--metrics-address", metricsAddress), ("--health-address", healthAddress)] where !value.isEmpty {
            do { _ = try ListenAddress.parse(value, flag: flag) } catch { throw ValidationError("\(error)") }
        }
    }

    func run() async throws {
        try await logging.run(label: "agentgate.operator") {
            let logger = Logger(label: "agentgate.operator")
            let client = try KubernetesClient(kubeconfigPath: kube.kubeconfig, context: kube.context)
            do {
                try await run(client: client, logger: logger)
            } catch {
                try? await client.shutdown()
                throw error
            }
            try? await client.shutdown()
        }
    }

    private func run(client: KubernetesClient, logger: Logger) async throws {
        var options = OperatorOptions(gatewayNamespace: gatewayNamespace, gatewayURL: gatewayURL)
        options.workers = workers
        options.logger = logger
        options.trustedIssuers = TrustedIssuers(trustedIssuers)
        options.watchNamespaces = watchNamespaces
        options.allowMissingBindingPolicy = allowMissingBindingPolicy
        if allowMissingBindingPolicy {
            logger.warning("--allow-missing-binding-policy: tokens are requested even without the agentgate-serviceaccount-binding admission policy; make sure something else checks that a connection's author may use its ServiceAccount")
        }
        if options.trustedIssuers.trustsEveryIssuer {
            logger.warning("no --trusted-issuer given: every OIDC issuer an AgentConnection names is trusted, so whoever may create a connection chooses who its agents are; list your issuers with --trusted-issuer")
        }
        if leaderElect {
            options.leaderElection = LeaderElector.Configuration(leaseName: leaderElectionID,
                                                                 leaseNamespace: leaderElectionNamespace ?? gatewayNamespace)
        }
        if !metricsAddress.isEmpty { options.metricsAddress = try ListenAddress.parse(metricsAddress, flag: "--metrics-address") }
        if !healthAddress.isEmpty { options.healthAddress = try ListenAddress.parse(healthAddress, flag: "--health-address") }
        let agentOperator = try AgentGateOperator(client: client, options: options)
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: agentOperator.manager, successTerminationBehavior: .gracefullyShutdownGroup,
                             failureTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        logger.info("operator starting", metadata: [
            "server": "\(client.config.server)", "gatewayNamespace": "\(gatewayNamespace)",
            "leaderElection": "\(leaderElect)", "identity": "\(options.identity)",
            "trustedIssuers": "\(options.trustedIssuers.issuers)", "watchNamespaces": "\(watchNamespaces.isEmpty ? ["(all)"] : watchNamespaces)",
        ])
        try await group.run()
    }
}
