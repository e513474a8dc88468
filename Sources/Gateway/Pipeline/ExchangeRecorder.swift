import AgentGateAPI
import Foundation
import HTTPServing
import KubeCore
import Logging
import SessionStore

/// The recording stage: every exchange an authenticated agent makes, begun before anything
/// goes upstream and completed when its answer (or its stream) ends, plus the access log.
///
/// Contract:
/// - ``begin(_:)`` resolves the session (cached for token-keyed sessions, see
///   ``SessionCache``; a pruned session is resolved again) and begins the exchange with the
///   context's ``ExchangeContext/summary`` (its body left out when the policy does not
///   capture request bodies), and the approval id when a rule holds the request.
/// - ``beginOrRefuse(_:unrecorded:refusal:)``: a store error lets the request go on
///   unrecorded only under the RecordingPolicy's `FailOpen`; otherwise it is refused (503).
/// - ``complete(_:_:code:body:bytes:truncated:state:)`` writes one access-log line, then the
///   result. Store writes are not cancelled with their caller (an agent that hung up still
///   gets its record); under FailClosed a failing store is tried again for up to
///   ``completionPatience`` before the answer goes out unrecorded.
/// - ``answer(code:body:_:)`` and ``refuse(_:_:)``: an answer the gateway gives itself (a
///   refusal after authentication, a dry run's), counted and recorded as a complete exchange
///   when the store works.
final class ExchangeRecorder: Sendable {
    let store: any SessionStore
    let metrics: GatewayMetrics
    let logger: Logger
    /// One line per exchange (see ``logAccess(_:_:code:bytes:state:)``).
    let accessLog = Logger(label: "agentgate.access")
    /// Session ids already resolved for token-keyed sessions.
    let sessions = SessionCache()

    /// How long an answer waits for its record under FailClosed (a PostgreSQL restart or
    /// failover takes seconds).
    static let completionPatience: Duration = .seconds(15)

    init(store: any SessionStore, metrics: GatewayMetrics, logger: Logger) {
        self.store = store
        self.metrics = metrics
        self.logger = logger
    }

    func begin(_ context: ExchangeContext) async throws -> Recording {
        let now = Date()
        let key = SessionKey(connection: context.ref, subject: context.agent.subject, tokenKey: context.agent.tokenKey)
        let identity = AgentIdentityInfo(groups: context.agent.groups, model: context.agent.model)
        var sessionID: SessionID
        if let cached = sessions.sessionID(for: key, at: now) {
            sessionID = cached
        } else {
            sessionID = try await store.resolveSession(key, identity: identity, at: now).id
            sessions.remember(sessionID, for: key, at: now)
        }
        let request = context.request
        var summary = context.summary
        if !(context.capture.requestBodies ?? true) { summary.body = nil }
        var start = ExchangeStart(
            sessionID: sessionID, time: now, request: summary, requestBytes: Int64(request.body.count),
            truncated: summary.body != nil && context.bodyTruncated, approvalID: context.heldBy?.id,
            kubectlCommand: request.header("Kubectl-Command"), kubectlSession: request.header("Kubectl-Session"),
            userAgent: request.header("User-Agent"))
        let exchange: ExchangeRecord
        do {
            exchange = try await store.beginExchange(start)
        } catch SessionStoreError.sessionNotFound {
            // The cached session was pruned (retention, maybe on another replica): resolve again.
            sessions.forget(key)
            sessionID = try await store.resolveSession(key, identity: identity, at: now).id
            sessions.remember(sessionID, for: key, at: now)
            start.sessionID = sessionID
            exchange = try await store.beginExchange(start)
        }
        return Recording(exchangeID: exchange.id, sessionID: sessionID)
    }

    enum Start {
        case began(Recording)
        case refused(HTTPResponse)
    }

    /// The exchange begun before anything goes upstream. When the store fails, the request
    /// goes on unrecorded only under the RecordingPolicy's `FailOpen`; otherwise it is refused
    /// with 503 (`refusal` says what did not happen).
    func beginOrRefuse(_ context: ExchangeContext, unrecorded: String, refusal: String) async -> Start {
        do {
            return .began(try await begin(context))
        } catch {
            metrics.recorderErrors.add(1)
            if !context.failClosed {
                logger.warning("recording failed, \(unrecorded) (FailOpen) on \(context.ref): \(error)")
                return .began(Recording(exchangeID: nil, sessionID: nil))
            }
            logger.error("recording failed on \(context.ref); refusing (FailClosed): \(error)")
            metrics.count(connection: context.ref, verb: context.info.verb, code: 503)
            return .refused(.status(.serviceUnavailable("the session recorder is unavailable, so \(refusal) (RecordingPolicy failureMode FailClosed)")))
        }
    }

    /// A refusal after authentication: recorded as a complete exchange when the store works.
    func refuse(_ status: Status, _ context: ExchangeContext) async -> HTTPResponse {
        await answer(code: status.code ?? 500, body: status.serializedJSON(), context)
    }

    /// An answer the gateway gives without forwarding (a refusal, a dry run's), recorded as a
    /// complete exchange when the store works.
    func answer(code: Int, body: [UInt8], _ context: ExchangeContext) async -> HTTPResponse {
        metrics.count(connection: context.ref, verb: context.info.verb, code: code)
        if let recording = try? await begin(context) {
            await complete(context, recording, code: code, body: body, bytes: nil, truncated: false, state: .complete)
        }
        return .json(code, body)
    }

    /// A refusal of an exchange already begun (an approval denied, expired or abandoned):
    /// completed with its Status, counted, and answered.
    func completeRefused(_ status: Status, _ context: ExchangeContext, _ recording: Recording) async -> HTTPResponse {
        let code = status.code ?? 403
        let body = status.serializedJSON()
        await complete(context, recording, code: code, body: body, bytes: nil, truncated: false, state: .complete)
        metrics.count(connection: context.ref, verb: context.info.verb, code: code)
        return .json(code, body)
    }

    /// One chunk of a streamed answer (a watch event, a log chunk), appended to its exchange.
    func append(_ recording: Recording, channel: String, data: [UInt8]) async throws {
        guard let id = recording.exchangeID else { return }
        try await store.appendStreamChunk(id, at: Date(), channel: channel, data: data)
        metrics.bytesRecorded.add(Int64(data.count))
    }

    func complete(_ context: ExchangeContext, _ recording: Recording, code: Int, body: [UInt8]?, bytes: Int64?,
                  truncated: Bool, state: ExchangeState) async {
        logAccess(context, recording, code: code, bytes: bytes ?? Int64(body?.count ?? 0), state: state)
        guard let id = recording.exchangeID else { return }
        let result = ExchangeResult(statusCode: code, completedAt: Date(), latencyMs: context.elapsedMs, responseBody: body,
                                    responseBytes: bytes ?? Int64(body?.count ?? 0), truncated: truncated, state: state)
        // The agent going away cancels the request's task, but a request that was forwarded must
        // still get its record: store writes are not cancelled with their caller (SQLDriver.write).
        // Under FailClosed the answer waits for its record: a database that is restarting is
        // tried again for up to ``completionPatience`` before the answer goes out unrecorded.
        let deadline = ContinuousClock.now + Self.completionPatience
        var pause = Duration.milliseconds(100)
        while true {
            do {
                try await store.completeExchange(id, result: result)
                metrics.bytesRecorded.add(Int64(body?.count ?? 0))
                return
            } catch {
                let closed = (error as? SessionStoreError) == .closed
                if context.failClosed, !closed, ContinuousClock.now < deadline {
                    logger.warning("recording the answer to exchange \(id) failed, trying again in \(pause) (FailClosed): \(error)")
                    try? await Task.sleep(for: pause)
                    pause = min(pause * 2, .seconds(1))
                    continue
                }
                metrics.recorderErrors.add(1)
                logger.error("completing exchange \(id) failed: \(error)")
                return
            }
        }
    }

    /// The access log: one line per exchange an authenticated agent made, as it completes
    /// (label `agentgate.access`, level info, fields as metadata so `--log-format json` gives
    /// one object per exchange). Never a body or a header value.
    func logAccess(_ context: ExchangeContext, _ recording: Recording, code: Int, bytes: Int64, state: ExchangeState) {
        let info = context.info
        accessLog.info("exchange", metadata: [
            "connection": "\(context.ref)", "session": "\(recording.sessionID ?? "-")", "subject": "\(context.agent.subject)",
            "verb": "\(info.verb)", "resource": "\(info.subresource.isEmpty ? info.resource : "\(info.resource)/\(info.subresource)")",
            "namespace": "\(info.namespace)", "name": "\(info.name)", "code": "\(code)", "bytes": "\(bytes)",
            "latency_ms": "\(String(format: "%.1f", context.elapsedMs))", "state": "\(state.rawValue)",
            "approval": "\(context.heldBy?.id ?? "-")",
        ])
    }
}

extension HTTPResponse {
    /// A `metav1.Status` answer with its code.
    static func status(_ status: Status) -> HTTPResponse {
        .json(status.code ?? 500, status.serializedJSON())
    }
}
