import AgentGateAPI
import AsyncHTTPClient
import ControllerRuntime
import Foundation
import KubeCore
import Logging
import NIOCore
import Prometheus
import SessionStore

/// RecordingPolicy alert rules, evaluated on every request the gateway forwards (exec and
/// port-forward upgrades included).
///
/// Contract (AgentGateAPI ``AlertRule``):
/// - A rule counts the matching requests of one session (connection + session id; the
///   subject when the request was not recorded) in a sliding `window`. It fires when the
///   count reaches `threshold` — the request that makes it `threshold` fires, none before —
///   and then stays quiet until the count has fallen below the threshold again, so a burst
///   raises one alert, not one per request.
/// - The windows live in the session store (``SessionStore/countAlertHit(_:at:window:threshold:)``),
///   shared by every gateway replica on it: five execs spread over three replicas fire a
///   threshold-five rule once. A request is counted before it is forwarded; a store that
///   cannot count it is logged and the request goes on (alerts never refuse a request).
/// - Firing: a Warning Event (reason `AlertFired`) on the AgentConnection (when an
///   ``EventRecorder`` was given), `agentgate_gateway_alerts_total{connection,rule}` incremented
///   on the replica that counted the firing hit, and, when the policy names `alertWebhook`, a
///   JSON POST with the rule, connection, subject, session id and count. Event and webhook
///   are sent off the request path; a failing webhook is tried again (``WebhookSender``),
///   logged, and never delays or fails the request.
public final class AlertEvaluator: @unchecked Sendable {
    /// One alert, as the webhook receives it.
    public struct Firing: Sendable, Hashable, Codable {
        public var rule: String
        public var connection: String
        public var subject: String
        public var sessionID: String?
        public var count: Int
        public var threshold: Int
        public var window: String
        public var verb: String
        public var resource: String
        public var namespace: String
        public var name: String
        public var time: String
    }

    private let lock = NSLock()
    private let store: any SessionStore
    private let metrics: GatewayMetrics
    private let webhooks: WebhookSender
    private let logger: Logger
    /// Where Warning Events go (the gateway's Kubernetes client); without one, alerts are
    /// metrics and webhooks only.
    private let events: EventRecorder?

    init(store: any SessionStore, metrics: GatewayMetrics, http: HTTPClient, events: EventRecorder?, logger: Logger) {
        self.store = store
        self.metrics = metrics
        self.webhooks = WebhookSender(http: http, logger: logger)
        self.events = events
        self.logger = logger
    }

    /// Counts one forwarded request against the connection's rules; fires what it completes.
    func observe(_ context: ExchangeContext, sessionID: SessionID?, at now: Date = Date()) async {
        let policy = context.connection.config.recording
        guard let rules = policy.alerts, !rules.isEmpty else { return }
        let info = context.info
        for rule in rules where RequestMatcher.matches(verbs: rule.verbs, apiGroups: rule.apiGroups, resources: rule.resources,
                                                       subresources: rule.subresources, namespaces: rule.namespaces, info) {
            let session = sessionID ?? "subject:\(context.agent.subject)"
            let key = "\(context.ref.namespace)/\(context.ref.name)|\(session)|\(rule.name)"
            let counted: AlertWindowCount
            do {
                counted = try await store.countAlertHit(key, at: now, window: rule.windowSeconds ?? 60, threshold: Int(rule.threshold))
            } catch {
                logger.warning("alert rule \(rule.name) on \(context.ref): the request was not counted: \(error)")
                continue
            }
            guard counted.fires else { continue }
            let firing = Firing(rule: rule.name, connection: "\(context.ref)", subject: context.agent.subject, sessionID: sessionID,
                                count: counted.count, threshold: Int(rule.threshold), window: rule.window ?? AlertRule.defaultWindow,
                                verb: info.verb, resource: info.subresource.isEmpty ? info.resource : "\(info.resource)/\(info.subresource)",
                                namespace: info.namespace, name: info.name, time: KubeTime.format(now))
            notify(firing, connection: context.connection.config, webhook: policy.alertWebhook, recorder: events)
        }
    }

    private func notify(_ firing: Firing, connection: GatewayConnectionConfig, webhook: AlertWebhook?, recorder: EventRecorder?) {
        metrics.alertFired(connection: firing.connection, rule: firing.rule)
        logger.warning("alert \(firing.rule) fired on \(firing.connection): \(firing.count) matching requests of \(firing.subject) within \(firing.window) (session \(firing.sessionID ?? "-"))")
        if let webhook {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            if let body = try? encoder.encode(firing) {
                webhooks.send(Array(body), to: webhook.url, what: "alert \(firing.rule)")
            }
        }
        guard let recorder else { return }
        let regarding = EventRecorder.Regarding(apiVersion: AgentGateGroup.apiVersion, kind: "AgentConnection",
                                                namespace: connection.namespace, name: connection.name, uid: connection.uid)
        let resource = firing.namespace.isEmpty ? firing.resource : "\(firing.resource) in \(firing.namespace)"
        let note = "alert \(firing.rule): \(firing.count) \(firing.verb) \(resource) by \(firing.subject) within \(firing.window) (threshold \(firing.threshold)); session \(firing.sessionID ?? "unrecorded")"
        Task { await recorder.record(regarding, type: .warning, reason: "AlertFired", action: "Alert", note: note) }
    }
}
