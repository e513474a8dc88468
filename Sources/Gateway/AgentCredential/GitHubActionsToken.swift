import AsyncHTTPClient
import Foundation

/// GitHub Actions' OIDC token: `GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD` with
/// `Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`, answered `{"value": JWT}`.
enum GitHubActionsToken {
    static let urlVariable = "ACTIONS_ID_TOKEN_REQUEST_URL"
    static let tokenVariable = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"

    static func request(audience: String, environment: [String: String]) async throws -> AgentCredential {
        guard let base = environment[urlVariable], !base.isEmpty, let bearer = environment[tokenVariable], !bearer.isEmpty else {
            throw AgentCredentialError("--github-actions: \(urlVariable) and \(tokenVariable) are not set; run in a GitHub Actions job with `permissions: id-token: write`")
        }
        let url = base + (base.contains("?") ? "&" : "?") + "audience=" + FormURLEncoding.encode(audience)
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "bearer \(bearer)")
        request.headers.add(name: "Accept", value: "application/json")
        let (status, answer) = try await ClientCredentialsGrant.send(request, what: "the GitHub Actions token service \(base)")
        guard status == 200 else {
            throw AgentCredentialError("the GitHub Actions token service \(base) answered HTTP \(status)\(answer["message"]?.stringValue.map { ": \($0)" } ?? "")")
        }
        guard let value = answer["value"]?.stringValue else {
            throw AgentCredentialError("the GitHub Actions token service \(base) answered without a token (no \"value\")")
        }
        return try AgentCredential(token: value, origin: "the GitHub Actions ID token")
    }
}
