import ArgumentParser
import Foundation
import Gateway

/// The flags that choose an agent's token source (``AgentCredentialSource``), shared by
/// `agentgate credential` (which fetches the token) and `agentgate kubeconfig` (which writes
/// a kubeconfig whose exec plugin is `agentgate credential` with the same flags).
struct CredentialSourceOptions: ParsableArguments {
    @Option(name: .long, help: "Read the token from this file on every call (a projected ServiceAccount token).")
    var tokenFile: String?
    @Option(name: .long, help: "OIDC issuer URL for a client-credentials grant (https; http on loopback only).")
    var issuer: String?
    @Option(name: .long, help: "OAuth2 client id (with --issuer).")
    var clientId: String?
    @Option(name: .long, help: "File holding the client secret (with --issuer; read on every grant).")
    var clientSecretFile: String?
    @Option(name: .long, help: "Audience to request (with --issuer where the issuer supports it, and with --github-actions).")
    var audience: String?
    @Option(name: .long, help: "OAuth2 scope to request (with --issuer; e.g. api://agentgate/.default for Entra ID).")
    var scope: String?
    @Option(name: .long, help: "Keep the granted token in this file (mode 0600) until shortly before it expires (with --issuer).")
    var cacheFile: String?
    @Option(name: .long, help: "Read the token from this environment variable (a CI provider's OIDC token).")
    var tokenEnv: String?
    @Flag(name: .long, help: "Request a GitHub Actions OIDC token for --audience (the job needs `permissions: id-token: write`).")
    var githubActions = false

    /// The flags given, by name (for conflicts with other flags).
    var given: [String] {
        [tokenFile.map { _ in "--token-file" }, issuer.map { _ in "--issuer" }, tokenEnv.map { _ in "--token-env" },
         githubActions ? "--github-actions" : nil, clientId.map { _ in "--client-id" },
         clientSecretFile.map { _ in "--client-secret-file" }, audience.map { _ in "--audience" }, scope.map { _ in "--scope" },
         cacheFile.map { _ in "--cache-file" }].compactMap { $0 }
    }

    /// The one source the flags choose, nil when none is (and `required` is false); a usage
    /// error for several or a half-given one. `defaultAudience` stands in for a missing
    /// `--audience` with `--github-actions`.
    func source(required: Bool, defaultAudience: String? = nil) throws -> AgentCredentialSource? {
        let chosen = [tokenFile.map { _ in "--token-file" }, issuer.map { _ in "--issuer" }, tokenEnv.map { _ in "--token-env" },
                      githubActions ? "--github-actions" : nil].compactMap { $0 }
        if chosen.isEmpty, !required, given.isEmpty { return nil }
        guard chosen.count == 1 else {
            throw ValidationError(chosen.isEmpty
                ? "choose a token source: --token-file, --issuer (with --client-id and --client-secret-file), --token-env or --github-actions"
                : "choose one token source, not \(chosen.joined(separator: " and "))")
        }
        if issuer == nil {
            let strays = [clientId.map { _ in "--client-id" }, clientSecretFile.map { _ in "--client-secret-file" },
                          scope.map { _ in "--scope" }, cacheFile.map { _ in "--cache-file" },
                          githubActions ? nil : audience.map { _ in "--audience" }].compactMap { $0 }
            if !strays.isEmpty { throw ValidationError("\(strays.joined(separator: ", ")) only go with --issuer") }
        }
        if let tokenFile { return .tokenFile(path: tokenFile) }
        if let tokenEnv {
            guard !tokenEnv.isEmpty else { throw ValidationError("--token-env: give the name of an environment variable") }
            return .environment(name: tokenEnv)
        }
        if githubActions {
            guard let audience = audience ?? defaultAudience, !audience.isEmpty else {
                throw ValidationError("--github-actions needs --audience (one of the connection's spec.identity.audiences)")
            }
            return .githubActions(audience: audience)
        }
        let issuer = issuer ?? ""
        try Self.checkIssuerURL(issuer)
        guard let clientId, !clientId.isEmpty else { throw ValidationError("--issuer needs --client-id") }
        guard let clientSecretFile else {
            throw ValidationError("--issuer needs --client-secret-file (a file holding the client secret)")
        }
        return .clientCredentials(ClientCredentialsGrant(issuer: issuer, clientID: clientId,
                                                         clientSecretFile: clientSecretFile, audience: audience,
                                                         scope: scope, cacheFile: cacheFile))
    }

    /// A client secret goes over HTTPS, or over HTTP only to this machine.
    static func checkIssuerURL(_ issuer: String) throws {
        guard let url = URLComponents(string: issuer), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else {
            throw ValidationError("--issuer \(issuer): not a URL (expected https://HOST[/PATH])")
        }
        let loopback = ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host.lowercased())
        guard scheme == "https" || (scheme == "http" && loopback) else {
            throw ValidationError("--issuer \(issuer): use https (http is allowed for a loopback issuer only, since the client secret is sent)")
        }
    }

}

extension AgentCredentialSource {
    /// The `agentgate credential` flags that choose this source.
    var credentialArguments: [String] {
        switch self {
        case .tokenFile(let path):
            return ["--token-file", path]
        case .environment(let name):
            return ["--token-env", name]
        case .githubActions(let audience):
            return ["--github-actions", "--audience", audience]
        case .clientCredentials(let grant):
            var arguments = ["--issuer", grant.issuer, "--client-id", grant.clientID, "--client-secret-file", grant.clientSecretFile]
            if let audience = grant.audience { arguments += ["--audience", audience] }
            if let scope = grant.scope { arguments += ["--scope", scope] }
            if let cacheFile = grant.cacheFile { arguments += ["--cache-file", cacheFile] }
            return arguments
        }
    }
}
