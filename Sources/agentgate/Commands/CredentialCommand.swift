import ArgumentParser
import Foundation
import Gateway
import Sandbox

/// `agentgate credential`: a kubectl exec credential plugin that prints an agent's OIDC
/// token as an ExecCredential, from one of the ``AgentCredentialSource``s.
struct CredentialCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credential",
        abstract: "Print an agent's OIDC token for kubectl (an exec credential plugin), from a file, an issuer or the CI.",
        discussion: """
            kubectl runs this command whenever it needs a token (`agentgate kubeconfig` writes \
            the kubeconfig that does so). It prints a client.authentication.k8s.io/v1 \
            ExecCredential whose expirationTimestamp is the token's exp. Choose one source; the \
            token must be issued by the AgentConnection's spec.identity.issuer, for one of its \
            spec.identity.audiences, to a subject or group it allows.

            A projected ServiceAccount token (an agent in a cluster whose ServiceAccount issuer \
            the connection trusts). The file is read on every call, so the kubelet's rotation \
            is picked up. In the agent's Pod:
              volumes:
              - name: agentgate-token
                projected:
                  sources:
                  - serviceAccountToken:
                      path: token
                      audience: agentgate    # the connection's audience
                      expirationSeconds: 3600
              # and a volumeMount of agentgate-token at /var/run/secrets/agentgate
            then:
              agentgate credential --token-file /var/run/secrets/agentgate/token

            OAuth2 client credentials (a confidential client registered with the issuer; the \
            secret is sent with HTTP Basic to the discovered token_endpoint):
              agentgate credential --issuer https://login.example.com \\
                --client-id claude-ops --client-secret-file /etc/agentgate/secret \\
                --audience agentgate --cache-file ~/.cache/agentgate/token.json
            --cache-file keeps the token (mode 0600) until shortly before it expires.

            A CI provider's OIDC token in an environment variable (GitLab CI `id_tokens:`, \
            Buildkite, CircleCI's CIRCLE_OIDC_TOKEN_V2...):
              agentgate credential --token-env CI_AGENTGATE_TOKEN

            GitHub Actions (the job needs `permissions: id-token: write`):
              agentgate credential --github-actions --audience agentgate

            --output token prints the bare token instead (for scripts and curl).
            """
    )

    enum Output: String, ExpressibleByArgument { case execCredential = "exec-credential", token }

    @OptionGroup var source: CredentialSourceOptions
    @Option(name: .shortAndLong, help: "exec-credential (default) or token.")
    var output: Output = .execCredential

    func validate() throws {
        _ = try source.source(required: true)
    }

    func run() async throws {
        guard let chosen = try source.source(required: true) else { return }  // validate() said which flags are missing
        let credential: AgentCredential
        do {
            credential = try await chosen.fetch()
        } catch let error as AgentCredentialError {
            throw CLIFailure(Self.sentence(error))
        }
        switch output {
        case .token: print(credential.token)
        case .execCredential: print(AgentKubeconfig.execCredential(token: credential.token, expires: credential.expires))
        }
    }

    /// The error's message and its cause in words (`no such file or directory`, `connection refused`).
    static func sentence(_ error: AgentCredentialError) -> String {
        guard let cause = error.cause else { return error.message }
        let reason = CLIFailure.fileReason(cause) ?? CLIFailure(describing: cause).description
        return "\(error.message): \(reason)"
    }
}
