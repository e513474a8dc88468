import AgentGateAPI
import ArgumentParser

/// The `agentgate` executable: CLI wiring only. Each subcommand lives in its own file under
/// `Commands/` and delegates to a library module; add a new one by appending its type to
/// `subcommands` below.
@main
struct AgentGateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agentgate",
        abstract: "Put AI agents' access to Kubernetes behind a gateway that records, masks and holds requests for approval.",
        discussion: """
            Platform teams declare access as custom resources (group agentgate.io): \
            AgentConnection (agc), MaskingRule (mr) and RecordingPolicy (rp). The operator \
            turns them into gateway configuration and short-lived ServiceAccount credentials; \
            the gateway authenticates agents with OIDC, records every exchange, masks secrets \
            and holds chosen requests for a human.

            Deploy to a cluster with `kubectl apply -k config/default`.
            """,
        version: AgentGateVersion.current,
        subcommands: [
            VersionCommand.self,
            GenerateCommand.self,
            DevCommand.self,
            OperatorCommand.self,
            GatewayCommand.self,
            SessionsCommand.self,
            ApprovalsCommand.self,
            KubeconfigCommand.self,
        ]
    )
}
