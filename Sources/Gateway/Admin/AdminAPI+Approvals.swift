import AgentGateAPI
import Foundation
import HTTPServing
import KubeCore
import SessionStore

/// The admin API's approval endpoints (contract at the top of `AdminAPI.swift`).
///
/// Who may do what:
/// - A holder of an admin role (`AdminAPI+Access.swift`): reviewer and up list and read every
///   approval; approver and up decide, when in the approval's `approverGroups` if it names
///   some, and never on their own request (same subject).
/// - The break-glass token lists and reads every approval (audited), and decides none: a
///   decision needs a person.
/// - A connection's approver, as before admin roles existed: a token verified with the
///   identity settings (issuer, audiences) of the approval's AgentConnection, by the same
///   ``OIDCVerifier`` as agents, whose groups meet the approval's `approverGroups`; it lists,
///   reads and decides that connection's approvals, and for a decision its subject must
///   differ from the requesting agent's. Tried when the token holds no admin role; a token
///   that verifies for no connection is 401, one that verifies but lacks the groups is 403.
extension AdminAPI {
    func handleApprovals(_ request: HTTPRequest, segments: [String], query: [String: [String]]) async -> HTTPResponse {
        guard let gateway else { return status(Status(message: "this admin API serves no approvals", reason: "NotFound", code: 404)) }
        do {
            let caller = await authenticate(request)
            switch (request.method, segments.count) {
            case ("GET", 3):
                return try await list(request, caller, query: query, gateway)
            case ("GET", 4):
                if case .principal(let viewer) = caller, viewer.has(.reviewer) {
                    let approval = try await store.approval(id: segments[3])
                    if viewer.isBreakGlass {
                        try await audit(viewer, .readApproval, request, session: approval?.sessionID ?? "",
                                        exchange: approval?.exchangeID ?? "", query: "approval=\(segments[3])")
                    }
                    guard let approval else { return notFound(segments[3]) }
                    return json(AdminJSON.approval(approval))
                }
                guard let approval = try await store.approval(id: segments[3]) else { return notFound(segments[3]) }
                if case .refused(let refusal) = await approver(request, for: approval, gateway) {
                    return status(preferred(caller, over: refusal, needs: .reviewer, to: "read approvals"))
                }
                return json(AdminJSON.approval(approval))
            case ("POST", 5) where ["approve", "deny"].contains(segments[4]):
                return try await decide(request, caller, id: segments[3], approve: segments[4] == "approve", gateway)
            case (_, 3), (_, 4), (_, 5):
                return status(.methodNotAllowed("\(request.method) is not served here: GET /api/v1/approvals[/ID], POST /api/v1/approvals/ID/approve|deny"))
            default:
                return status(Status(message: "no such admin endpoint: \(request.uri)", reason: "NotFound", code: 404))
            }
        } catch let refusal as AdminRefusal {
            return status(refusal.status)
        } catch let error as AdminQueryError {
            return status(.badRequest(error.message))
        } catch {
            return status(.serviceUnavailable("the session store failed: \(error)"))
        }
    }

    /// When the connection-approver path refused a caller that the admin issuers know, the
    /// admin answer (403 naming the role) says more than "verifies for no connection".
    private func preferred(_ caller: Authentication, over refusal: Status, needs role: AdminAuthConfig.Role, to what: String) -> Status {
        guard case .principal(let principal) = caller, refusal.code == 401 else { return refusal }
        return forbidden(principal, needs: role, to: what)
    }

    private func list(_ request: HTTPRequest, _ caller: Authentication, query: [String: [String]], _ gateway: Gateway) async throws -> HTTPResponse {
        var filter = ApprovalFilter()
        if let state = query["state"]?.first, !state.isEmpty {
            guard let parsed = ApprovalState(rawValue: state) else {
                throw AdminQueryError(message: "state must be one of \(ApprovalState.allCases.map(\.rawValue).joined(separator: ", ")), got \(state)")
            }
            filter.state = parsed
        }
        if let limit = query["limit"]?.first, !limit.isEmpty {
            guard let n = Int(limit), n > 0 else { throw AdminQueryError(message: "limit must be a positive integer, got \(limit)") }
            filter.limit = n
        }
        if let connection = query["connection"]?.first, !connection.isEmpty {
            let parts = connection.split(separator: "/")
            guard parts.count == 2 else { throw AdminQueryError(message: "connection must be NAMESPACE/NAME, got \(connection)") }
            filter.connections = [ConnectionRef(namespace: String(parts[0]), name: String(parts[1]))]
        }
        if case .principal(let viewer) = caller, viewer.has(.reviewer) {
            if viewer.isBreakGlass { try await audit(viewer, .listApprovals, request) }
        } else {
            // A connection's approver sees the approvals of the connections it may decide on.
            guard let bearer = bearer(request) else { return status(.unauthorized("an admin OIDC token, a connection approver's OIDC token or the admin token is required")) }
            var allowed: [ConnectionRef] = []
            var verifiedSomewhere = false
            for connection in gateway.registry.all {
                guard let policy = connection.config.approval, let groups = policy.approverGroups, !groups.isEmpty,
                      let agent = try? await gateway.verifier.verify(bearer, identity: connection.config.identity) else { continue }
                verifiedSomewhere = true
                if agent.groups.contains(where: groups.containsSameBytes(as:)) {
                    allowed.append(ConnectionRef(namespace: connection.config.namespace, name: connection.config.name))
                }
            }
            guard verifiedSomewhere else {
                return status(preferred(caller, over: .unauthorized("the token is neither the admin token nor an OIDC token of an admin issuer or of any connection's issuer and audience"),
                                        needs: .reviewer, to: "read approvals"))
            }
            guard !allowed.isEmpty else { return status(.forbidden("the token's groups are in no connection's spec.approval.approverGroups")) }
            filter.connections = filter.connections.map { wanted in wanted.filter(allowed.contains) } ?? allowed
        }
        let approvals = try await store.listApprovals(filter)
        return json(.object(["items": .array(approvals.map(AdminJSON.approval))]))
    }

    private func decide(_ request: HTTPRequest, _ caller: Authentication, id: ApprovalID, approve: Bool, _ gateway: Gateway) async throws -> HTTPResponse {
        if case .principal(let principal) = caller, principal.isBreakGlass {
            return status(.forbidden("the admin token cannot approve or deny: a decision needs a person's OIDC token (agentgate approvals approve ID --token JWT)"))
        }
        let reason: String
        if request.body.isEmpty {
            reason = ""
        } else {
            guard case .object(let body)? = try? JSONValue(parsing: request.body) else {
                throw AdminQueryError(message: "the body must be a JSON object such as {\"reason\":\"...\"}")
            }
            if let value = body["reason"], value.stringValue == nil, value != .null {
                throw AdminQueryError(message: "reason must be a string")
            }
            reason = (body["reason"]?.stringValue ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if !approve && reason.isEmpty { throw AdminQueryError(message: "a denial needs a reason: {\"reason\":\"...\"}") }
        guard let approval = try await store.approval(id: id) else { return notFound(id) }
        let approver: VerifiedAgent
        if case .principal(let person) = caller, person.has(.approver) {
            // Bytes, not Swift's canonical equivalence (see ExactStrings.swift).
            guard approval.approverGroups.isEmpty || person.groups.contains(where: approval.approverGroups.containsSameBytes(as:)) else {
                return status(.forbidden("\(person.subject) is not in the approver groups of approval \(approval.id) (\(approval.approverGroups.joined(separator: ", ")))"))
            }
            approver = VerifiedAgent(subject: person.subject, groups: person.groups)
        } else {
            switch await self.approver(request, for: approval, gateway) {
            case .refused(let refusal): return status(preferred(caller, over: refusal, needs: .approver, to: "decide approvals"))
            case .verified(let agent): approver = agent
            }
        }
        // Canonical equivalence on purpose: a look-alike of the requester's name is refused too.
        if approver.subject == approval.subject {
            return status(.forbidden("\(approver.subject) made this request and cannot approve or deny it; another approver must decide"))
        }
        do {
            let decided = try await gateway.approvals.decide(id, ApprovalDecision(
                state: approve ? .approved : .denied, decidedBy: approver.subject, reason: reason.isEmpty ? nil : reason))
            return json(AdminJSON.approval(decided))
        } catch SessionStoreError.approvalAlreadyDecided(let current) {
            let by = current.decidedBy.map { " by \($0)" } ?? ""
            return status(.conflict(group: "agentgate.io", resource: "approvals", name: id,
                                    message: "approval \(id) is already \(current.state.rawValue)\(by); a decision is made once"))
        } catch SessionStoreError.approvalNotFound {
            return notFound(id)
        }
    }

    enum ApproverCheck {
        case verified(VerifiedAgent)
        case refused(Status)
    }

    /// The bearer token as an approver of `approval` (see the extension's comment).
    func approver(_ request: HTTPRequest, for approval: ApprovalRecord, _ gateway: Gateway) async -> ApproverCheck {
        guard let bearer = bearer(request) else { return .refused(.unauthorized("an approver's OIDC bearer token is required")) }
        guard let connection = gateway.registry.connection(namespace: approval.connection.namespace, name: approval.connection.name) else {
            return .refused(.forbidden("agentconnection \(approval.connection) is not served by this gateway, so its approvers cannot be verified here"))
        }
        let agent: VerifiedAgent
        do {
            agent = try await gateway.verifier.verify(bearer, identity: connection.config.identity)
        } catch {
            return .refused(.unauthorized("the approver token is not valid for agentconnection \(approval.connection) (issuer \(connection.config.identity.issuer)): \(error)"))
        }
        // Bytes, not Swift's canonical equivalence (see ExactStrings.swift).
        guard agent.groups.contains(where: approval.approverGroups.containsSameBytes(as:)) else {
            return .refused(.forbidden("\(agent.subject) is not in the approver groups of approval \(approval.id) (\(approval.approverGroups.joined(separator: ", ")))"))
        }
        return .verified(agent)
    }

    private func notFound(_ id: String) -> HTTPResponse {
        status(.notFound(group: "agentgate.io", resource: "approvals", name: id))
    }
}

extension AdminJSON {
    /// An approval as the admin API, the CLI, the webhook and the web page see it.
    public static func approval(_ a: ApprovalRecord) -> JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(a.id), "connection": .string(a.connection.description), "rule": .string(a.rule),
            "state": .string(a.state.rawValue), "subject": .string(a.subject), "groups": .array(a.groups.map { .string($0) }),
            "verb": .string(a.verb), "apiGroup": .string(a.apiGroup), "resource": .string(a.resource),
            "subresource": .string(a.subresource), "namespace": .string(a.namespace), "name": .string(a.name),
            "method": .string(a.httpMethod), "path": .string(a.path), "query": .string(a.query),
            "approverGroups": .array(a.approverGroups.map { .string($0) }), "createdAt": .string(date(a.createdAt)),
            "expiresAt": .string(date(a.expiresAt)),
        ]
        if let v = a.model { o["model"] = .string(v) }
        if let v = a.sessionID { o["sessionID"] = .string(v) }
        if let v = a.exchangeID { o["exchangeID"] = .string(v) }
        if let v = a.dryRunStatusCode { o["dryRunStatusCode"] = .int(Int64(v)) }
        if let v = a.decidedAt { o["decidedAt"] = .string(date(v)) }
        if let v = a.decidedBy { o["decidedBy"] = .string(v) }
        if let v = a.reason { o["reason"] = .string(v) }
        body(a.requestBody, "requestBody", into: &o)
        body(a.dryRunBody, "dryRunBody", into: &o)
        return .object(o)
    }
}
