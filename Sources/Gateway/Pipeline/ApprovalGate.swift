import AgentGateAPI
import Foundation
import KubeCore
import Logging
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

/// The approval stage (after admission and before anything is forwarded; the exec, attach
/// and port-forward upgrades take it too, before the upstream stream opens).
///
/// Contract:
/// - ``hold(_:)``, before the exchange is recorded: the `spec.approval` rule that holds the
///   request, if any (``ApprovalMatcher``). A write held, or one whose rule is decided on the
///   resulting object, is first sent as a dry run as the connection (see
///   ``dryRunRequest(method:target:body:contentType:)`` for where `dryRun` goes so that the
///   server really reads it); a held write the API server refuses is answered with that
///   refusal at once instead of held.
/// - ``decide(_:_:)``, after the exchange is begun: the approval is stored with the request's
///   summary and the masked dry-run answer, announced (Event on the AgentConnection,
///   `status.pendingApprovals`, webhook) and held by the ``ApprovalBroker`` until it is final.
///   Denied or expired answer 403, abandoned (gateway shutdown, agent gone, store failure)
///   503. Nothing of the real request reaches upstream before an approval.
final class ApprovalGate: Sendable {
    let store: any SessionStore
    let broker: ApprovalBroker
    let announcer: ApprovalAnnouncer
    /// For dry runs, as the connection.
    let upstream: UpstreamClient
    let metrics: GatewayMetrics
    let logger: Logger

    init(store: any SessionStore, broker: ApprovalBroker, announcer: ApprovalAnnouncer, upstream: UpstreamClient,
         metrics: GatewayMetrics, logger: Logger) {
        self.store = store
        self.broker = broker
        self.announcer = announcer
        self.upstream = upstream
        self.metrics = metrics
        self.logger = logger
    }

    func decide(_ context: ExchangeContext, _ recording: Recording) async -> ApprovalOutcome {
        guard let held = context.heldBy else { return .notRequired }
        let policy = context.connection.config.approval ?? ApprovalPolicy()
        let timeout = policy.timeoutSeconds ?? GoDuration.parse(ApprovalPolicy.defaultTimeout) ?? 600
        let now = Date()
        var approval = ApprovalRecord(
            id: held.id, connection: context.ref, rule: held.rule.name, subject: context.agent.subject,
            groups: context.agent.groups, model: context.agent.model, sessionID: recording.sessionID,
            exchangeID: recording.exchangeID, request: context.summary, approverGroups: policy.approverGroups ?? [],
            createdAt: now, expiresAt: now.addingTimeInterval(timeout), owner: store.instanceID)
        if let answer = held.dryRun {
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
        let holding = DispatchTime.now()
        let decided = await broker.hold(approval)
        metrics.approvalWait.observe(Double(DispatchTime.now().uptimeNanoseconds - holding.uptimeNanoseconds) / 1_000_000_000)
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

    /// What the approval rules make of a request, before it is recorded.
    enum Hold {
        /// No rule holds it.
        case free
        /// A rule holds it, with the id its approval will get.
        case held(HeldBy)
        /// A rule would hold it, but its dry run says the API server refuses it (a delete of
        /// an object that is not there, an invalid object): the agent gets that answer at
        /// once, and no human is asked about a request that would change nothing.
        case refusedByDryRun(DryRunAnswer)
    }

    /// The `spec.approval` rule that holds this request. The dry run is made here, before
    /// anything is recorded: a rule decided on the resulting object (``ApprovalMatcher``)
    /// needs it to decide, and a held write whose dry run the API server refuses is answered
    /// with that refusal instead of held. A held request keeps its dry run for its approval.
    func hold(_ context: ExchangeContext) async -> Hold {
        let policy = context.connection.config.approval
        var decision = ApprovalMatcher.match(policy, context.info)
        let decidedOnDryRun = decision == .needsDryRun
        var preview: DryRunAnswer?
        if decidedOnDryRun {
            preview = await dryRun(context)
            decision = ApprovalMatcher.match(policy, context.info, dryRun: preview?.result ?? .unknown)
        }
        guard case .held(let rule) = decision else { return .free }
        // One dry run a request: one that could not be made is not tried twice.
        if !decidedOnDryRun { preview = await dryRun(context) }
        if let preview, preview.result == .refused { return .refusedByDryRun(preview) }
        return .held(HeldBy(rule: rule, id: SortableID.make(at: Date()), dryRun: preview))
    }

    /// The same request as a dry run, as kube-apiserver reads one: create, update and patch
    /// take `dryRun` from the query; delete and deletecollection take their DeleteOptions
    /// from the body when there is one and ignore the query then (handlers/delete.go), so
    /// `dryRun: ["All"]` is merged into that body. Nil when no dry run can be sent safely: a
    /// DeleteOptions body the gateway cannot rewrite (not a JSON object) is never sent, since
    /// the server would read it without the dry run and delete.
    static func dryRunRequest(method: String, target: String, body: [UInt8], contentType: String?) -> (target: String, body: [UInt8])? {
        let dryTarget = target + (target.contains("?") ? "&" : "?") + "dryRun=All"
        guard method == "DELETE", !body.isEmpty else { return (dryTarget, body) }
        let essence = RequestMediaType(contentType).essence
        guard essence.isEmpty || essence == "application/json", case .object(var options)? = try? JSONValue(parsing: body) else {
            return nil
        }
        options["dryRun"] = .array([.string("All")])
        return (dryTarget, JSONValue.object(options).serialized())
    }

    /// The same request with `dryRun=All`, as the connection: what the API server says would
    /// happen (the object it would write or delete, or the error). Nil when the verb has no
    /// dry run, none can be sent safely, or upstream cannot be reached.
    func dryRun(_ context: ExchangeContext) async -> DryRunAnswer? {
        // Connect subresources (exec, attach, portforward) have no dry run: they change nothing
        // by themselves, and their effect is the stream the approver is asked about.
        guard RequestMatcher.writeVerbs.contains(context.info.verb),
              !["exec", "attach", "portforward", "proxy"].contains(context.info.subresource) else { return nil }
        let request = context.request
        guard let dry = Self.dryRunRequest(method: request.method, target: context.route.upstreamTarget, body: request.body,
                                           contentType: request.header("Content-Type")) else {
            logger.info("no dry run for approval on \(context.ref): the DeleteOptions body is not a JSON object the gateway can add dryRun to")
            return nil
        }
        var headers = UpstreamHeaders.request(from: request.headers, token: context.connection.token, sessionID: nil)
        headers.replaceOrAdd(name: "Accept", value: "application/json")
        if dry.body != request.body { headers.replaceOrAdd(name: "Content-Type", value: "application/json") }
        do {
            let response = try await upstream.execute(method: HTTPMethod(rawValue: request.method), target: dry.target,
                                                            headers: headers, body: dry.body, timeout: .seconds(30))
            let raw = try await response.body.collect(upTo: Forwarder.maxResponseBytes)
            let code = Int(response.status.code)
            let result: ApprovalMatcher.DryRunResult
            switch code {
            case 200..<300:
                if let object = try? JSONValue(parsing: raw), case .object = object { result = .object(object) } else { result = .unknown }
            case 429: result = .unknown
            // An admission webhook without sideEffects None refuses every dry run with 400: that
            // says nothing of the write itself.
            case 400 where Self.mentionsDryRun(raw): result = .unknown
            case 400..<500: result = .refused
            default: result = .unknown
            }
            let masked = context.connection.masker.maskBody(raw, contentType: response.headers.first(name: "Content-Type"),
                                                            kindHint: context.kindHint, resource: context.maskedResource)
            return DryRunAnswer(code: code, body: context.recordable(masked).bytes, result: result)
        } catch {
            logger.warning("dry run for approval on \(context.ref) failed: \(error)")
            return nil
        }
    }

    /// Whether an error answer is about dry runs themselves (an admission webhook that does
    /// not support them), not about the write.
    static func mentionsDryRun(_ body: [UInt8]) -> Bool {
        let text = String(decoding: body, as: UTF8.self).lowercased()
        return text.contains("dry run") || text.contains("dryrun") || text.contains("dry-run")
    }
}

/// A dry run's answer: masked for the approval, and read for the approval rules.
struct DryRunAnswer: Sendable {
    var code: Int
    var body: [UInt8]
    var result: ApprovalMatcher.DryRunResult
}

/// The rule that holds a request and the id its approval gets (known before the exchange is
/// recorded, so the exchange carries it from the start).
struct HeldBy: Sendable {
    var rule: ApprovalRule
    var id: ApprovalID
    /// The dry run that decided the rule, reused as the approval's preview.
    var dryRun: DryRunAnswer?
}
