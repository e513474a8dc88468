import AsyncHTTPClient
import Foundation
import KubeCore
import NIOCore
import NIOHTTP1

/// An OAuth2 client-credentials grant (RFC 6749 §4.4) against an OIDC issuer.
///
/// Contract:
/// - The token endpoint is the `token_endpoint` of the issuer's discovery document
///   (`ISSUER/.well-known/openid-configuration`, whose `issuer` must be ``issuer``).
/// - The client authenticates with HTTP Basic (`client_secret_basic`); the secret is read
///   from ``clientSecretFile`` on each grant, so a rotated secret is picked up.
/// - `audience` and `scope` are sent when set (Auth0, the dev issuer and others read
///   `audience`; Entra ID and Okta want `scope`).
/// - With ``cacheFile``, a granted token is kept there (mode 0600, written atomically) and
///   reused, for the same issuer, client, audience and scope, until ``refreshMargin(lifetime:)``
///   before it expires; a cache that cannot be read is ignored, one that cannot be written
///   is an error (the user asked for it).
public struct ClientCredentialsGrant: Sendable, Hashable {
    public var issuer: String
    public var clientID: String
    public var clientSecretFile: String
    public var audience: String?
    public var scope: String?
    public var cacheFile: String?

    public init(issuer: String, clientID: String, clientSecretFile: String, audience: String? = nil, scope: String? = nil,
                cacheFile: String? = nil) {
        self.issuer = issuer
        self.clientID = clientID
        self.clientSecretFile = clientSecretFile
        self.audience = audience
        self.scope = scope
        self.cacheFile = cacheFile
    }

    /// How long before expiry a cached token is replaced: a fifth of its lifetime, at most 5 min.
    public static func refreshMargin(lifetime: TimeInterval) -> TimeInterval {
        min(300, max(0, lifetime) / 5)
    }

    func token(now: Date) async throws -> AgentCredential {
        if let cached = cachedToken(now: now) { return cached }
        let secret: String
        do {
            secret = try String(contentsOfFile: AgentCredentialSource.localPath(clientSecretFile), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw AgentCredentialError("--client-secret-file \(clientSecretFile): cannot be read", cause: error)
        }
        guard !secret.isEmpty else { throw AgentCredentialError("--client-secret-file \(clientSecretFile) is empty") }
        let endpoint = try await tokenEndpoint()
        var form = [("grant_type", "client_credentials")]
        if let audience { form.append(("audience", audience)) }
        if let scope { form.append(("scope", scope)) }
        var request = HTTPClientRequest(url: endpoint)
        request.method = .POST
        let basic = Data("\(FormURLEncoding.encode(clientID)):\(FormURLEncoding.encode(secret))".utf8).base64EncodedString()
        request.headers.add(name: "Authorization", value: "Basic \(basic)")
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        request.body = .bytes(ByteBuffer(string: form.map { "\($0.0)=\(FormURLEncoding.encode($0.1))" }.joined(separator: "&")))
        let (status, answer) = try await Self.send(request, what: "the token endpoint \(endpoint)")
        guard status == 200 else {
            let reason = [answer["error"]?.stringValue, answer["error_description"]?.stringValue].compactMap { $0 }
                .joined(separator: ": ")
            throw AgentCredentialError("the token endpoint \(endpoint) refused client \(clientID) (HTTP \(status)\(reason.isEmpty ? "" : ", \(reason)"))")
        }
        guard let token = answer["access_token"]?.stringValue, !token.isEmpty else {
            throw AgentCredentialError("the token endpoint \(endpoint) answered without an access_token")
        }
        let lifetime: TimeInterval? = switch answer["expires_in"] {
        case .int(let seconds)?: TimeInterval(seconds)
        case .double(let seconds)?: seconds
        default: nil
        }
        let credential = AgentCredential(token: token, expires: AgentCredential.jwtExpiry(token) ?? lifetime.map(now.addingTimeInterval))
        try store(credential, issuedAt: now)
        return credential
    }

    private func tokenEndpoint() async throws -> String {
        var base = issuer
        while base.hasSuffix("/") { base.removeLast() }
        let url = base + "/.well-known/openid-configuration"
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        let (status, discovery) = try await Self.send(request, what: "the issuer's discovery document \(url)")
        guard status == 200 else { throw AgentCredentialError("the issuer's discovery document \(url) answered HTTP \(status)") }
        guard discovery["issuer"]?.stringValue == issuer else {
            throw AgentCredentialError("the discovery document \(url) names issuer \(discovery["issuer"]?.stringValue ?? "<none>"), not \(issuer)")
        }
        guard let endpoint = discovery["token_endpoint"]?.stringValue, !endpoint.isEmpty else {
            throw AgentCredentialError("the issuer \(issuer) publishes no token_endpoint in its discovery document")
        }
        return endpoint
    }

    /// Sends `request` with the process's one HTTP client; the status and the JSON answer
    /// (`.null` when the body is not JSON).
    static func send(_ request: HTTPClientRequest, what: String) async throws -> (Int, JSONValue) {
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw AgentCredentialError("cannot reach \(what)", cause: error)
        }
        return (Int(response.status.code), (try? JSONValue(parsing: Array(buffer: body))) ?? .null)
    }

    // MARK: The cache file

    private struct CacheEntry: Codable {
        var issuer: String
        var clientID: String
        var audience: String?
        var scope: String?
        var token: String
        var issuedAt: Date
        var expiresAt: Date
    }

    private func cachedToken(now: Date) -> AgentCredential? {
        guard let cacheFile, let data = FileManager.default.contents(atPath: AgentCredentialSource.localPath(cacheFile)),
              let entry = try? JSONDecoder().decode(CacheEntry.self, from: data),
              entry.issuer == issuer, entry.clientID == clientID, entry.audience == audience, entry.scope == scope else { return nil }
        let margin = Self.refreshMargin(lifetime: entry.expiresAt.timeIntervalSince(entry.issuedAt))
        guard entry.expiresAt.timeIntervalSince(now) > margin else { return nil }
        return AgentCredential(token: entry.token, expires: entry.expiresAt)
    }

    private func store(_ credential: AgentCredential, issuedAt: Date) throws {
        guard let cacheFile, let expires = credential.expires else { return }
        let entry = CacheEntry(issuer: issuer, clientID: clientID, audience: audience, scope: scope, token: credential.token,
                               issuedAt: issuedAt, expiresAt: expires)
        let target = URL(fileURLWithPath: AgentCredentialSource.localPath(cacheFile))
        let temporary = target.deletingLastPathComponent().appendingPathComponent(".\(target.lastPathComponent).\(UUID().uuidString)")
        do {
            // Created 0600 before the token is in it; renamed over the cache in one step.
            guard FileManager.default.createFile(atPath: temporary.path, contents: try JSONEncoder().encode(entry),
                                                 attributes: [.posixPermissions: 0o600]) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary.path])
            }
            if rename(temporary.path, target.path) != 0 {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw AgentCredentialError("--cache-file \(cacheFile): cannot be written", cause: error)
        }
    }
}
