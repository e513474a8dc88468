import ArgumentParser
import Foundation
import Sandbox

/// `agentgate dev`: the local sandbox (``DevSandbox``), and `agentgate dev token`.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run the whole product on loopback: Kubernetes API server, operator, gateway, OIDC issuer and web page.",
        discussion: """
            `agentgate dev [OPTIONS]` runs the sandbox (the `run` subcommand; `agentgate dev run \
            --help` explains it):
              --data-dir DIR        kubeconfigs, keys, state (default .agentgate)
              --api-port PORT       embedded Kubernetes API server, HTTPS (default 16443)
              --gateway-port PORT   gateway agents connect to, HTTPS (default 18443)
              --admin-port PORT     admin API and web page, HTTP (default 18444)
              --issuer-port PORT    development OIDC issuer, HTTP (default 18445)
              --empty               do not apply the demo scenario on a first start
              --log-format FORMAT   text (default) or json
              --log-level LEVEL     trace, debug, info (default), notice, warning, error or critical
            """,
        subcommands: [Run.self, Token.self],
        defaultSubcommand: Run.self
    )

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Run the sandbox (the default of `agentgate dev`).",
            discussion: """
                In one process, on 127.0.0.1: an embedded Kubernetes API server with the AgentGate \
                CRDs (--api-port), the operator, the gateway (HTTPS, --gateway-port), its admin API \
                and web page (--admin-port) and a development OIDC issuer (--issuer-port). On a first \
                start it applies the demo scenario of samples/scenario (namespace demo, AgentConnection \
                demo/claude-ops with approvals, masking and recording), unless --empty.

                Everything is kept in DIR (default .agentgate): admin.kubeconfig, the CA, issuer \
                keys, the session store (sessions.db) and the cluster's objects (state.json), so a \
                restart resumes where you left off. Remove DIR to start over.

                Other commands find the sandbox through --data-dir: `agentgate dev token`, \
                `agentgate kubeconfig`, `agentgate sessions`, `agentgate approvals`.
                """
        )

        @Option(name: .long, help: "Directory for kubeconfigs, CA, keys, state and the session store.")
        var dataDir: String = ".agentgate"
        @Option(name: .long, help: "Port of the embedded Kubernetes API server (HTTPS).")
        var apiPort: Int = 16443
        @Option(name: .long, help: "Port of the gateway agents connect to (HTTPS).")
        var gatewayPort: Int = 18443
        @Option(name: .long, help: "Port of the gateway's admin API and web page (HTTP, loopback).")
        var adminPort: Int = 18444
        @Option(name: .long, help: "Port of the development OIDC issuer (HTTP, loopback).")
        var issuerPort: Int = 18445
        @Flag(name: .long, help: "Do not apply the demo scenario on a first start.")
        var empty = false
        @OptionGroup var logging: LogOptions

        func run() async throws {
            try await logging.run(label: "agentgate.dev") { try await runSandbox() }
        }

        private func runSandbox() async throws {
            setlinebuf(stdout)
            var options = DevSandbox.Options(dataDirectory: URL(fileURLWithPath: dataDir, isDirectory: true).standardizedFileURL)
            options.apiPort = apiPort
            options.gatewayPort = gatewayPort
            options.adminPort = adminPort
            options.issuerPort = issuerPort
            options.empty = empty
            let sandbox = try await DevSandbox.start(options) { print($0) }
            let dirFlag = dataDir == ".agentgate" ? "" : " --data-dir \(dataDir)"
            print("""

                AgentGate sandbox is running.
                  Admin kubeconfig: \(sandbox.adminKubeconfigPath.path)
                  Gateway:          \(sandbox.gatewayURL)/c/<namespace>/<connection>
                  Web page:         \(sandbox.adminURL)/  (logs in through the sandbox issuer as \(DevSandbox.approverSubject))

                Next, in another terminal:
                  agentgate kubeconfig --connection demo/claude-ops\(dirFlag) > agent.kubeconfig
                  kubectl --kubeconfig agent.kubeconfig get secret db-credentials -o yaml   # values masked
                  agentgate sessions list\(dirFlag)
                Press Ctrl-C to stop.
                """)
            await SignalWaiter.waitForInterrupt()
            print("\nStopping ...")
            await sandbox.stop()
        }
    }

    struct Token: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "token",
            abstract: "Print an agent JWT from the sandbox's development OIDC issuer.",
            discussion: """
                The token carries the connection's first audience and, unless given, its first \
                allowed subject and its allowed groups, so the gateway accepts it for the \
                connection. Give --subject and --group to act as someone else (an approver: \
                --subject alice --group sre). --output exec-credential prints a kubectl \
                ExecCredential (what `agentgate kubeconfig` plugs in).
                """
        )
        enum Output: String, ExpressibleByArgument { case token, execCredential = "exec-credential" }

        @Option(name: .long, help: "NAMESPACE/NAME of the AgentConnection the token is for.")
        var connection: String
        @Option(name: .long, help: "Subject (sub claim). Default: the connection's first allowed subject.")
        var subject: String?
        @Option(name: .long, help: "A group claim (repeatable). Default: the connection's allowed groups when --subject is not given.")
        var group: [String] = []
        @Option(name: .long, help: "Model name, under the connection's model claim.")
        var model: String?
        @Option(name: .long, help: "Token lifetime in seconds.")
        var lifetime: Int = 3600
        @Option(name: .long, help: "Sandbox directory.")
        var dataDir: String = ".agentgate"
        @Option(name: .shortAndLong, help: "token or exec-credential.")
        var output: Output = .token

        func run() async throws {
            guard lifetime > 0 else { throw ValidationError("--lifetime \(lifetime): must be a positive number of seconds") }
            let directory = SandboxDirectory(path: dataDir)
            let agc = try await directory.connection(connection)
            let (token, expires) = try await SandboxTokens.agentToken(directory: directory, connection: agc, subject: subject,
                                                                      groups: group.isEmpty ? nil : group, model: model,
                                                                      lifetime: TimeInterval(lifetime))
            print(output == .token ? token : AgentKubeconfig.execCredential(token: token, expires: expires))
        }
    }
}
