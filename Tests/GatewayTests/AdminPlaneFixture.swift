import AgentGateAPI
import Foundation
import Gateway
import HTTPServing
import KubeCore
import NIOHTTP1
import Sandbox
import SessionStore
import XCTest

/// An admin API with roles, in front of a ``GatewayHarness``: a second dev OIDC issuer plays
/// the organisation's login issuer (audience `agentgate-admin`), and its groups map to roles
/// as an `--admin-auth-file` would say (`auditors` → reviewer, `sre` → approver, `platform` →
/// admin). Served on loopback HTTP by a real ``HTTPServer``, with the gateway's verifier.
final class AdminPlane {
    static let audience = "agentgate-admin"
    /// The web page's public OIDC client.
    static let webClientID = "agentgate-web"
    let issuer: DevOIDCIssuer
    let issuerURL: String
    let api: AdminAPI
    let server = HTTPServer()
    let port: Int
    /// The break-glass token, or nil when it is off.
    let breakGlassToken: String?
    var url: String { "http://127.0.0.1:\(port)" }

    /// - Parameter webLogin: a person the web page logs in as (authorization code with PKCE
    ///   through the admin issuer's public client `agentgate-web`), or nil for no page login.
    init(_ harness: GatewayHarness, breakGlassToken: String? = "break-glass-token",
         webLogin: (subject: String, groups: [String])? = nil) async throws {
        issuer = try DevOIDCIssuer()
        issuerURL = try await issuer.start()
        let config = try AdminAuthConfig.parse("""
            issuers:
            - issuer: \(issuerURL)
              audiences: [\(Self.audience), \(Self.webClientID)]
            roles:
              reviewer: [auditors]
              approver: [sre]
              admin: [platform]
            \(webLogin == nil ? "" : "login: {issuer: \(issuerURL), clientID: \(Self.webClientID)}")
            """)
        self.breakGlassToken = breakGlassToken
        let api = AdminAPI(store: harness.store, token: breakGlassToken, authorization: config, gateway: harness.gateway)
        self.api = api
        port = try await server.start(host: "127.0.0.1", port: 0, tls: nil) { await api.handle($0) }
        if let webLogin {
            issuer.register(DevOIDCIssuer.Client(id: Self.webClientID, subject: webLogin.subject, groups: webLogin.groups,
                                                 audiences: [Self.webClientID], redirectURIs: ["http://127.0.0.1:\(port)/"]))
        }
    }

    func stop() async {
        await server.shutdown()
        await issuer.shutdown()
    }

    /// A person's token from the admin issuer.
    func token(_ subject: String, groups: [String], audience: String = AdminPlane.audience) async throws -> String {
        try await issuer.token(DevOIDCIssuer.TokenRequest(subject: subject, audience: audience, groups: groups))
    }

    /// `method path` with `token` as bearer; the answer's status and JSON body.
    func call(_ path: String, token: String?, method: HTTPMethod = .GET, body: String? = nil) async throws -> (status: Int, body: JSONValue) {
        var headers: [(String, String)] = [("Content-Type", "application/json")]
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        let reply = try await GatewayHarness.send(method, url + path, headers: headers, body: body)
        return (reply.status, (try? JSONValue(parsing: reply.body)) ?? .string(reply.body))
    }
}
