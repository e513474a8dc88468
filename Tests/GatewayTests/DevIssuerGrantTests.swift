import AgentGateAPI
import AsyncHTTPClient
import Crypto
import Foundation
import Gateway
import KubeCore
import NIOCore
import NIOHTTP1
import Sandbox
import XCTest

/// The dev issuer's OAuth2 grants over real HTTP (client credentials, authorization code
/// with PKCE, CORS), the attacks on them, and its tokens checked by the gateway's own
/// ``OIDCVerifier``.
final class DevIssuerGrantTests: XCTestCase {
    var issuer: DevOIDCIssuer!
    var issuerURL = ""
    /// Does not follow redirects: `/authorize` answers are read as they are.
    var http: HTTPClient!

    static let agent = DevOIDCIssuer.Client(id: "ci-agent", secret: "s3cret-ci", subject: "agent:ci", groups: ["agents"],
                                            model: "claude-ci", audiences: ["agentgate", "agentgate-staging"])
    static let web = DevOIDCIssuer.Client(id: "agentgate-web", subject: "alice", groups: ["sre"],
                                          audiences: ["agentgate-web", "agentgate"],
                                          redirectURIs: ["http://127.0.0.1:18444/", "http://localhost:18444/"])
    static let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-agentgate"

    override func setUp() async throws {
        issuer = try DevOIDCIssuer()
        issuerURL = try await issuer.start()
        issuer.register(Self.agent)
        issuer.register(Self.web)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))
    }

    override func tearDown() async throws {
        try? await http?.shutdown()
        await issuer?.shutdown()
    }

    // MARK: Helpers

    struct Answer {
        var status: Int
        var json: JSONValue
        var headers: HTTPHeaders
    }

    func send(_ method: HTTPMethod, _ path: String, form: [(String, String)]? = nil, headers: [(String, String)] = []) async throws -> Answer {
        var request = HTTPClientRequest(url: issuerURL + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let form {
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            let body = form.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0.1)" }
            request.body = .bytes(ByteBuffer(string: body.joined(separator: "&")))
        }
        let response = try await http.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return Answer(status: Int(response.status.code), json: (try? JSONValue(parsing: Array(buffer: bytes))) ?? .null,
                      headers: response.headers)
    }

    func basic(_ id: String, _ secret: String) -> (String, String) {
        ("Authorization", "Basic " + Data("\(id):\(secret)".utf8).base64EncodedString())
    }

    static func claims(_ token: String) throws -> JSONValue {
        let payload = token.split(separator: ".")[1]
        var base64 = payload.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return try JSONValue(parsing: Array(try XCTUnwrap(Data(base64Encoded: base64))))
    }

    static func challenge(_ verifier: String) -> String {
        Data(SHA256.hash(data: Data(verifier.utf8))).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// `/authorize` for the web client; the 302's Location parsed.
    func authorize(_ parameters: [String: String] = [:], omit: Set<String> = []) async throws -> (status: Int, location: URLComponents?, json: JSONValue) {
        var query = ["response_type": "code", "client_id": Self.web.id, "redirect_uri": Self.web.redirectURIs[0],
                     "code_challenge": Self.challenge(Self.verifier), "code_challenge_method": "S256", "state": "st-1",
                     "scope": "openid", "nonce": "n-42"]
        for (key, value) in parameters { query[key] = value }
        for key in omit { query[key] = nil }
        var components = URLComponents()
        components.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        let answer = try await send(.GET, "/authorize?" + (components.percentEncodedQuery ?? ""))
        return (answer.status, answer.headers.first(name: "Location").flatMap(URLComponents.init(string:)), answer.json)
    }

    func code(_ location: URLComponents?) throws -> String {
        try XCTUnwrap(location?.queryItems?.first { $0.name == "code" }?.value, "a code in \(String(describing: location))")
    }

    func redeem(_ code: String, verifier: String = DevIssuerGrantTests.verifier, redirectURI: String = DevIssuerGrantTests.web.redirectURIs[0],
                clientID: String = DevIssuerGrantTests.web.id) async throws -> Answer {
        try await send(.POST, "/token", form: [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI),
                                               ("code_verifier", verifier), ("client_id", clientID)])
    }

    // MARK: Discovery and client credentials

    func testDiscoveryListsTheTokenAndAuthorizationEndpointsAndS256Only() async throws {
        let discovery = try await send(.GET, "/.well-known/openid-configuration").json
        XCTAssertEqual(discovery["token_endpoint"]?.stringValue, issuerURL + "/token")
        XCTAssertEqual(discovery["authorization_endpoint"]?.stringValue, issuerURL + "/authorize")
        XCTAssertEqual(discovery["code_challenge_methods_supported"], .array([.string("S256")]))
        XCTAssertEqual(discovery["grant_types_supported"], .array([.string("authorization_code"), .string("client_credentials")]))
    }

    func testClientCredentialsWithBasicAuthGrantTheClientsSubjectGroupsModelAndDefaultAudienceAndTheGatewayVerifiesIt() async throws {
        let answer = try await send(.POST, "/token", form: [("grant_type", "client_credentials")], headers: [basic("ci-agent", "s3cret-ci")])
        XCTAssertEqual(answer.status, 200, "\(answer.json)")
        XCTAssertEqual(answer.json["token_type"]?.stringValue, "Bearer")
        XCTAssertEqual(answer.json["expires_in"], .int(3600))
        XCTAssertEqual(answer.headers.first(name: "Cache-Control"), "no-store")
        let token = try XCTUnwrap(answer.json["access_token"]?.stringValue)
        let claims = try Self.claims(token)
        XCTAssertEqual(claims["sub"]?.stringValue, "agent:ci")
        XCTAssertEqual(claims["aud"]?.stringValue, "agentgate", "the client's first audience")
        XCTAssertEqual(claims["groups"], .array([.string("agents")]))
        XCTAssertEqual(claims["model"]?.stringValue, "claude-ci")
        let verifier = OIDCVerifier(http: HTTPClient.shared)
        let agent = try await verifier.verify(token, identity: AgentIdentity(issuer: issuerURL, audiences: ["agentgate"]))
        XCTAssertEqual(agent.subject, "agent:ci")
        XCTAssertEqual(agent.groups, ["agents"])
    }

    func testClientCredentialsWithFormFieldsGetAnAllowedRequestedAudience() async throws {
        let answer = try await send(.POST, "/token", form: [("grant_type", "client_credentials"), ("client_id", "ci-agent"),
                                                           ("client_secret", "s3cret-ci"), ("audience", "agentgate-staging")])
        XCTAssertEqual(answer.status, 200, "\(answer.json)")
        XCTAssertEqual(try Self.claims(try XCTUnwrap(answer.json["access_token"]?.stringValue))["aud"]?.stringValue, "agentgate-staging")
    }

    func testAWrongOrMissingClientSecretOrAnUnknownClientIsInvalidClient() async throws {
        let wrongBasic = try await send(.POST, "/token", form: [("grant_type", "client_credentials")], headers: [basic("ci-agent", "s3cret-cj")])
        XCTAssertEqual(wrongBasic.status, 401)
        XCTAssertEqual(wrongBasic.json["error"]?.stringValue, "invalid_client")
        XCTAssertNotNil(wrongBasic.headers.first(name: "WWW-Authenticate"), "Basic authentication failed: the answer says how to authenticate")
        XCTAssertNil(wrongBasic.json["access_token"])
        let wrongForm = try await send(.POST, "/token", form: [("grant_type", "client_credentials"), ("client_id", "ci-agent"),
                                                              ("client_secret", "s3cret-ci-and-more")])
        XCTAssertEqual(wrongForm.status, 401)
        XCTAssertEqual(wrongForm.json["error"]?.stringValue, "invalid_client")
        let missing = try await send(.POST, "/token", form: [("grant_type", "client_credentials"), ("client_id", "ci-agent")])
        XCTAssertEqual(missing.json["error"]?.stringValue, "invalid_client")
        let unknown = try await send(.POST, "/token", form: [("grant_type", "client_credentials")], headers: [basic("nobody", "s3cret-ci")])
        XCTAssertEqual(unknown.json["error"]?.stringValue, "invalid_client")
    }

    func testAClientAskingForAnAudienceItIsNotAllowedGetsNoToken() async throws {
        let answer = try await send(.POST, "/token", form: [("grant_type", "client_credentials"), ("audience", "kubernetes")],
                                    headers: [basic("ci-agent", "s3cret-ci")])
        XCTAssertEqual(answer.status, 400)
        XCTAssertEqual(answer.json["error"]?.stringValue, "invalid_target")
        XCTAssertNil(answer.json["access_token"])
        let viaAuthorize = try await authorize(["audience": "kubernetes"])
        XCTAssertEqual(viaAuthorize.location?.queryItems?.first { $0.name == "error" }?.value, "invalid_target")
        XCTAssertNil(viaAuthorize.location?.queryItems?.first { $0.name == "code" })
    }

    func testAPublicClientCannotUseClientCredentialsAndMalformedRequestsAreRefused() async throws {
        let publicClient = try await send(.POST, "/token", form: [("grant_type", "client_credentials"), ("client_id", "agentgate-web")])
        XCTAssertEqual(publicClient.json["error"]?.stringValue, "unauthorized_client")
        XCTAssertNil(publicClient.json["access_token"])
        let twice = try await send(.POST, "/token", form: [("grant_type", "client_credentials"), ("audience", "agentgate"),
                                                          ("audience", "agentgate-staging")], headers: [basic("ci-agent", "s3cret-ci")])
        XCTAssertEqual(twice.json["error"]?.stringValue, "invalid_request")
        XCTAssertTrue(twice.json["error_description"]?.stringValue?.contains("audience") == true, "\(twice.json)")
        let password = try await send(.POST, "/token", form: [("grant_type", "password"), ("username", "alice")],
                                      headers: [basic("ci-agent", "s3cret-ci")])
        XCTAssertEqual(password.json["error"]?.stringValue, "unsupported_grant_type")
        var json = HTTPClientRequest(url: issuerURL + "/token")
        json.method = .POST
        json.headers.add(name: "Content-Type", value: "application/json")
        json.body = .bytes(ByteBuffer(string: #"{"grant_type":"client_credentials"}"#))
        let response = try await http.execute(json, timeout: .seconds(10))
        XCTAssertEqual(response.status.code, 400)
    }

    // MARK: Authorization code with PKCE

    func testAuthorizationCodeWithS256GivesTheConfiguredUsersTokenWithTheNonce() async throws {
        let authorized = try await authorize()
        XCTAssertEqual(authorized.status, 302)
        XCTAssertEqual(authorized.location?.host, "127.0.0.1")
        XCTAssertEqual(authorized.location?.port, 18444)
        XCTAssertEqual(authorized.location?.queryItems?.first { $0.name == "state" }?.value, "st-1")
        let answer = try await redeem(try code(authorized.location))
        XCTAssertEqual(answer.status, 200, "\(answer.json)")
        XCTAssertEqual(answer.json["token_type"]?.stringValue, "Bearer")
        XCTAssertEqual(answer.json["expires_in"], .int(3600))
        let idToken = try XCTUnwrap(answer.json["id_token"]?.stringValue)
        XCTAssertEqual(answer.json["access_token"]?.stringValue, idToken)
        let claims = try Self.claims(idToken)
        XCTAssertEqual(claims["sub"]?.stringValue, "alice")
        XCTAssertEqual(claims["groups"], .array([.string("sre")]))
        XCTAssertEqual(claims["nonce"]?.stringValue, "n-42")
        XCTAssertEqual(claims["aud"]?.stringValue, "agentgate-web")
        XCTAssertEqual(claims["azp"]?.stringValue, "agentgate-web")
        let agent = try await OIDCVerifier(http: HTTPClient.shared)
            .verify(idToken, identity: AgentIdentity(issuer: issuerURL, audiences: ["agentgate-web"]))
        XCTAssertEqual(agent.subject, "alice")
    }

    func testACodeCanBeRedeemedOnlyOnce() async throws {
        let code = try code(try await authorize().location)
        let first = try await redeem(code)
        XCTAssertEqual(first.status, 200, "\(first.json)")
        let replay = try await redeem(code)
        XCTAssertEqual(replay.status, 400)
        XCTAssertEqual(replay.json["error"]?.stringValue, "invalid_grant")
        XCTAssertNil(replay.json["access_token"])
    }

    func testAWrongCodeVerifierIsRefusedAndTheCodeIsThenGone() async throws {
        let code = try code(try await authorize().location)
        let wrong = try await redeem(code, verifier: "x" + Self.verifier.dropFirst())
        XCTAssertEqual(wrong.json["error"]?.stringValue, "invalid_grant")
        XCTAssertNil(wrong.json["access_token"])
        let missing = try await send(.POST, "/token", form: [("grant_type", "authorization_code"), ("code", code),
                                                            ("redirect_uri", Self.web.redirectURIs[0]), ("client_id", "agentgate-web")])
        XCTAssertEqual(missing.json["error"]?.stringValue, "invalid_request", "no verifier at all")
        let right = try await redeem(code)
        XCTAssertEqual(right.json["error"]?.stringValue, "invalid_grant", "a failed attempt used the code up: no guessing the verifier")
    }

    func testARedirectURIThatIsNotRegisteredGetsNoRedirectAndACodeIsBoundToItsRedirectURI() async throws {
        for uri in ["http://127.0.0.1:18444/evil", "http://127.0.0.1:18444", "https://attacker.example/", "http://127.0.0.1:18444/?x=1"] {
            let answer = try await authorize(["redirect_uri": uri])
            XCTAssertEqual(answer.status, 400, uri)
            XCTAssertNil(answer.location, "never a redirect to an unregistered URI: \(uri)")
            XCTAssertEqual(answer.json["error"]?.stringValue, "invalid_request", uri)
        }
        let unknownClient = try await authorize(["client_id": "nobody"])
        XCTAssertEqual(unknownClient.status, 400)
        XCTAssertNil(unknownClient.location)
        let code = try code(try await authorize().location)
        let elsewhere = try await redeem(code, redirectURI: Self.web.redirectURIs[1])
        XCTAssertEqual(elsewhere.json["error"]?.stringValue, "invalid_grant", "redeemed with another (even registered) redirect_uri")
    }

    func testPlainPKCEOrNoChallengeIsRefused() async throws {
        for (parameters, omit) in [(["code_challenge_method": "plain", "code_challenge": Self.verifier], Set<String>()),
                                   ([:], ["code_challenge_method"]),
                                   ([:], ["code_challenge"]),
                                   (["code_challenge": "short"], [])] {
            let answer = try await authorize(parameters, omit: omit)
            XCTAssertEqual(answer.status, 302, "\(parameters) \(omit)")
            let items = answer.location?.queryItems ?? []
            XCTAssertEqual(items.first { $0.name == "error" }?.value, "invalid_request", "\(parameters) \(omit)")
            XCTAssertEqual(items.first { $0.name == "state" }?.value, "st-1")
            XCTAssertNil(items.first { $0.name == "code" }, "\(parameters) \(omit)")
        }
        let implicit = try await authorize(["response_type": "token"])
        XCTAssertEqual(implicit.location?.queryItems?.first { $0.name == "error" }?.value, "unsupported_response_type")
    }

    func testAnExpiredCodeIsRefused() async throws {
        let code = try code(try await authorize().location)
        let later = Date().addingTimeInterval(DevOIDCIssuer.codeLifetime + 1)
        issuer.clock = { later }
        let answer = try await redeem(code)
        XCTAssertEqual(answer.json["error"]?.stringValue, "invalid_grant")
        XCTAssertNil(answer.json["access_token"])
    }

    func testACodeIssuedToOneClientCannotBeRedeemedByAnother() async throws {
        issuer.register(DevOIDCIssuer.Client(id: "other-web", subject: "mallory", audiences: ["agentgate-web"],
                                             redirectURIs: Self.web.redirectURIs))
        let code = try code(try await authorize().location)
        let stolen = try await redeem(code, clientID: "other-web")
        XCTAssertEqual(stolen.json["error"]?.stringValue, "invalid_grant")
        XCTAssertNil(stolen.json["access_token"])
    }

    // MARK: CORS

    func testARegisteredOriginMayCallDiscoveryKeysAndTokenFromABrowserAndAnotherMayNot() async throws {
        let origin = "http://127.0.0.1:18444"
        for path in ["/.well-known/openid-configuration", "/keys"] {
            let allowed = try await send(.GET, path, headers: [("Origin", origin)])
            XCTAssertEqual(allowed.headers.first(name: "Access-Control-Allow-Origin"), origin, path)
            let other = try await send(.GET, path, headers: [("Origin", "https://attacker.example")])
            XCTAssertNil(other.headers.first(name: "Access-Control-Allow-Origin"), path)
        }
        let preflight = try await send(.OPTIONS, "/token", headers: [("Origin", "http://localhost:18444"),
                                                                    ("Access-Control-Request-Method", "POST"),
                                                                    ("Access-Control-Request-Headers", "content-type")])
        XCTAssertEqual(preflight.status, 204)
        XCTAssertEqual(preflight.headers.first(name: "Access-Control-Allow-Origin"), "http://localhost:18444")
        XCTAssertTrue(preflight.headers.first(name: "Access-Control-Allow-Methods")?.contains("POST") == true)
        XCTAssertTrue(preflight.headers.first(name: "Access-Control-Allow-Headers")?.lowercased().contains("content-type") == true)
        let refused = try await send(.OPTIONS, "/token", headers: [("Origin", "https://attacker.example"),
                                                                  ("Access-Control-Request-Method", "POST")])
        XCTAssertEqual(refused.status, 403)
        XCTAssertNil(refused.headers.first(name: "Access-Control-Allow-Origin"))
        let code = try code(try await authorize().location)
        let token = try await send(.POST, "/token", form: [("grant_type", "authorization_code"), ("code", code),
                                                          ("redirect_uri", Self.web.redirectURIs[0]),
                                                          ("code_verifier", Self.verifier), ("client_id", "agentgate-web")],
                                   headers: [("Origin", origin)])
        XCTAssertEqual(token.status, 200)
        XCTAssertEqual(token.headers.first(name: "Access-Control-Allow-Origin"), origin)
    }
}
