import Foundation
import Gateway
import HTTPServing
import KubeCore

/// The dev issuer's OAuth2 endpoints, `/token` and `/authorize`, as its opening contract
/// (DevOIDCIssuer.swift) describes them.
extension DevOIDCIssuer {
    func tokenEndpoint(_ request: HTTPRequest) async -> HTTPResponse {
        do {
            guard request.method == "POST" else {
                return HTTPResponse(status: 405, headers: [("Allow", "POST")])
            }
            let mediaType = request.header("content-type")?.split(separator: ";").first?
                .trimmingCharacters(in: .whitespaces).lowercased()
            guard mediaType == "application/x-www-form-urlencoded" else {
                throw OAuthError(.invalidRequest, "the token request must be application/x-www-form-urlencoded")
            }
            let form = try Self.form(String(decoding: request.body, as: UTF8.self))
            guard let grantType = form["grant_type"] else { throw OAuthError(.invalidRequest, "grant_type is missing") }
            let answer: JSONValue
            switch grantType {
            case "client_credentials":
                answer = try await clientCredentialsGrant(request, form)
            case "authorization_code":
                answer = try await authorizationCodeGrant(request, form)
            default:
                throw OAuthError(.unsupportedGrantType, "grant_type \(grantType) is not supported (client_credentials, authorization_code)")
            }
            return HTTPResponse(status: 200, headers: [("Content-Type", "application/json"), ("Cache-Control", "no-store"),
                                                       ("Pragma", "no-cache")],
                                body: .bytes(answer.serialized()))
        } catch let error as OAuthError {
            return error.response
        } catch {
            return OAuthError(.invalidRequest, "the token could not be issued: \(error)").response
        }
    }

    private func clientCredentialsGrant(_ request: HTTPRequest, _ form: [String: String]) async throws -> JSONValue {
        let client = try authenticate(request, form)
        guard client.secret != nil else {
            throw OAuthError(.unauthorizedClient, "client \(client.id) is public: it may only use authorization_code with PKCE")
        }
        let audience = try client.audience(requested: form["audience"])
        let (token, lifetime) = try await grant(client, audience: audience, nonce: nil)
        var answer: JSONValue = ["access_token": .string(token), "token_type": "Bearer", "expires_in": .int(Int64(lifetime))]
        if let scope = form["scope"] { answer["scope"] = .string(scope) }
        return answer
    }

    private func authorizationCodeGrant(_ request: HTTPRequest, _ form: [String: String]) async throws -> JSONValue {
        let client = try authenticate(request, form)
        guard let code = form["code"] else { throw OAuthError(.invalidRequest, "code is missing") }
        guard let verifier = form["code_verifier"] else {
            throw OAuthError(.invalidRequest, "code_verifier is missing (PKCE is required)")
        }
        guard let grant = codes.redeem(code, now: clock()) else {
            throw OAuthError(.invalidGrant, "the code is unknown, already used or expired")
        }
        guard grant.clientID.hasSameBytes(as: client.id) else {
            throw OAuthError(.invalidGrant, "the code was issued to another client")
        }
        guard let redirectURI = form["redirect_uri"], redirectURI.hasSameBytes(as: grant.redirectURI) else {
            throw OAuthError(.invalidGrant, "redirect_uri does not match the one the code was issued for")
        }
        guard PKCE.verifier(verifier, matches: grant.challenge) else {
            throw OAuthError(.invalidGrant, "code_verifier does not match the code_challenge")
        }
        let (token, lifetime) = try await self.grant(client, audience: grant.audience, nonce: grant.nonce)
        return ["access_token": .string(token), "id_token": .string(token), "token_type": "Bearer",
                "expires_in": .int(Int64(lifetime)), "scope": .string(grant.scope ?? "openid")]
    }

    /// The client the request authenticates as: HTTP Basic or the `client_id` and
    /// `client_secret` fields. A public client (no secret registered) names itself with
    /// `client_id` alone; a confidential one must present its secret. Each grant decides
    /// whether a public client may use it.
    private func authenticate(_ request: HTTPRequest, _ form: [String: String]) throws -> Client {
        let authorizations = request.headers["authorization"]
        var id = form["client_id"], secret = form["client_secret"]
        let basic = !authorizations.isEmpty
        if basic {
            guard authorizations.count == 1, let (basicID, basicSecret) = Self.basicCredentials(authorizations[0]) else {
                throw OAuthError(.invalidClient, "the Authorization header is not HTTP Basic client_id:client_secret", basicAuthentication: true)
            }
            guard secret == nil, id == nil || id == basicID else {
                throw OAuthError(.invalidRequest, "authenticate with HTTP Basic or with client_secret, not both")
            }
            id = basicID
            secret = basicSecret
        }
        guard let id, !id.isEmpty else { throw OAuthError(.invalidClient, "no client_id", basicAuthentication: basic) }
        guard let client = self.client(id: id) else {
            throw OAuthError(.invalidClient, "unknown client \(id)", basicAuthentication: basic)
        }
        if client.secret == nil {
            guard secret == nil else {
                throw OAuthError(.invalidClient, "client \(id) is public and has no secret", basicAuthentication: basic)
            }
            return client
        }
        guard let secret, client.secretMatches(secret) else {
            throw OAuthError(.invalidClient, "client authentication failed for \(id)", basicAuthentication: basic)
        }
        return client
    }

    /// Signs the client's token for `audience`; returns it with its lifetime.
    private func grant(_ client: Client, audience: String, nonce: String?) async throws -> (String, TimeInterval) {
        var request = TokenRequest(subject: client.subject, audience: audience, groups: client.groups, model: client.model)
        request.lifetime = client.tokenLifetime
        // No `jti`: the gateway then groups an agent's exchanges by idle gap, as with
        // `agentgate dev token`, not one session per token.
        request.jti = nil
        request.extraClaims["azp"] = .string(client.id)
        if let nonce { request.extraClaims["nonce"] = .string(nonce) }
        return (try await token(request), client.tokenLifetime)
    }

    func authorizationEndpoint(_ request: HTTPRequest) async -> HTTPResponse {
        guard request.method == "GET" else { return HTTPResponse(status: 405, headers: [("Allow", "GET")]) }
        let rawQuery = request.uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        let query: [String: String]
        do {
            query = try Self.form(rawQuery)
        } catch let error as OAuthError {
            return error.response
        } catch {
            return OAuthError(.invalidRequest, "\(error)").response
        }
        // Until the client and its redirect URI are known good, errors are answered here,
        // never redirected (RFC 6749 §4.1.2.1): an open redirector helps phishing.
        guard let clientID = query["client_id"], let client = self.client(id: clientID) else {
            return OAuthError(.invalidRequest, "unknown client_id \(query["client_id"] ?? "<none>")").response
        }
        guard let redirectURI = query["redirect_uri"], client.redirectURIs.containsSameBytes(as: redirectURI) else {
            return OAuthError(.invalidRequest, "redirect_uri \(query["redirect_uri"] ?? "<none>") is not registered for client \(clientID)").response
        }
        let state = query["state"]
        func redirect(_ parameters: [(String, String)]) -> HTTPResponse {
            var items = parameters
            if let state { items.append(("state", state)) }
            let encoded = items.map { "\($0.0)=\(FormURLEncoding.encode($0.1))" }.joined(separator: "&")
            let location = redirectURI + (redirectURI.contains("?") ? "&" : "?") + encoded
            return HTTPResponse(status: 302, headers: [("Location", location), ("Cache-Control", "no-store")])
        }
        func refuse(_ error: OAuthError) -> HTTPResponse {
            redirect([("error", error.code.rawValue), ("error_description", error.message)])
        }
        guard query["response_type"] == "code" else {
            return refuse(OAuthError(.unsupportedResponseType, "response_type must be code"))
        }
        guard let challenge = query["code_challenge"] else {
            return refuse(OAuthError(.invalidRequest, "code_challenge is required (PKCE)"))
        }
        guard query["code_challenge_method"] == "S256" else {
            return refuse(OAuthError(.invalidRequest, "code_challenge_method must be S256 (\(query["code_challenge_method"] ?? "plain, the default,") is refused)"))
        }
        guard PKCE.isValidChallenge(challenge) else {
            return refuse(OAuthError(.invalidRequest, "code_challenge must be the 43-character base64url SHA-256 of the verifier"))
        }
        let audience: String
        do {
            audience = try client.audience(requested: query["audience"])
        } catch let error as OAuthError {
            return refuse(error)
        } catch {
            return refuse(OAuthError(.invalidRequest, "\(error)"))
        }
        let now = clock()
        let code = codes.issue(AuthorizationCodes.Grant(clientID: client.id, redirectURI: redirectURI, challenge: challenge,
                                                        audience: audience, nonce: query["nonce"], scope: query["scope"],
                                                        expires: now.addingTimeInterval(Self.codeLifetime)), now: now)
        return redirect([("code", code)])
    }

    /// Form (or query) fields, each at most once (RFC 6749 §3.1, §3.2).
    static func form(_ text: String) throws -> [String: String] {
        var fields: [String: String] = [:]
        for (name, values) in RequestInfoResolver.parseQuery(text) {
            guard values.count == 1 else { throw OAuthError(.invalidRequest, "\(name) is given more than once") }
            fields[name] = values[0]
        }
        return fields
    }

    /// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
    static func basicCredentials(_ header: String) -> (String, String)? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
              let decoded = Data(base64Encoded: parts[1].trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") else { return nil }
        func unescape(_ part: Substring) -> String? { part.replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
        guard let id = unescape(text[..<colon]), let secret = unescape(text[text.index(after: colon)...]) else { return nil }
        return (id, secret)
    }
}
