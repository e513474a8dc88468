import AgentGateAPI
import Foundation
import KubeCore
import NIOCore
import NIOHTTP1
import SessionStore

/// What became of a request that may need approval.
public enum ApprovalOutcome: Sendable {
    /// No `spec.approval` rule holds it: forward.
    case notRequired
    /// An approver allowed it: forward it exactly as it was.
    case approved(ApprovalRecord)
    /// Denied (403), expired (403) or abandoned (503): answer `status`, forward nothing.
    case refused(Status, ApprovalRecord)
}

/// The approval step of the pipeline (after `spec.access` and the exchange record, before
/// anything is forwarded). The exec/attach/port-forward upgrade path calls ``awaitApproval(_:_:)``
/// the same way before it opens the upstream stream.
///
/// Contract: when ``ExchangeContext/heldBy`` names a rule, the request is dry-run upstream
/// (`dryRun=All`, as the connection, for create/update/patch/delete/deletecollection), the
/// approval is stored with the masked request body and the masked dry-run answer, announced
/// (Event on the AgentConnection, `status.pendingApprovals`, webhook) and held by the
/// ``ApprovalBroker`` until it is final. Nothing of the real request reaches upstream before
/// an approval.
extension Gateway {
    static let dryRunVerbs: Set<String> = ["create", "update", "patch", "delete", "deletecollection"]

    func awaitApproval(_ context: ExchangeContext, _ recording: Recording) async -> ApprovalOutcome {
        guard let held = context.heldBy else { return .notRequired }
        let policy = context.connection.config.approval ?? ApprovalPolicy()
        let timeout = policy.timeoutSeconds ?? GoDuration.parse(ApprovalPolicy.defaultTimeout) ?? 600
        let now = Date()
        var approval = ApprovalRecord(
            id: held.id, connection: context.ref, rule: held.rule.name, subject: context.agent.subject,
            groups: context.agent.groups, model: context.agent.model, sessionID: recording.sessionID,
            exchangeID: recording.exchangeID, verb: context.info.verb, apiGroup: context.info.apiGroup,
            resource: context.info.resource, subresource: context.info.subresource, namespace: context.info.namespace,
            name: context.info.name, httpMethod: context.request.method, path: context.route.decodedPath,
            query: context.route.rawQuery ?? "", requestBody: maskedRequestBody(context),
            approverGroups: policy.approverGroups ?? [], createdAt: now, expiresAt: now.addingTimeInterval(timeout),
            owner: store.instanceID)
        if let answer = await dryRun(context) {
            approval.dryRunStatusCode = answer.code
            approval.dryRunBody = answer.body
        }
        do {
            try await store.createApproval(approval)
        } catch {
            // No durable approval, no way to decide it: refuse rather than forward unapproved.
            logger.error("storing approval \(held.id) on \(context.ref) failed: \(error)")
            approval.state = .abandoned
            return .refused(.serviceUnavailable("the request needs approval (rule \(held.rule.name)) but the approval could not be stored: \(error)"), approval)
        }
        await announcer.requested(approval, connection: context.connection.config)
        let decided = await approvals.hold(approval)
        metrics.countApproval(connection: context.ref, state: decided.state)
        switch decided.state {
        case .approved:
            return .approved(decided)
        case .denied:
            let reason = decided.reason.map { $0.isEmpty ? "" : ": \($0)" } ?? ""
            return .refused(.forbidden("\(Self.describe(decided)) was denied by \(decided.decidedBy ?? "an approver")\(reason) (approval \(decided.id), rule \(decided.rule))"), decided)
        case .expired:
            return .refused(.forbidden("\(Self.describe(decided)) was held for approval \(decided.id) (rule \(decided.rule)) and expired after \(GoDuration.format(timeout)) with no decision"), decided)
        case .abandoned, .pending:
            return .refused(.serviceUnavailable("\(Self.describe(decided)) was held for approval \(decided.id) (rule \(decided.rule)) and not forwarded: \(decided.reason ?? "the gateway stopped"); retry the request"), decided)
        }
    }

    /// `delete deployments "web" in namespace "default"`, for Status messages.
    static func describe(_ approval: ApprovalRecord) -> String {
        let resource = approval.subresource.isEmpty ? approval.resource : "\(approval.resource)/\(approval.subresource)"
        var text = "\(approval.verb) \(resource)"
        if !approval.name.isEmpty { text += " \"\(approval.name)\"" }
        if !approval.namespace.isEmpty { text += " in namespace \"\(approval.namespace)\"" }
        return text
    }

    private func maskedRequestBody(_ context: ExchangeContext) -> [UInt8]? {
        let request = context.request
        guard !request.body.isEmpty else { return nil }
        let masked = context.connection.masker.maskRequestBody(request.body, contentType: request.header("Content-Type"),
                                                               kindHint: context.kindHint, resource: context.maskedResource)
        return masked.count > context.maxBodyBytes ? Array(masked.prefix(context.maxBodyBytes)) : masked
    }

    /// The same request with `dryRun=All`, as the connection: what the API server says would
    /// happen (the object it would write or delete, or the error), masked. Nil when the verb
    /// has no dry run or upstream cannot be reached.
    private func dryRun(_ context: ExchangeContext) async -> (code: Int, body: [UInt8])? {
        // Connect subresources (exec, attach, portforward) have no dry run: they change nothing
        // by themselves, and their effect is the stream the approver is asked about.
        guard Self.dryRunVerbs.contains(context.info.verb),
              !["exec", "attach", "portforward", "proxy"].contains(context.info.subresource) else { return nil }
        let target = context.route.upstreamTarget
        let headers = UpstreamHeaders.request(from: context.request.headers, token: context.connection.token, sessionID: nil)
        do {
            let response = try await upstreamClient.execute(
                method: HTTPMethod(rawValue: context.request.method), target: target + (target.contains("?") ? "&" : "?") + "dryRun=All",
                headers: headers, body: context.request.body, timeout: .seconds(30))
            let raw = try await response.body.collect(upTo: maxResponseBytes)
            var masked = context.connection.masker.maskBody(raw, contentType: response.headers.first(name: "Content-Type"),
                                                            kindHint: context.kindHint, resource: context.maskedResource)
            if masked.count > context.maxBodyBytes { masked = Array(masked.prefix(context.maxBodyBytes)) }
            return (Int(response.status.code), masked)
        } catch {
            logger.warning("dry run for approval on \(context.ref) failed: \(error)")
            return nil
        }
    }
}

/// The rule that holds a request and the id its approval gets (known before the exchange is
/// recorded, so the exchange carries it from the start).
struct HeldBy: Sendable {
    var rule: ApprovalRule
    var id: ApprovalID
}
