import Foundation
import KubeCore

/// Where an agent's OIDC token comes from, for `agentgate credential` (a kubectl exec
/// credential plugin that runs on the agent's side, outside the sandbox).
///
/// Contract:
/// - ``fetch(environment:now:)`` returns the token and, when the token is a JWT with an
///   `exp` claim, its expiry (kubectl asks again after it). Each call reads its source
///   afresh: a projected ServiceAccount token file that the kubelet rotated, a new CI token.
/// - A token whose `exp` has passed is refused with a message naming its source, rather
///   than handed to kubectl to be answered 401.
/// - File paths may start with `~/` (the user's home).
/// - Failures throw ``AgentCredentialError``: a sentence naming the file, environment
///   variable or URL, with the underlying error kept apart so the CLI can put it in words.
public enum AgentCredentialSource: Sendable, Hashable {
    /// A file holding a token, e.g. a projected ServiceAccount token
    /// (`serviceAccountToken` volume source with the connection's audience).
    case tokenFile(path: String)
    /// An OAuth2 client-credentials grant against an OIDC issuer's token endpoint.
    case clientCredentials(ClientCredentialsGrant)
    /// An environment variable holding a token (a CI provider's OIDC token).
    case environment(name: String)
    /// GitHub Actions' ID token request (`ACTIONS_ID_TOKEN_REQUEST_URL` with
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`; the job needs `permissions: id-token: write`).
    case githubActions(audience: String)

    public func fetch(environment: [String: String] = ProcessInfo.processInfo.environment,
                      now: Date = Date()) async throws -> AgentCredential {
        let credential: AgentCredential
        let origin: String
        switch self {
        case .tokenFile(let path):
            origin = "the token in --token-file \(path)"
            let text: String
            do {
                text = try String(contentsOfFile: Self.localPath(path), encoding: .utf8)
            } catch {
                throw AgentCredentialError("--token-file \(path): cannot be read", cause: error)
            }
            credential = try AgentCredential(token: text, origin: "--token-file \(path)")
        case .environment(let name):
            origin = "the token in environment variable \(name)"
            guard let text = environment[name] else {
                throw AgentCredentialError("--token-env \(name): the environment variable \(name) is not set")
            }
            credential = try AgentCredential(token: text, origin: "--token-env \(name): the environment variable \(name)")
        case .clientCredentials(let grant):
            origin = "the token from \(grant.issuer)"
            credential = try await grant.token(now: now)
        case .githubActions(let audience):
            origin = "the GitHub Actions ID token"
            credential = try await GitHubActionsToken.request(audience: audience, environment: environment)
        }
        if let expires = credential.expires, expires <= now {
            throw AgentCredentialError("\(origin) expired at \(KubeTime.format(expires))")
        }
        return credential
    }

    /// `path` with a leading `~/` as the user's home: kubectl runs exec plugins without a
    /// shell, so a kubeconfig's `~/...` arrives as written.
    static func localPath(_ path: String) -> String {
        path == "~" || path.hasPrefix("~/") ? NSString(string: path).expandingTildeInPath : path
    }
}

/// A bearer token and, when known, when it expires.
public struct AgentCredential: Sendable, Hashable {
    public var token: String
    public var expires: Date?

    public init(token: String, expires: Date?) {
        self.token = token
        self.expires = expires
    }

    /// `text` trimmed; its expiry from the JWT's `exp` claim (nil for an opaque token).
    /// `origin` names where it came from, for the error when it is empty.
    init(token text: String, origin: String) throws {
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw AgentCredentialError("\(origin) is empty") }
        guard !token.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            throw AgentCredentialError("\(origin) holds more than one word; it must hold just the token")
        }
        self.init(token: token, expires: Self.jwtExpiry(token))
    }

    /// The `exp` claim of a compact JWT, read without verifying it (the gateway verifies).
    static func jwtExpiry(_ token: String) -> Date? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Base64URL.decode(parts[1]), let claims = try? JSONValue(parsing: payload) else {
            return nil
        }
        switch claims["exp"] {
        case .int(let seconds)?: return Date(timeIntervalSince1970: TimeInterval(seconds))
        case .double(let seconds)?: return Date(timeIntervalSince1970: seconds)
        default: return nil
        }
    }
}

/// Why no token could be had: ``message`` names the flag, file, variable or URL; ``cause``
/// is the underlying error (a file or network error), if any.
public struct AgentCredentialError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var cause: (any Error)?

    public init(_ message: String, cause: (any Error)? = nil) {
        self.message = message
        self.cause = cause
    }

    public var description: String { cause.map { "\(message): \($0)" } ?? message }
}
