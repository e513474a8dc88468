import AgentGateAPI
import Foundation
import KubeCore

/// Who may use the admin API: the OIDC issuers people log in with and the groups each
/// admin role maps to, read from `--admin-auth-file` (YAML, mounted from the
/// `agentgate-admin-auth` ConfigMap, the same for every replica).
///
/// ```yaml
/// issuers:
/// - issuer: https://dex.example.com       # https, or http on loopback (the sandbox)
///   audiences: [agentgate-admin]          # a token's aud must contain one
///   groupsClaim: groups                   # optional, default groups
///   subjectClaim: sub                     # optional, default sub
/// roles:                                  # role -> groups; a person holds every role a group gives
///   reviewer: [auditors]                  # reads sessions, exchanges, stream chunks, approvals
///   approver: [sre]                       # reviewer + decides approvals
///   admin: [platform-admins]              # everything, the read audit included
/// login:                                  # optional: the web page's OIDC login
///   issuer: https://dex.example.com       # one of issuers
///   clientID: agentgate-admin             # a public client (authorization code + PKCE); one of its audiences
///   scopes: [openid, profile, groups]     # optional, this default
/// ```
///
/// Contract: ``parse(_:source:)`` refuses unknown keys, missing or empty required fields,
/// non-URL issuers, unknown roles and a login naming an issuer or client the file does not
/// trust, with an error naming the field (`issuers[0].audiences`). Deciding an approval also
/// needs the connection's `spec.approval.approverGroups` when the approval names some.
public struct AdminAuthConfig: Sendable, Hashable {
    /// The admin roles, each including the ones before it.
    public enum Role: String, Sendable, Hashable, CaseIterable, Comparable {
        case reviewer, approver, admin
        public static func < (a: Role, b: Role) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    /// One trusted issuer, checked as an AgentConnection's identity block is.
    public var issuers: [AgentIdentity]
    /// Groups giving each role.
    public var roles: [Role: [String]]
    public var login: Login?

    /// What the web page logs in with (served at `GET /api/v1/login-config`).
    public struct Login: Sendable, Hashable {
        public var issuer: String
        public var clientID: String
        public var scopes: [String]
        public static let defaultScopes = ["openid", "profile", "groups"]
        public init(issuer: String, clientID: String, scopes: [String] = Login.defaultScopes) {
            self.issuer = issuer
            self.clientID = clientID
            self.scopes = scopes
        }
    }

    public init(issuers: [AgentIdentity], roles: [Role: [String]], login: Login? = nil) {
        self.issuers = issuers
        self.roles = roles
        self.login = login
    }

    /// The highest role `groups` give, or nil. Groups compare byte for byte (ExactStrings.swift).
    public func role(forGroups groups: [String]) -> Role? {
        Role.allCases.reversed().first { role in groups.contains(where: (roles[role] ?? []).containsSameBytes(as:)) }
    }

    /// Reads and parses `path`; errors name `--admin-auth-file`, the path and the field.
    public static func load(path: String) throws -> AdminAuthConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw GatewayConfigError("--admin-auth-file \(path): cannot be read: \((error as NSError).localizedFailureReason ?? error.localizedDescription)")
        }
        return try parse(text, source: "--admin-auth-file \(path)")
    }

    public static func parse(_ text: String, source: String = "admin auth") throws -> AdminAuthConfig {
        func fail(_ field: String, _ problem: String) -> GatewayConfigError { GatewayConfigError("\(source): \(field): \(problem)") }
        let document: JSONValue
        do { document = try JSONValue(yaml: text) } catch { throw GatewayConfigError("\(source): not valid YAML: \(error)") }
        guard case .object(let top) = document else { throw fail("(top level)", "must be a mapping with issuers and roles") }
        try refuseUnknown(top, known: ["issuers", "roles", "login"], at: "", fail)

        func strings(_ value: JSONValue?, _ field: String, required: Bool) throws -> [String] {
            guard let value, value != .null else {
                if required { throw fail(field, "is required") }
                return []
            }
            guard case .array(let items) = value else { throw fail(field, "must be a list of strings") }
            return try items.enumerated().map { index, item in
                guard let s = item.stringValue, !s.isEmpty else { throw fail("\(field)[\(index)]", "must be a non-empty string") }
                return s
            }
        }
        func string(_ object: [String: JSONValue], _ key: String, _ field: String, required: Bool) throws -> String? {
            guard let value = object[key], value != .null else {
                if required { throw fail(field, "is required") }
                return nil
            }
            guard let s = value.stringValue, !s.isEmpty else { throw fail(field, "must be a non-empty string") }
            return s
        }

        guard case .array(let issuerItems)? = top["issuers"], !issuerItems.isEmpty else {
            throw fail("issuers", "is required: a list of at least one {issuer, audiences}")
        }
        var issuers: [AgentIdentity] = []
        for (index, item) in issuerItems.enumerated() {
            let at = "issuers[\(index)]"
            guard case .object(let o) = item else { throw fail(at, "must be a mapping with issuer and audiences") }
            try refuseUnknown(o, known: ["issuer", "audiences", "groupsClaim", "subjectClaim"], at: at + ".", fail)
            let url = try string(o, "issuer", at + ".issuer", required: true)!
            if let problem = issuerProblem(url) { throw fail(at + ".issuer", "\(url) \(problem)") }
            if issuers.contains(where: { $0.issuer == url }) { throw fail(at + ".issuer", "\(url) is listed twice") }
            let audiences = try strings(o["audiences"], at + ".audiences", required: true)
            if audiences.isEmpty { throw fail(at + ".audiences", "must name at least one audience") }
            issuers.append(AgentIdentity(issuer: url, audiences: audiences,
                                         subjectClaim: try string(o, "subjectClaim", at + ".subjectClaim", required: false),
                                         groupsClaim: try string(o, "groupsClaim", at + ".groupsClaim", required: false)))
        }

        guard case .object(let roleItems)? = top["roles"] else {
            throw fail("roles", "is required: a mapping of reviewer, approver and admin to lists of groups")
        }
        var roles: [Role: [String]] = [:]
        for (key, value) in roleItems {
            guard let role = Role(rawValue: key) else {
                throw fail("roles.\(key)", "is not a role; the roles are \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            roles[role] = try strings(value, "roles.\(key)", required: false)
        }
        if roles.values.allSatisfy(\.isEmpty) { throw fail("roles", "gives no group any role") }

        var login: Login?
        if let value = top["login"], value != .null {
            guard case .object(let o) = value else { throw fail("login", "must be a mapping with issuer and clientID") }
            try refuseUnknown(o, known: ["issuer", "clientID", "scopes"], at: "login.", fail)
            let url = try string(o, "issuer", "login.issuer", required: true)!
            guard let trusted = issuers.first(where: { $0.issuer == url }) else {
                throw fail("login.issuer", "\(url) is not one of issuers[].issuer")
            }
            let client = try string(o, "clientID", "login.clientID", required: true)!
            // The page sends the ID token, whose aud is the client: it must verify.
            guard trusted.audiences.contains(client) else {
                throw fail("login.clientID", "\(client) must be one of the audiences of issuer \(url) (the page's ID token has aud \(client))")
            }
            let scopes = try strings(o["scopes"], "login.scopes", required: false)
            login = Login(issuer: url, clientID: client, scopes: scopes.isEmpty ? Login.defaultScopes : scopes)
        }
        return AdminAuthConfig(issuers: issuers, roles: roles, login: login)
    }

    private static func refuseUnknown(_ object: [String: JSONValue], known: Set<String>, at prefix: String,
                                      _ fail: (String, String) -> GatewayConfigError) throws {
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw fail(prefix + unknown, "is not a known field (known: \(known.sorted().joined(separator: ", ")))")
        }
    }

    /// Why `url` cannot be an issuer, or nil: https with a host, or http on loopback only.
    static func issuerProblem(_ url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host, !host.isEmpty else {
            return "is not a URL with a scheme and host"
        }
        if scheme == "https" { return nil }
        if scheme == "http", ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host) { return nil }
        return "must be an https URL (http only on loopback, for the sandbox's issuer)"
    }
}
