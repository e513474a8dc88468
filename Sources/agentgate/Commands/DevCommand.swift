import AgentGateAPI
import ArgumentParser
import Foundation
import KubeClient
import LocalCluster
import Logging
import Operator

/// `agentgate dev`: the local sandbox. It runs the embedded Kubernetes API server with the
/// AgentGate CRDs installed and the operator reconciling against it, in one process; the
/// gateway and the dev OIDC issuer join it as their issues land.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run a local sandbox: an embedded Kubernetes API server with the AgentGate CRDs and the operator, on loopback.",
        discussion: """
            Writes an admin kubeconfig to DIR/admin.kubeconfig (DIR defaults to .agentgate) and \
            serves the Kubernetes API on https://127.0.0.1:API-PORT until interrupted (Ctrl-C). \
            The operator runs in the same process: applied AgentConnections become Ready, with \
            their credential Secrets in agentgate-system. Objects are kept in DIR/state.json \
            across restarts.

            Try:
              export KUBECONFIG=.agentgate/admin.kubeconfig
              kubectl get crds
              kubectl apply -f samples/scenario/
              kubectl get agentgate
            """
    )

    @Option(name: .long, help: "Directory for the kubeconfig, the cluster CA, keys and state.")
    var dataDir: String = ".agentgate"

    @Option(name: .long, help: "Port of the embedded Kubernetes API server.")
    var apiPort: Int = 16443

    @Option(name: .long, help: "Port of the gateway (used once the gateway joins the sandbox).")
    var gatewayPort: Int = 18443

    @Flag(name: .long, help: "Serve plain HTTP instead of HTTPS (loopback only).")
    var insecureHTTP = false

    func run() async throws {
        setlinebuf(stdout)
        let directory = URL(fileURLWithPath: dataDir, isDirectory: true).standardizedFileURL
        var configuration = LocalCluster.Configuration(dataDirectory: directory, port: apiPort, useTLS: !insecureHTTP)
        configuration.customResourceDefinitions = AgentGateCRDs.all.map(\.yaml)
        configuration.persistState = true
        print("Starting the embedded Kubernetes API server on 127.0.0.1:\(apiPort) ...")
        let cluster: LocalCluster
        do {
            cluster = try await LocalCluster.start(configuration)
        } catch {
            throw ValidationError("\(error)")
        }
        let kubeconfig = directory.appendingPathComponent("admin.kubeconfig")
        try cluster.writeAdminKubeconfig(to: kubeconfig)

        print("Starting the operator ...")
        let operatorClient = try KubernetesClient(config: try KubeConfig.fromKubeconfig(yaml: cluster.adminKubeconfig()))
        var operatorLogger = Logger(label: "agentgate.operator")
        operatorLogger.logLevel = .warning // the sandbox's terminal shows problems only
        var options = OperatorOptions(gatewayNamespace: "agentgate-system",
                                      gatewayURL: "\(insecureHTTP ? "http" : "https")://127.0.0.1:\(gatewayPort)")
        options.logger = operatorLogger
        options.identity = "agentgate-dev"
        let agentOperator = try AgentGateOperator(client: operatorClient, options: options)
        let operatorTask = Task { try await agentOperator.run() }

        print("""
            Kubernetes API:   \(cluster.url)
            Admin kubeconfig: \(kubeconfig.path)

            Next:
              export KUBECONFIG=\(kubeconfig.path)
              kubectl apply -f samples/scenario/
              kubectl wait --for=condition=Ready agc --all -n demo
              kubectl get agentgate -A
            Press Ctrl-C to stop.
            """)
        await SignalWaiter.waitForInterrupt()
        print("\nStopping ...")
        agentOperator.shutDown()
        _ = try? await operatorTask.value
        try? await operatorClient.shutdown()
        await cluster.stop()
    }
}
