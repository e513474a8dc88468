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

            Outside the sandbox, give a token source: the kubeconfig then runs `agentgate \
            credential` with the same flags on the agent's machine (`agentgate credential \
            --help` explains each; paths are the agent's, written as given):
              --token-file PATH        a projected ServiceAccount token
              --issuer URL --client-id ID --client-secret-file PATH
                [--audience AUD] [--scope S] [--cache-file PATH]
                                       an OAuth2 client-credentials grant
              --token-env NAME         a CI provider's OIDC token in the environment
              --github-actions [--audience AUD]
                                       GitHub Actions' OIDC token (default audience:
                                       the connection's first audience)
            --credential-command names the agentgate binary on the agent's machine \
            (default: this one's absolute path).

            Examples:
              agentgate kubeconfig --connection demo/claude-ops > agent.kubeconfig
              kubectl --kubeconfig agent.kubeconfig get pods

              agentgate kubeconfig --connection demo/claude-ops \\
                --token-file /var/run/secrets/agentgate/token \\
                --credential-command agentgate > agent.kubeconfig
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
    @OptionGroup(title: "Token source (an `agentgate credential` exec plugin)") var source: CredentialSourceOptions
    @Option(name: .long, help: "The agentgate command the kubeconfig runs for a token source (default: this executable's absolute path).")
    var credentialCommand: String?

    private static let githubActionsAudiencePending = "(the connection's first audience)"

    func validate() throws {
        if token != nil, !source.given.isEmpty {
            throw ValidationError("--token and \(source.given.joined(separator: ", ")): give an agent token or a token source, not both")
        }
        let sandboxOnly = [subject.map { _ in "--subject" }, model.map { _ in "--model" }].compactMap { $0 }
        if !sandboxOnly.isEmpty, token != nil || !source.given.isEmpty {
            throw ValidationError("\(sandboxOnly.joined(separator: " and ")) only go with the sandbox token plugin (no --token, no token source)")
        }
        if credentialCommand != nil, source.given.isEmpty {
            throw ValidationError("--credential-command only goes with a token source (--token-file, --issuer, --token-env or --github-actions)")
        }
        // `--github-actions` without `--audience` is checked in run(), with the connection's audience.
        _ = try source.source(required: false, defaultAudience: Self.githubActionsAudiencePending)
    }

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
        } else if let chosen = try source.source(required: false, defaultAudience: agc.spec.identity.audiences.first) {
            credential = .exec(command: credentialCommand ?? Self.executablePath(), arguments: ["credential"] + chosen.credentialArguments)
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
