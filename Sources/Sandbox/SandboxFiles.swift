import AgentGateAPI
import Foundation
import Gateway
import KubeClient
import KubeCore

/// What other processes (`agentgate dev token`, `agentgate kubeconfig`) read from a running
/// sandbox's data directory.
public struct SandboxDirectory: Sendable {
    public let url: URL

    public init(path: String) {
        url = URL(fileURLWithPath: path, isDirectory: true).standardizedFileURL
    }

    public var adminKubeconfig: URL { url.appendingPathComponent("admin.kubeconfig") }
    public var certificateAuthority: URL { url.appendingPathComponent("ca.crt") }

    /// The sandbox issuer's URL; a clear error when no sandbox ever ran here.
    public func issuerURL() throws -> String {
        guard let text = try? String(contentsOf: url.appendingPathComponent("issuer-url"), encoding: .utf8) else {
            throw SandboxError("no sandbox in \(url.path) (no issuer-url file); start one with `agentgate dev --data-dir \(url.path)`, or pass --data-dir")
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The AgentConnection `reference` (`NAMESPACE/NAME`) read through the admin kubeconfig.
    public func connection(_ reference: String, kubeconfig: String? = nil) async throws -> AgentConnection {
        let (namespace, name) = try Self.splitReference(reference)
        let path = kubeconfig ?? adminKubeconfig.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw SandboxError("no kubeconfig at \(path); start the sandbox with `agentgate dev`, or pass --kubeconfig")
        }
        let client = try KubernetesClient(config: try KubeConfig.load(kubeconfigPath: path, context: nil))
        defer { Task { try? await client.shutdown() } }
        do {
            return try await client.get(AgentConnection.self, name: name, namespace: namespace)
        } catch KubeError.notFound {
            throw SandboxError("agentconnection \(namespace)/\(name) not found; list them with `kubectl get agentconnections -A`")
        } catch let error as KubeError {
            throw SandboxError("reading agentconnection \(namespace)/\(name): \(error)")
        }
    }

    public static func splitReference(_ reference: String) throws -> (String, String) {
        let parts = reference.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw SandboxError("--connection \(reference): expected NAMESPACE/NAME, for example demo/claude-ops")
        }
        return (parts[0], parts[1])
    }
}

/// Agent tokens from the sandbox issuer, shaped for a connection: its first audience, its
/// first allowed subject (or `dev-agent`) and allowed groups unless told otherwise, the model
/// under the connection's model claim.
public enum SandboxTokens {
    public static func agentToken(directory: SandboxDirectory, connection: AgentConnection, subject: String?, groups: [String]?,
                                  model: String?, lifetime: TimeInterval = 3600) async throws -> (token: String, expires: Date) {
        let identity = connection.spec.identity
        let issuerURL = try directory.issuerURL()
        guard identity.issuer == issuerURL else {
            throw SandboxError("agentconnection \(connection.metadata.namespace ?? "")/\(connection.metadata.name ?? "") trusts issuer \(identity.issuer), not the sandbox issuer \(issuerURL); set spec.identity.issuer to \(issuerURL) to get tokens from `agentgate dev token`")
        }
        guard let audience = identity.audiences.first else {
            throw SandboxError("agentconnection \(connection.metadata.name ?? "") lists no spec.identity.audiences")
        }
        let issuer = try DevOIDCIssuer(directory: directory.url.appendingPathComponent("dev-issuer"))
        try await issuer.prepareOffline(issuer: issuerURL)
        let chosenSubject = subject ?? identity.allowedSubjects?.first ?? "dev-agent"
        var request = DevOIDCIssuer.TokenRequest(subject: chosenSubject, audience: audience,
                                                 groups: groups ?? (subject == nil ? identity.allowedGroups ?? [] : []))
        request.lifetime = lifetime
        // No `jti`: the exchanges of one agent group into a session by idle gap, not one
        // session per kubectl run (the exec plugin mints a token per run).
        request.jti = nil
        if let model {
            let claim = identity.modelClaim ?? AgentIdentity.defaultModelClaim
            if claim == "model" { request.model = model } else { request.extraClaims[claim] = .string(model) }
        }
        if let claim = identity.subjectClaim, claim != "sub" { request.extraClaims[claim] = .string(chosenSubject) }
        if let claim = identity.groupsClaim, claim != "groups" { request.extraClaims[claim] = .array(request.groups.map { .string($0) }) }
        return (try await issuer.token(request), request.issuedAt.addingTimeInterval(lifetime))
    }
}

/// An agent's kubeconfig for a connection's endpoint.
public enum AgentKubeconfig {
    public enum Credential: Sendable {
        case token(String)
        /// `command args...` printing an ExecCredential (client.authentication.k8s.io/v1).
        case exec(command: String, arguments: [String])
    }

    public static func render(connection: AgentConnection, server: String? = nil, certificateAuthorityPEM: String?,
                              credential: Credential, contextNamespace: String? = nil) throws -> String {
        let namespace = connection.metadata.namespace ?? "default", name = connection.metadata.name ?? ""
        guard let endpoint = server ?? connection.status?.endpoint else {
            throw SandboxError("agentconnection \(namespace)/\(name) has no status.endpoint yet (is the operator running and the connection Ready?); pass --server to name the gateway URL")
        }
        let contextName = "agentgate-\(namespace)-\(name)"
        var cluster: JSONValue = ["server": .string(endpoint)]
        if let pem = certificateAuthorityPEM {
            cluster["certificate-authority-data"] = .string(Data(pem.utf8).base64EncodedString())
        }
        let user: JSONValue
        switch credential {
        case .token(let token):
            user = ["token": .string(token)]
        case .exec(let command, let arguments):
            user = ["exec": ["apiVersion": "client.authentication.k8s.io/v1", "command": .string(command),
                             "args": .array(arguments.map { .string($0) }), "interactiveMode": "Never",
                             "provideClusterInfo": false]]
        }
        let config: JSONValue = [
            "apiVersion": "v1", "kind": "Config", "current-context": .string(contextName),
            "clusters": [["name": .string(contextName), "cluster": cluster]],
            "contexts": [["name": .string(contextName),
                          "context": ["cluster": .string(contextName), "user": .string(contextName),
                                      "namespace": .string(contextNamespace ?? namespace)]]],
            "users": [["name": .string(contextName), "user": user]],
            "preferences": [:],
        ]
        return config.yamlString()
    }

    /// The ExecCredential `kubectl` expects from a credential plugin; without `expires`,
    /// kubectl keeps the token until the server answers 401.
    public static func execCredential(token: String, expires: Date?) -> String {
        var status: JSONValue = ["token": .string(token)]
        if let expires { status["expirationTimestamp"] = .string(ISO8601DateFormatter().string(from: expires)) }
        let credential: JSONValue = ["apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status]
        return credential.serializedString()
    }
}
