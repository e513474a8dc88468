import AgentGateAPI
import AsyncHTTPClient
import ControllerRuntime
import Foundation
import KubeClient
import KubeCore
import Logging
import NIOCore
import SessionStore

/// Makes approvals visible where people look, best effort (an announcement that fails is
/// logged; it never holds, releases or fails a request):
/// - an Event on the AgentConnection (`ApprovalRequested`, then `ApprovalApproved`,
///   `ApprovalDenied`, `ApprovalExpired` or `ApprovalAbandoned`), when the gateway has a
///   cluster client (``GatewayAnnouncements``);
/// - `status.pendingApprovals`, by asking the ``SessionStatusReporter`` for a prompt pass;
/// - the connection's `spec.approval.webhookURL`: a POST of the approval as the admin API
///   shows it (``AdminJSON/approval(_:)``), tried again on failure (``WebhookSender``).
final class ApprovalAnnouncer: @unchecked Sendable {
    private let events: EventRecorder?
    private let reporter: SessionStatusReporter?
    private let registry: ConnectionRegistry
    private let webhooks: WebhookSender

    init(registry: ConnectionRegistry, http: HTTPClient, announcements: GatewayAnnouncements, logger: Logger) {
        self.registry = registry
        self.webhooks = WebhookSender(http: http, logger: logger)
        self.events = announcements.events
        self.reporter = announcements.statusReporter
    }

    func requested(_ approval: ApprovalRecord, connection: GatewayConnectionConfig) async {
        let model = approval.model.map { " (model \($0))" } ?? ""
        let note = "\(approval.subject)\(model) asked to \(ApprovalGate.describe(approval)); held for approval \(approval.id) by rule \(approval.rule) until \(KubeTime.format(approval.expiresAt)). Decide with: agentgate approvals approve|deny \(approval.id) --reason ..."
        announce(approval, type: .warning, reason: "ApprovalRequested", action: "HoldRequest", note: note)
        if let url = connection.approval?.webhookURL, !url.isEmpty {
            webhooks.send(AdminJSON.approval(approval).serialized(), to: url, what: "approval \(approval.id)")
        }
    }

    func finished(_ approval: ApprovalRecord) async {
        let by = approval.decidedBy ?? "nobody"
        let why = approval.reason.map { ": \($0)" } ?? ""
        let what = "approval \(approval.id) (\(ApprovalGate.describe(approval)))"
        let (reason, note): (String, String) = switch approval.state {
        case .approved: ("ApprovalApproved", "\(what) approved by \(by)\(why)")
        case .denied: ("ApprovalDenied", "\(what) denied by \(by)\(why)")
        case .expired: ("ApprovalExpired", "\(what) expired with no decision")
        case .abandoned, .pending: ("ApprovalAbandoned", "\(what) abandoned\(why)")
        }
        announce(approval, type: approval.state == .approved ? .normal : .warning, reason: reason, action: "DecideRequest", note: note)
    }

    private func announce(_ approval: ApprovalRecord, type: EventRecorder.EventType, reason: String, action: String, note: String) {
        reporter?.reportSoon()
        guard let events else { return }
        let uid = registry.connection(namespace: approval.connection.namespace, name: approval.connection.name)?.config.uid
        let regarding = EventRecorder.Regarding(apiVersion: AgentConnection.resourceType.apiVersion, kind: AgentConnection.kind,
                                                namespace: approval.connection.namespace, name: approval.connection.name,
                                                uid: uid?.isEmpty == false ? uid : nil)
        Task { await events.record(regarding, type: type, reason: reason, action: action, note: note) }
    }
}
