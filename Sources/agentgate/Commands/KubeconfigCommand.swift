import ArgumentParser
import Foundation
import Sandbox

/// `agentgate kubeconfig --connection NS/NAME`: an agent kubeconfig for a connection.
struct KubeconfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kubeconfig",
        abstract: "Print a kubeconfig an agent uses to reach a connection through the gateway.",
        discussion: """
            The server is the connection's status.endpoint (https://GATEWAY/c/NAMESPACE/NAME), \
            read with --kubeconfig (default: the sandbox's DIR/admin.kubeconfig). With --token the \
            kubeconfig holds that agent token; otherwise, in the sandbox, it runs \
            `agentgate dev token --output exec-credential` whenever kubectl needs a token, so it \
            never goes stale. The sandbox CA (DIR/ca.crt) is embedded unless --certificate-authority \
            names another.

            Example:
              agentgate kubeconfig --connection demo/claude-ops > agent.kubeconfig
              kubectl --kubeconfig agent.kubeconfig get pods
            """
    )

    @Option(name: .long, help: "NAMESPACE/NAME of the AgentConnection.")
    var connection: String
    @Option(name: .long, help: "An agent token to embed (instead of the sandbox's exec plugin).")
    var token: String?
    @Option(name: .long, help: "Gateway URL for the connection (default: its status.endpoint).")
    var server: String?
    @Option(name: .long, help: "PEM file of the CA that signed the gateway's certificate (default: DIR/ca.crt when present).")
    var certificateAuthority: String?
    @Option(name: .long, help: "Kubeconfig used to read the AgentConnection (default: DIR/admin.kubeconfig).")
    var kubeconfig: String?
    @Option(name: .long, help: "Sandbox directory.")
    var dataDir: String = ".agentgate"
    @Option(name: .long, help: "Subject for the sandbox token plugin (default: the connection's first allowed subject).")
    var subject: String?
    @Option(name: .long, help: "Model name for the sandbox token plugin.")
    var model: String?

    func run() async throws {
        let directory = SandboxDirectory(path: dataDir)
        let agc = try await directory.connection(connection, kubeconfig: kubeconfig)
        var ca: String?
        if let path = certificateAuthority {
            do {
                ca = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw CLIFailure("--certificate-authority \(path): cannot be read: \(CLIFailure.fileReason(error) ?? "\(error)")")
            }
        } else {
            ca = try? String(contentsOfFile: directory.certificateAuthority.path, encoding: .utf8)
        }
        let credential: AgentKubeconfig.Credential
        if let token {
            credential = .token(token)
        } else {
            _ = try directory.issuerURL()  // a sandbox must exist for the plugin to work
            var arguments = ["dev", "token", "--connection", connection, "--data-dir", directory.url.path,
                             "--output", "exec-credential"]
            if let subject { arguments += ["--subject", subject] }
            if let model { arguments += ["--model", model] }
            credential = .exec(command: Self.executablePath(), arguments: arguments)
        }
        print(try AgentKubeconfig.render(connection: agc, server: server, certificateAuthorityPEM: ca, credential: credential),
              terminator: "")
    }

    /// This executable's absolute path (kubectl runs the plugin from any directory).
    static func executablePath() -> String {
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return resolved }
        return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
    }
}
