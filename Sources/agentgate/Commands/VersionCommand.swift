import AgentGateAPI
import ArgumentParser

/// `agentgate version`: the release this binary was built from.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print the AgentGate version."
    )

    func run() throws {
        print(AgentGateVersion.current)
    }
}
