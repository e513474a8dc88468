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
            CredentialCommand.self,
        ]
    )

    /// ArgumentParser's `main()`, except for what a command's `run()` throws: usage errors
    /// (`ValidationError`) keep exit status 64 and the usage text, anything else is reported
    /// as one sentence with exit status 1 (``CLIFailure``).
    static func main() async {
        let command: ParsableCommand
        do {
            command = try await asyncParseAsRoot()
        } catch {
            exit(withError: error)
        }
        do {
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                var syncCommand = command
                try syncCommand.run()
            }
        } catch {
            exit(withError: CLIFailure.isUsageOrExit(error) ? error : CLIFailure(describing: error))
        }
    }
}
