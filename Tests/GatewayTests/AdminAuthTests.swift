import AgentGateAPI
import Foundation
import Gateway
import KubeCore
import NIOHTTP1
import Sandbox
import SessionStore
import TestSupport
import XCTest

/// The admin API's roles from the admin issuers' groups (`--admin-auth-file`), the
/// break-glass token, and attacks on both: real tokens from dev OIDC issuers, a real gateway
/// holding real requests, the admin API over loopback HTTP.
class AdminAuthTests: XCTestCase {
    class var backend: GatewayStoreBackend { .sqlite }

    var harness: GatewayHarness!
    var plane: AdminPlane!

    override func setUp() async throws {
        harness = try await GatewayHarness(backend: Self.backend, approval: GatewayApprovalTests.policy)
        plane = try await AdminPlane(harness)
    }

    override func tearDown() async throws {
        await plane?.stop()
        await harness?.stop()
    }

    /// One recorded session: the agent lists ConfigMaps.
    func recordSession() async throws -> String {
        let agent = try await harness.token()
        let listed = try await GatewayHarness.send(.GET, "\(harness.connectionURL)/api/v1/namespaces/default/configmaps",
                                                   headers: [("Authorization", "Bearer \(agent)")])
        XCTAssertEqual(listed.status, 200, listed.body)
        try await harness.store.flush()
        let sessions = try await harness.store.listSessions(SessionFilter())
        return try XCTUnwrap(sessions.first?.id)
    }

    /// A deployment delete the agent sends, held for approval; returns the approval id and the agent's request.
    func heldDelete(_ name: String) async throws -> (String, Task<(status: Int, body: String, headers: HTTPHeaders), any Error>) {
        try await harness.cluster.applyObject([
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": .string(name), "namespace": "default"],
            "spec": ["replicas": 1, "selector": ["matchLabels": ["app": .string(name)]],
                     "template": ["metadata": ["labels": ["app": .string(name)]], "spec": ["containers": [["name": "c", "image": "busybox"]]]]],
        ])
        let agent = try await harness.token()
        let url = "\(harness.connectionURL)/apis/apps/v1/namespaces/default/deployments/\(name)"
        let request = Task { try await GatewayHarness.send(.DELETE, url, headers: [("Authorization", "Bearer \(agent)")]) }
        let store = harness.store
        let id = LockedBox<String?>(nil)
        try await eventually(20, "a pending approval") {
            id.value = try await store.listApprovals(ApprovalFilter(state: .pending)).first?.id
            return id.value != nil
        }
        return (try XCTUnwrap(id.value), request)
    }

    func testAReviewerReadsSessionsAndApprovalsButCannotDecide() async throws {
        let session = try await recordSession()
        let (id, request) = try await heldDelete("reviewed")
        let reviewer = try await plane.token("rita", groups: ["auditors"])
        let list = try await plane.call("/api/v1/sessions", token: reviewer)
        XCTAssertEqual(list.status, 200, "\(list.body)")
        let listed = list.body["items"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
        XCTAssertTrue(listed.contains(session), "\(list.body)")
        let detail = try await plane.call("/api/v1/sessions/\(session)", token: reviewer)
        XCTAssertEqual(detail.status, 200, "\(detail.body)")
        let approvals = try await plane.call("/api/v1/approvals?state=pending", token: reviewer)
        XCTAssertEqual(approvals.body["items"]?.arrayValue?.count, 1, "\(approvals.body)")
        let decided = try await plane.call("/api/v1/approvals/\(id)/approve", token: reviewer, method: .POST, body: #"{"reason":"lgtm"}"#)
        XCTAssertEqual(decided.status, 403, "\(decided.body)")
        XCTAssertTrue(decided.body["message"]?.stringValue?.contains("needs the approver role") ?? false, "\(decided.body)")
        let state = try await harness.store.approval(id: id)?.state
        XCTAssertEqual(state, .pending)
        let audit = try await plane.call("/api/v1/audit/reads", token: reviewer)
        XCTAssertEqual(audit.status, 403, "the audit is for admins: \(audit.body)")
        XCTAssertTrue(audit.body["message"]?.stringValue?.contains("needs the admin role") ?? false, "\(audit.body)")
        _ = try await plane.call("/api/v1/approvals/\(id)/deny", token: try await plane.token("sam", groups: ["sre"]),
                                 method: .POST, body: #"{"reason":"cleanup"}"#)
        _ = try await request.value
    }

    func testAnApproverDecidesAndTheDecisionNamesThem() async throws {
        let (id, request) = try await heldDelete("approved")
        let approver = try await plane.token("sam", groups: ["sre"])
        let decided = try await plane.call("/api/v1/approvals/\(id)/approve", token: approver, method: .POST, body: #"{"reason":"planned"}"#)
        XCTAssertEqual(decided.status, 200, "\(decided.body)")
        XCTAssertEqual(decided.body["decidedBy"]?.stringValue, "sam")
        let answer = try await request.value
        XCTAssertEqual(answer.status, 200, answer.body)
    }

    /// The approver role is cluster-wide; a connection's approverGroups still narrows who decides its approvals.
    func testAnAdminOutsideTheConnectionsApproverGroupsCannotDecide() async throws {
        let (id, request) = try await heldDelete("narrowed")
        let admin = try await plane.token("ada", groups: ["platform"])
        let refused = try await plane.call("/api/v1/approvals/\(id)/approve", token: admin, method: .POST, body: #"{"reason":"x"}"#)
        XCTAssertEqual(refused.status, 403, "\(refused.body)")
        XCTAssertTrue(refused.body["message"]?.stringValue?.contains("not in the approver groups") ?? false, "\(refused.body)")
        let state = try await harness.store.approval(id: id)?.state
        XCTAssertEqual(state, .pending)
        _ = try await plane.call("/api/v1/approvals/\(id)/deny", token: try await plane.token("sam", groups: ["sre"]),
                                 method: .POST, body: #"{"reason":"cleanup"}"#)
        _ = try await request.value
    }

    func testATokenFromAnUntrustedIssuerIsRefused401() async throws {
        _ = try await recordSession()
        let rogue = try DevOIDCIssuer()
        _ = try await rogue.start()
        let forged = try await rogue.token(DevOIDCIssuer.TokenRequest(subject: "mallory", audience: AdminPlane.audience, groups: ["platform"]))
        await rogue.shutdown()
        let list = try await plane.call("/api/v1/sessions", token: forged)
        XCTAssertEqual(list.status, 401, "\(list.body)")
        XCTAssertTrue(list.body["message"]?.stringValue?.contains("is not a trusted admin issuer") ?? false, "\(list.body)")
        // The same claims naming the trusted issuer, signed by the rogue's key: the signature fails.
        let rogue2 = try DevOIDCIssuer()
        _ = try await rogue2.start()
        let spoofed = try await rogue2.token({
            var request = DevOIDCIssuer.TokenRequest(subject: "mallory", audience: AdminPlane.audience, groups: ["platform"])
            request.issuerOverride = plane.issuerURL
            return request
        }())
        await rogue2.shutdown()
        let spoofedList = try await plane.call("/api/v1/sessions", token: spoofed)
        XCTAssertEqual(spoofedList.status, 401, "\(spoofedList.body)")
        let none = try await plane.call("/api/v1/sessions", token: nil)
        XCTAssertEqual(none.status, 401)
        let garbage = try await plane.call("/api/v1/sessions", token: "not-a-token")
        XCTAssertEqual(garbage.status, 401)
    }

    func testAValidTokenWithoutARoleIsRefused403NamingTheRole() async throws {
        let session = try await recordSession()
        let nobody = try await plane.token("nora", groups: ["developers"])
        let detail = try await plane.call("/api/v1/sessions/\(session)", token: nobody)
        XCTAssertEqual(detail.status, 403, "\(detail.body)")
        let message = detail.body["message"]?.stringValue ?? ""
        XCTAssertTrue(message.contains("nora may not read sessions: that needs the reviewer role"), message)
        XCTAssertTrue(message.contains("auditors"), "names the groups that give it: \(message)")
        let reads = try await harness.store.listReads(RecordingReadFilter())
        XCTAssertEqual(reads, [], "a refused read reads nothing and is not a read")
    }

    /// Attack: the agent's own token (its issuer, its audience) reads no recording, neither its
    /// own session nor another agent's; nor does a token the agent got for the admin audience.
    func testTheAgentsOwnTokenCannotReadItsOwnOrAnotherAgentsSessions() async throws {
        let own = try await recordSession()
        let other = try await harness.token(subject: "agent-2", groups: ["agents"])
        _ = try await GatewayHarness.send(.GET, "\(harness.connectionURL)/api/v1/namespaces/default/pods",
                                          headers: [("Authorization", "Bearer \(other)")])
        try await harness.store.flush()
        let sessions = try await harness.store.listSessions(SessionFilter())
        let foreign = try XCTUnwrap(sessions.first { $0.subject == "agent-2" }?.id)
        let agent = try await harness.token(groups: ["agents"])
        for path in ["/api/v1/sessions", "/api/v1/sessions/\(own)", "/api/v1/sessions/\(foreign)", "/api/v1/audit/reads"] {
            let answer = try await plane.call(path, token: agent)
            XCTAssertEqual(answer.status, 401, "\(path): \(answer.body)")
        }
        // An agent token for the admin audience, from the admin issuer: valid, but no role.
        let adminAudience = try await plane.token("agent-1", groups: ["agents"])
        for path in ["/api/v1/sessions", "/api/v1/sessions/\(own)", "/api/v1/sessions/\(foreign)"] {
            let answer = try await plane.call(path, token: adminAudience)
            XCTAssertEqual(answer.status, 403, "\(path): \(answer.body)")
        }
        // The agent's token is not an approval credential for anyone's reads either.
        let approvals = try await plane.call("/api/v1/approvals", token: agent)
        XCTAssertNotEqual(approvals.status, 200, "\(approvals.body)")
    }

    func testTheRequestingAgentCannotApproveItsOwnRequestEvenWithTheApproverRole() async throws {
        let (id, request) = try await heldDelete("self")
        // The admin issuer names the agent's subject and gives it the approver role.
        let selfApprover = try await plane.token("agent-1", groups: ["sre"])
        let refused = try await plane.call("/api/v1/approvals/\(id)/approve", token: selfApprover, method: .POST, body: #"{"reason":"me"}"#)
        XCTAssertEqual(refused.status, 403, "\(refused.body)")
        XCTAssertTrue(refused.body["message"]?.stringValue?.contains("agent-1 made this request") ?? false, "\(refused.body)")
        _ = try await plane.call("/api/v1/approvals/\(id)/deny", token: try await plane.token("sam", groups: ["sre"]),
                                 method: .POST, body: #"{"reason":"cleanup"}"#)
        _ = try await request.value
    }

    func testTheBreakGlassTokenActsAsAdminDecidesNothingAndIsAudited() async throws {
        let session = try await recordSession()
        let token = try XCTUnwrap(plane.breakGlassToken)
        let detail = try await plane.call("/api/v1/sessions/\(session)", token: token)
        XCTAssertEqual(detail.status, 200, "\(detail.body)")
        let audit = try await plane.call("/api/v1/audit/reads?viewer=admin-token", token: token)
        XCTAssertEqual(audit.status, 200, "\(audit.body)")
        let actions = Set(audit.body["items"]?.arrayValue?.compactMap { $0["action"]?.stringValue } ?? [])
        XCTAssertEqual(actions, ["sessions.get", "audit.list"], "every use of the break-glass token is audited: \(audit.body)")
        let (id, request) = try await heldDelete("glass")
        let decided = try await plane.call("/api/v1/approvals/\(id)/approve", token: token, method: .POST, body: #"{"reason":"x"}"#)
        XCTAssertEqual(decided.status, 403, "a decision needs a person: \(decided.body)")
        _ = try await plane.call("/api/v1/approvals/\(id)/deny", token: try await plane.token("sam", groups: ["sre"]),
                                 method: .POST, body: #"{"reason":"cleanup"}"#)
        _ = try await request.value
    }

    func testWithTheStaticTokenTurnedOffItIsRefused401AndPeopleStillGetIn() async throws {
        await plane.stop()
        plane = try await AdminPlane(harness, breakGlassToken: nil)
        _ = try await recordSession()
        let old = try await plane.call("/api/v1/sessions", token: "break-glass-token")
        XCTAssertEqual(old.status, 401, "\(old.body)")
        let config = try await plane.call("/api/v1/login-config", token: nil)
        XCTAssertEqual(config.body["breakGlass"], false)
        let reviewer = try await plane.call("/api/v1/sessions", token: try await plane.token("rita", groups: ["auditors"]))
        XCTAssertEqual(reviewer.status, 200, "\(reviewer.body)")
    }

    func testTheLoginConfigTellsThePageWhichIssuerAndClientToUse() async throws {
        let config = try AdminAuthConfig.parse("""
            issuers:
            - {issuer: \(plane.issuerURL), audiences: [agentgate-admin, agentgate-web]}
            roles: {reviewer: [auditors]}
            login: {issuer: \(plane.issuerURL), clientID: agentgate-web}
            """)
        let api = AdminAPI(store: harness.store, token: nil, authorization: config, gateway: harness.gateway)
        let answer = await api.handle(.init(method: "GET", uri: "/api/v1/login-config", headers: [:], body: []))
        guard case .bytes(let bytes) = answer.body else { return XCTFail("no body") }
        let body = try JSONValue(parsing: bytes)
        XCTAssertEqual(body["issuer"]?.stringValue, plane.issuerURL)
        XCTAssertEqual(body["clientID"]?.stringValue, "agentgate-web")
        XCTAssertEqual(body["scopes"], ["openid", "profile", "groups"])
        XCTAssertEqual(body["breakGlass"], false)
        let page = await api.handle(.init(method: "GET", uri: "/", headers: [:], body: []))
        let csp = page.headers.first { $0.0 == "Content-Security-Policy" }?.1 ?? ""
        XCTAssertTrue(csp.contains("connect-src 'self' \(plane.issuerURL);"), "the page may call the issuer: \(csp)")
    }

    // MARK: The file

    func testBadAdminAuthFilesAreRefusedWithTheFieldNamed() throws {
        let cases: [(String, String)] = [
            ("roles: {admin: [x]}", "issuers: is required"),
            ("issuers: [{issuer: https://idp.example.com}]\nroles: {admin: [x]}", "issuers[0].audiences: is required"),
            ("issuers: [{issuer: http://idp.example.com, audiences: [a]}]\nroles: {admin: [x]}", "issuers[0].issuer: http://idp.example.com must be an https URL"),
            ("issuers: [{issuer: https://idp.example.com, audiences: [a], groupClaim: g}]\nroles: {admin: [x]}", "issuers[0].groupClaim: is not a known field"),
            ("issuers: [{issuer: https://idp.example.com, audiences: [a]}]\nroles: {superuser: [x]}", "roles.superuser: is not a role"),
            ("issuers: [{issuer: https://idp.example.com, audiences: [a]}]\nroles: {admin: []}", "roles: gives no group any role"),
            ("issuers: [{issuer: https://idp.example.com, audiences: [a]}]\nroles: {admin: [x]}\nlogin: {issuer: https://other.example.com, clientID: a}", "login.issuer: https://other.example.com is not one of issuers"),
            ("issuers: [{issuer: https://idp.example.com, audiences: [a]}]\nroles: {admin: [x]}\nlogin: {issuer: https://idp.example.com, clientID: web}", "login.clientID: web must be one of the audiences"),
            ("issuers: [{issuer: https://idp.example.com, audiences: [a]}]\nroles: {admin: [x]}\nextra: 1", "extra: is not a known field"),
            ("issuers: a: b", "not valid YAML"),
            ("- just\n- a list", "(top level): must be a mapping"),
        ]
        for (yaml, expected) in cases {
            XCTAssertThrowsError(try AdminAuthConfig.parse(yaml, source: "--admin-auth-file f.yaml")) { error in
                XCTAssertTrue("\(error)".contains("--admin-auth-file f.yaml: "), "\(error)")
                XCTAssertTrue("\(error)".contains(expected), "expected \(expected) in: \(error)")
            }
        }
        XCTAssertThrowsError(try AdminAuthConfig.load(path: "/nonexistent/admin-auth.yaml")) { error in
            XCTAssertTrue("\(error)".contains("--admin-auth-file /nonexistent/admin-auth.yaml: cannot be read"), "\(error)")
        }
        let good = try AdminAuthConfig.parse("""
            issuers: [{issuer: https://idp.example.com, audiences: [a], groupsClaim: roles}]
            roles: {reviewer: [auditors], approver: [sre], admin: [platform]}
            """)
        XCTAssertEqual(good.issuers.first?.groupsClaim, "roles")
        XCTAssertEqual(good.role(forGroups: ["auditors", "sre"]), .approver, "the highest role a group gives")
        XCTAssertEqual(good.role(forGroups: ["\u{212A}platform"]), nil)
        XCTAssertNil(good.role(forGroups: []))
    }
}

/// AdminAuthTests with the session store on PostgreSQL.
final class AdminAuthOnPostgresTests: AdminAuthTests {
    override class var backend: GatewayStoreBackend { .postgres }

    override func testAReviewerReadsSessionsAndApprovalsButCannotDecide() async throws { try await super.testAReviewerReadsSessionsAndApprovalsButCannotDecide() }
    override func testAnApproverDecidesAndTheDecisionNamesThem() async throws { try await super.testAnApproverDecidesAndTheDecisionNamesThem() }
    override func testTheAgentsOwnTokenCannotReadItsOwnOrAnotherAgentsSessions() async throws { try await super.testTheAgentsOwnTokenCannotReadItsOwnOrAnotherAgentsSessions() }
    override func testTheBreakGlassTokenActsAsAdminDecidesNothingAndIsAudited() async throws { try await super.testTheBreakGlassTokenActsAsAdminDecidesNothingAndIsAudited() }
}
