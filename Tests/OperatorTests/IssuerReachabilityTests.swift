import AgentGateAPI
import ControllerRuntime
import Foundation
import Gateway
import HTTPServing
import KubeClient
import KubeCore
import Operator
import Sandbox
import TestSupport
import XCTest

/// The `IssuerReachable` condition: the operator asks each connection's issuer for discovery
/// and its JWKS over real HTTP (the dev issuer, a port nobody listens on, an issuer whose JWKS
/// is gone), reports the outcome beside Ready, and reports recovery.
final class IssuerReachabilityTests: XCTestCase {
    /// Checks as the operator makes them, but retried after 1 s instead of 30 s.
    static func quickChecks(_ options: inout OperatorOptions) {
        var checks = IssuerReachability.Configuration()
        checks.retryAfter = .seconds(1)
        options.issuerChecks = checks
    }

    static func connection(_ name: String, issuer: String) -> AgentConnection {
        var connection = ClusterFixture.connection(name)
        connection.spec.identity.issuer = issuer
        return connection
    }

    func testDevIssuerIsReachableAndAPortNobodyListensOnIsNotWithoutMakingTheConnectionUnready() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            let issuer = try DevOIDCIssuer()
            let issuerURL = try await issuer.start()
            defer { Task { await issuer.shutdown() } }
            let deadPort = try LoopbackTCP.freePort()
            _ = try await h.startOperator(configure: Self.quickChecks)
            _ = try await h.admin.create(Self.connection("dev", issuer: issuerURL))
            _ = try await h.admin.create(Self.connection("dead", issuer: "http://127.0.0.1:\(deadPort)"))

            let dev = try await h.waitFor("dev", "IssuerReachable=True") { $0.status?.conditions?.condition("IssuerReachable")?.status == "True" }
            let reachable = try XCTUnwrap(dev.status?.conditions?.condition("IssuerReachable"))
            XCTAssertEqual(reachable.reason, "JWKSFetched")
            XCTAssertEqual(reachable.message, "\(issuerURL) answers OIDC discovery; its JWKS at \(issuerURL)/keys has 3 signing key(s)")
            XCTAssertTrue((dev.status?.conditions ?? []).isTrue("Ready"))

            let dead = try await h.waitFor("dead", "IssuerReachable=False") { $0.status?.conditions?.condition("IssuerReachable")?.status == "False" }
            let unreachable = try XCTUnwrap(dead.status?.conditions?.condition("IssuerReachable"))
            XCTAssertEqual(unreachable.reason, "DiscoveryFailed")
            XCTAssertEqual(unreachable.message, "OIDC discovery of http://127.0.0.1:\(deadPort) failed: cannot reach "
                + "http://127.0.0.1:\(deadPort)/.well-known/openid-configuration: connection refused; agents' tokens cannot be verified until it answers")
            // A warning beside kstatus: the gateway may reach what the operator cannot, and keeps
            // serving with keys it already has; Ready says where to look.
            let ready = try XCTUnwrap(dead.status?.conditions?.condition("Ready"))
            XCTAssertEqual(ready.status, "True")
            XCTAssertTrue(ready.message.contains("see IssuerReachable"), ready.message)
            XCTAssertNil(dead.status?.conditions?.condition("Stalled"))
            XCTAssertNil(dead.status?.conditions?.condition("Reconciling"))
            let secret = try await h.secret("dead")
            XCTAssertNotNil(secret, "the gateway gets its configuration either way")

            // A host that does not exist (.invalid never resolves) is said in words too.
            _ = try await h.admin.create(Self.connection("nowhere", issuer: "https://issuer.invalid"))
            let nowhere = try await h.waitFor("nowhere", "IssuerReachable=False") {
                $0.status?.conditions?.condition("IssuerReachable")?.status == "False"
            }
            XCTAssertEqual(nowhere.status?.conditions?.condition("IssuerReachable")?.message,
                           "OIDC discovery of https://issuer.invalid failed: cannot reach https://issuer.invalid/.well-known/openid-configuration: "
                           + "the host name issuer.invalid cannot be resolved; agents' tokens cannot be verified until it answers")
        }
    }

    func testAnIssuerThatComesUpFlipsTheConditionBackWithoutAnyChangeToTheConnection() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            let port = try LoopbackTCP.freePort()
            _ = try await h.startOperator(configure: Self.quickChecks)
            _ = try await h.admin.create(Self.connection("later", issuer: "http://127.0.0.1:\(port)"))
            _ = try await h.waitFor("later", "IssuerReachable=False") { $0.status?.conditions?.condition("IssuerReachable")?.status == "False" }

            let issuer = try DevOIDCIssuer()
            try await issuer.start(port: port)
            defer { Task { await issuer.shutdown() } }
            let healed = try await h.waitFor("later", "IssuerReachable=True after the retry", timeout: 10) {
                $0.status?.conditions?.condition("IssuerReachable")?.status == "True"
            }
            XCTAssertEqual(healed.status?.conditions?.condition("IssuerReachable")?.reason, "JWKSFetched")
            XCTAssertFalse(healed.status?.conditions?.condition("Ready")?.message.contains("IssuerReachable") ?? true)
            XCTAssertEqual(healed.metadata.generation, 1)
        }
    }

    func testManyConnectionsOnOneIssuerCostOneFetchAndAMissingJWKSIsJWKSFetchFailed() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            let requests = LockedText()
            let served = LockedText()  // the server's own URL, once it is known
            let server = HTTPServer()
            let deadPort = try LoopbackTCP.freePort()
            let port = try await server.start(host: "127.0.0.1", port: 0, tls: nil) { request in
                requests.append(request.uri + "\n")
                let issuer = served.text
                switch request.uri {
                case "/good/.well-known/openid-configuration":
                    return .json(200, Array(#"{"issuer":"\#(issuer)/good","jwks_uri":"\#(issuer)/good/keys"}"#.utf8))
                case "/good/keys":
                    // One usable key, one HMAC key the gateway refuses.
                    return .json(200, Array(#"{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"x","y":"y"},{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}"#.utf8))
                case "/nokeys/.well-known/openid-configuration":
                    return .json(200, Array(#"{"issuer":"\#(issuer)/nokeys","jwks_uri":"http://127.0.0.1:\#(deadPort)/keys"}"#.utf8))
                case "/hmac/.well-known/openid-configuration":
                    return .json(200, Array(#"{"issuer":"\#(issuer)/hmac","jwks_uri":"\#(issuer)/hmac/keys"}"#.utf8))
                case "/hmac/keys":
                    return .json(200, Array(#"{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}"#.utf8))
                default:
                    return HTTPResponse(status: 404)
                }
            }
            defer { Task { await server.shutdown() } }
            let base = "http://127.0.0.1:\(port)"
            served.append(base)
            _ = try await h.startOperator(configure: Self.quickChecks)
            for index in 0..<5 { _ = try await h.admin.create(Self.connection("good-\(index)", issuer: "\(base)/good")) }
            _ = try await h.admin.create(Self.connection("nokeys", issuer: "\(base)/nokeys"))
            _ = try await h.admin.create(Self.connection("hmac", issuer: "\(base)/hmac"))

            for index in 0..<5 {
                let good = try await h.waitFor("good-\(index)", "IssuerReachable=True") {
                    $0.status?.conditions?.condition("IssuerReachable")?.status == "True"
                }
                XCTAssertTrue(good.status?.conditions?.condition("IssuerReachable")?.message.hasSuffix("has 1 signing key(s)") == true)
            }
            XCTAssertEqual(requests.text.split(separator: "\n").filter { $0.hasPrefix("/good/") }, ["/good/.well-known/openid-configuration", "/good/keys"],
                           "five connections on one issuer: one discovery, one JWKS fetch")

            let nokeys = try await h.waitFor("nokeys", "IssuerReachable=False") { $0.status?.conditions?.condition("IssuerReachable")?.status == "False" }
            let failed = try XCTUnwrap(nokeys.status?.conditions?.condition("IssuerReachable"))
            XCTAssertEqual(failed.reason, "JWKSFetchFailed")
            XCTAssertEqual(failed.message, "fetching the signing keys of \(base)/nokeys failed: cannot reach http://127.0.0.1:\(deadPort)/keys: "
                + "connection refused; agents' tokens cannot be verified until it serves them")
            let hmac = try await h.waitFor("hmac", "IssuerReachable=False") { $0.status?.conditions?.condition("IssuerReachable")?.status == "False" }
            XCTAssertEqual(hmac.status?.conditions?.condition("IssuerReachable")?.reason, "JWKSFetchFailed")
            XCTAssertTrue(hmac.status?.conditions?.condition("IssuerReachable")?.message.contains("has no RS256, ES256 or EdDSA signing key") == true)
        }
    }

    func testWithoutChecksThereIsNoCondition() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            _ = try await h.startOperator {
                $0.issuerChecks = nil
            }
            _ = try await h.admin.create(ClusterFixture.connection("unchecked"))
            let ready = try await h.ready("unchecked")
            XCTAssertNil(ready.status?.conditions?.condition("IssuerReachable"))
        }
    }
}
