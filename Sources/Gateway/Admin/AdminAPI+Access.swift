import AgentGateAPI
import Foundation
import HTTPServing
import KubeCore
import Logging
import SessionStore

/// Who is calling the admin API, and what they may do (contract at the top of `AdminAPI.swift`).
///
/// - A bearer token equal to the break-glass token (when it is on) is the admin, named
///   `admin-token`; every use is logged at warning and, for reads, audited.
/// - Otherwise the token must be a JWT of an issuer in ``AdminAuthConfig/issuers``, chosen by
///   its (unverified) `iss` and then verified by the gateway's one ``OIDCVerifier`` against
///   that issuer's audiences: anything else is 401. Its groups give its role
///   (``AdminAuthConfig/role(forGroups:)``); an endpoint needing more is 403 naming the role.
/// - Approval endpoints keep a second way in for approvers of a connection (its issuer and
///   `spec.approval.approverGroups`, see `AdminAPI+Approvals.swift`), tried when the token
///   has no admin role.
/// An answer refusing the request (401, 403, 503), thrown to the handler.
struct AdminRefusal: Error {
    var status: Status
}

struct AdminPrincipal: Sendable {
    /// The OIDC subject, or ``AdminAPI/breakGlassViewer``.
    var subject: String
    /// The issuer that vouched for the subject ("" for the break-glass token).
    var issuer: String
    var groups: [String]
    var role: AdminAuthConfig.Role?
    var isBreakGlass: Bool { issuer.isEmpty }

    func has(_ needed: AdminAuthConfig.Role) -> Bool { role.map { $0 >= needed } ?? false }
}

extension AdminAPI {
    /// The viewer recorded for the break-glass token.
    public static let breakGlassViewer = "admin-token"
    /// A viewer re-reading the same thing from the same address within this is one audit row.
    public static let readCoalesceWindow: TimeInterval = 300

    enum Authentication {
        case principal(AdminPrincipal)
        case refused(Status)
    }

    /// The caller of `request` (see the extension's contract), or the 401 to answer.
    func authenticate(_ request: HTTPRequest) async -> Authentication {
        guard let presented = bearer(request) else {
            return .refused(.unauthorized("no bearer token: log in on the web page, or give `--token` an OIDC token of an admin issuer\(breakGlassToken == nil ? "" : " (or the break-glass admin token)")"))
        }
        if isBreakGlassToken(presented) {
            logger.warning("the break-glass admin token was used", metadata: ["path": "\(request.uri)", "address": "\(Self.host(of: request.remoteAddress))"])
            return .principal(AdminPrincipal(subject: Self.breakGlassViewer, issuer: "", groups: [], role: .admin))
        }
        guard let authorization, let verifier else {
            return .refused(.unauthorized(breakGlassToken == nil
                ? "this gateway trusts no admin issuer (--admin-auth-file) and its admin token is off"
                : "the bearer token is not this gateway's admin token, and no admin issuer is configured (--admin-auth-file)"))
        }
        guard let issuer = Self.unverifiedIssuer(presented) else {
            return .refused(.unauthorized("the bearer token is neither the admin token nor a JWT"))
        }
        guard let identity = authorization.issuers.first(where: { $0.issuer.hasSameBytes(as: issuer) }) else {
            return .refused(.unauthorized("token issuer \(issuer) is not a trusted admin issuer (\(authorization.issuers.map(\.issuer).joined(separator: ", ")))"))
        }
        do {
            let person = try await verifier.verify(presented, identity: identity)
            return .principal(AdminPrincipal(subject: person.subject, issuer: identity.issuer, groups: person.groups,
                                             role: authorization.role(forGroups: person.groups)))
        } catch {
            return .refused(.unauthorized("the token is not valid for admin issuer \(identity.issuer): \(error)"))
        }
    }

    /// The caller when it holds `role`; else throws the 401 or 403 (``AdminRefusal``).
    func require(_ role: AdminAuthConfig.Role, for what: String, _ request: HTTPRequest) async throws -> AdminPrincipal {
        let principal: AdminPrincipal
        switch await authenticate(request) {
        case .refused(let refusal): throw AdminRefusal(status: refusal)
        case .principal(let caller): principal = caller
        }
        guard !principal.has(role) else { return principal }
        throw AdminRefusal(status: forbidden(principal, needs: role, to: what))
    }

    func forbidden(_ principal: AdminPrincipal, needs role: AdminAuthConfig.Role, to what: String) -> Status {
        let groups = authorization?.roles.filter { $0.key >= role }.flatMap(\.value).sorted() ?? []
        return .forbidden("\(principal.subject) may not \(what): that needs the \(role.rawValue) role"
            + (groups.isEmpty ? "" : " (groups \(groups.joined(separator: ", ")))")
            + (principal.role.map { "; it has \($0.rawValue)" } ?? "; its groups give no admin role"))
    }

    /// Records a read before its answer is sent; throws a 503 refusal when it cannot be
    /// recorded (no read goes unrecorded).
    func audit(_ principal: AdminPrincipal, _ action: RecordingReadAction, _ request: HTTPRequest,
               session: SessionID = "", exchange: ExchangeID = "", query: String = "") async throws {
        let event = RecordingReadEvent(viewer: principal.subject, issuer: principal.issuer, action: action, sessionID: session,
                                       exchangeID: exchange, query: query, address: Self.host(of: request.remoteAddress))
        do {
            try await store.recordRead(event, at: Date(), coalesceWithin: Self.readCoalesceWindow)
        } catch {
            logger.error("a recording read could not be audited, so it was refused", metadata: ["viewer": "\(principal.subject)", "error": "\(error)"])
            throw AdminRefusal(status: .serviceUnavailable("the read could not be recorded in the audit, so it is refused: \(error)"))
        }
    }

    func isBreakGlassToken(_ presented: String) -> Bool {
        guard let token = breakGlassToken else { return false }
        let a = Array(presented.utf8), b = Array(token.utf8)
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for index in a.indices { diff |= a[index] ^ b[index] }
        return diff == 0
    }

    /// The `iss` of a JWT, read without verifying it: only to choose which issuer verifies it.
    static func unverifiedIssuer(_ token: String) -> String? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Base64URL.decode(parts[1]), let claims = try? JSONValue(parsing: payload) else { return nil }
        return claims["iss"]?.stringValue
    }

    /// The client's IP from NIO's `SocketAddress` description (`[IPv4]host/1.2.3.4:5678` →
    /// `1.2.3.4`): the port changes per connection and would split one viewer's reads.
    static func host(of address: String?) -> String {
        guard var text = address, !text.isEmpty else { return "" }
        if text.hasPrefix("[IPv4]") || text.hasPrefix("[IPv6]") { text = String(text.dropFirst(6)) }
        if let slash = text.lastIndex(of: "/") { text = String(text[text.index(after: slash)...]) }
        if let colon = text.lastIndex(of: ":"), !text[text.index(after: colon)...].isEmpty,
           text[text.index(after: colon)...].allSatisfy(\.isNumber) {
            text = String(text[..<colon])
        }
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        return text
    }
}
