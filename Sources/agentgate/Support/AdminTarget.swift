import ArgumentParser
import Foundation
import Gateway

/// Which gateway admin API a command talks to, and with which token: `--admin-url` with
/// `--token`, or the sandbox directory's `admin-address` and `admin-token` (`--data-dir`).
/// Shared by `agentgate sessions` and `agentgate approvals`.
struct AdminTarget: ParsableArguments {
    @Option(name: .long, help: "Admin API URL, e.g. http://127.0.0.1:8444.")
    var adminURL: String?
    @Option(name: .long, help: "Admin token; to approve or deny, an approver's OIDC token.")
    var token: String?
    @Option(name: .long, help: "Sandbox directory holding admin-address and admin-token.")
    var dataDir: String = ".agentgate"

    func validate() throws {
        if let adminURL {
            guard let url = URL(string: adminURL), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw ValidationError("--admin-url \(adminURL): expected an http(s) URL such as http://127.0.0.1:8444")
            }
            guard token != nil else { throw ValidationError("--admin-url needs --token") }
        }
    }

    /// With `needsApprover`, the admin token of the data directory is not used (it cannot decide).
    func client(needsApprover: Bool = false) throws -> AdminClient {
        if let adminURL, let token { return AdminClient(adminURL: adminURL, token: token) }
        var client = try AdminClient.fromDataDirectory(dataDir)
        if let token {
            client.token = token
        } else if needsApprover {
            throw ValidationError("approving and denying need your OIDC token: --token JWT")
        }
        return client
    }
}
