import ArgumentParser
import Foundation
import Gateway

/// Which gateway admin API a command talks to, and with which token: `--admin-url` with
/// `--token` (an OIDC token of an admin issuer, or the break-glass token) and `--admin-ca`
/// for HTTPS, or the sandbox directory's `admin-address` and `admin-token` (`--data-dir`).
/// Shared by `agentgate sessions` and `agentgate approvals`.
struct AdminTarget: ParsableArguments {
    @Option(name: .long, help: "Admin API URL, e.g. https://agentgate-gateway.agentgate-system.svc:9443.")
    var adminURL: String?
    @Option(name: .long, help: "Your OIDC token (an issuer of the gateway's --admin-auth-file), or the break-glass admin token.")
    var token: String?
    @Option(name: .long, help: "PEM CA certificate that signed the admin API's TLS certificate (default: the system's roots).")
    var adminCA: String?
    @Option(name: .long, help: "Sandbox directory holding admin-address and admin-token.")
    var dataDir: String = ".agentgate"

    func validate() throws {
        if let adminURL {
            guard let url = URL(string: adminURL), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw ValidationError("--admin-url \(adminURL): expected an http(s) URL such as https://127.0.0.1:8444")
            }
            guard token != nil else { throw ValidationError("--admin-url needs --token") }
        }
    }

    /// With `needsApprover`, the admin token of the data directory is not used (it cannot decide).
    func client(needsApprover: Bool = false) throws -> AdminClient {
        var client: AdminClient
        if let adminURL, let token {
            client = AdminClient(adminURL: adminURL, token: token)
        } else {
            if token == nil, needsApprover { throw ValidationError("approving and denying need your OIDC token: --token JWT") }
            client = try AdminClient.fromDataDirectory(dataDir, token: token)
        }
        if let adminCA {
            do {
                client.certificateAuthorityPEM = Array(try Data(contentsOf: URL(fileURLWithPath: adminCA)))
            } catch {
                throw CLIFailure("--admin-ca \(adminCA): cannot be read: \(CLIFailure.fileReason(error) ?? "\(error)")")
            }
        }
        return client
    }
}
