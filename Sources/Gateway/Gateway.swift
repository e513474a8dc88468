import AgentGateAPI
import AsyncHTTPClient
import ControllerRuntime
import Foundation
import HTTPServing
import KubeClient
import KubeCore
import Logging
import Masking
import NIOCore
import NIOHTTP1
import NIOSSL
import SessionStore

/// The gateway's data path: `/c/<namespace>/<name>/<kubernetes path>` → the connection's
/// upstream API server, as the connection's ServiceAccount.
///
/// A request passes these stages, each a type with its own contract (read them in this
/// order to follow one request from the socket to the store):
/// 1. ``RequestAdmission`` — route, the agent's token, RequestInfo, `spec.access` and the
///    body checks; the request leaves as an ``ExchangeContext`` with its summary made
///    (masked and truncated once);
/// 2. ``ApprovalGate/hold(_:)`` — the approval rule that holds it, if any (and the dry run);
/// 3. ``ExchangeRecorder`` — the exchange begun in the store before anything goes upstream
///    (503 under FailClosed when the store fails);
/// 4. ``ApprovalGate/decide(_:_:)`` — held until an approver decides (403 denied or expired,
///    503 abandoned), the RecordingPolicy's alert rules counted (``AlertEvaluator``);
/// 5. ``Forwarder`` — sent upstream with the connection's token (``Upstream``), the answer
///    masked, recorded and returned; watches and followed logs event by event;
/// or, for `pods/exec`, `pods/attach` and `pods/portforward` upgrades, steps 1–4 and then
/// ``StreamRelay`` and ``StreamProxy``: a recorded, masked stream.
/// Nothing reaches upstream before step 5, except an approval's dry run. Every refusal is a
/// `metav1.Status` with the matching code, and is recorded only when the agent was
/// authenticated (anonymous noise is not a session).
///
/// The gateway owns its listeners and the stages' shared parts; its background work (the
/// ``ApprovalBroker``'s listening) runs as services of ``GatewayRunner``'s `ServiceGroup`.
public final class Gateway: @unchecked Sendable {   // `servers` behind `serversLock`
    public let registry: ConnectionRegistry
    public let store: any SessionStore
    public let verifier: OIDCVerifier
    public let metrics: GatewayMetrics
    /// The RecordingPolicy alert rules of every connection.
    public let alerts: AlertEvaluator
    /// Requests held for approval, and decisions (see ``ApprovalBroker``); a `Service`.
    public let approvals: ApprovalBroker
    /// Requests and streamed answers in flight (what ``shutdown(drain:)`` waits for).
    public let load: RequestLoad
    /// OIDC discovery and keys, and the approval and alert webhooks; never the API server.
    let http: HTTPClient
    let upstream: Upstream
    let admission: RequestAdmission
    let recorder: ExchangeRecorder
    let approvalGate: ApprovalGate
    let forwarder: Forwarder
    let relay: StreamRelay
    let logger: Logger
    private var servers: [HTTPServer] = []
    private let serversLock = NSLock()

    /// - Parameters:
    ///   - upstream: where the API server is and how to trust it (its credentials are not used:
    ///     each connection brings its own token).
    ///   - announcements: where alerts and approvals are announced besides the store.
    ///   - load: the count of requests in flight, shared with the store when it was opened
    ///     with it (``SessionStoreOptions/requestLoad``).
    public init(upstream kubeconfig: KubeConfig, registry: ConnectionRegistry, store: any SessionStore,
                announcements: GatewayAnnouncements = GatewayAnnouncements(), load: RequestLoad = RequestLoad(),
                logger: Logger = Logger(label: "agentgate.gateway")) throws {
        self.registry = registry
        self.store = store
        self.load = load
        self.logger = logger
        upstream = try Upstream(kubeconfig: kubeconfig)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: Self.outboundConfiguration(kubeconfig))
        let metrics = GatewayMetrics()
        self.metrics = metrics
        verifier = OIDCVerifier(http: http)
        recorder = ExchangeRecorder(store: store, metrics: metrics, logger: logger)
        admission = RequestAdmission(registry: registry, verifier: verifier, recorder: recorder, metrics: metrics)
        alerts = AlertEvaluator(store: store, metrics: metrics, http: http, events: announcements.events, logger: logger)
        let announcer = ApprovalAnnouncer(registry: registry, http: http, announcements: announcements, logger: logger)
        approvals = ApprovalBroker(store: store, announcer: announcer, logger: logger)
        approvalGate = ApprovalGate(store: store, broker: approvals, announcer: announcer, upstream: upstream.client,
                                    metrics: metrics, logger: logger)
        forwarder = Forwarder(upstream: upstream.client, recorder: recorder, metrics: metrics, load: load)
        relay = StreamRelay(admission: admission, approvals: approvalGate, recorder: recorder, alerts: alerts,
                            connector: upstream.connector, metrics: metrics, load: load,
                            refusals: StreamRefusals(store: store, logger: logger))
        metrics.observeRecorder { [store] in store.recorderBacklog() }
        metrics.observePendingApprovals { [approvals] in approvals.heldCount }
    }

    /// The client for OIDC discovery, keys and webhooks: the system's trust roots, plus the
    /// cluster's CA (an issuer may be the cluster itself).
    private static func outboundConfiguration(_ kubeconfig: KubeConfig) -> HTTPClient.Configuration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let ca = kubeconfig.certificateAuthorityPEM, let certificates = try? NIOSSLCertificate.fromPEMBytes(ca) {
            tls.additionalTrustRoots = [.certificates(certificates)]
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow,
                                                     timeout: .init(connect: .seconds(10), read: nil),
                                                     decompression: .enabled(limit: .none))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 1024
        // No distributed tracing is configured; without this the client still parses each
        // request's URL again for the attributes of a span nobody records.
        configuration.tracing.tracer = nil
        return configuration
    }

    /// Serves on `host:port` (HTTPS with `tls`); returns the bound port. May be called more
    /// than once (an HTTPS listener and a loopback HTTP one).
    public func start(host: String, port: Int, tls: NIOSSLContext?) async throws -> Int {
        let server = HTTPServer(maxBodyBytes: 3 * 1024 * 1024)
        serversLock.withLock { servers.append(server) }
        return try await server.start(host: host, port: port, tls: tls, webSocket: StreamUpgrades(relay: relay),
                                      byteStreams: [SPDYStreamUpgrades(relay: relay)]) { [self] request in
            await self.handle(request)
        }
    }

    /// Stops accepting connections, answers held requests (503, approval `abandoned`), lets
    /// the exchanges in flight (requests, streamed answers, exec/attach/port-forward streams)
    /// finish and be recorded for up to `drain`, then closes the listeners and whatever
    /// connections are still open, and waits briefly for the streams so cut to record their end.
    public func shutdown(drain: Duration = .zero) async {
        let servers = serversLock.withLock { self.servers }
        for server in servers { await server.stopAccepting() }
        // Released holds record their 503 and answer it: the listeners close once their
        // handlers have returned (the answer is written as a handler returns).
        let released = await approvals.shutdown()
        await load.idle(within: released > 0 ? max(drain, .seconds(5)) : drain)
        for server in servers { await server.shutdown() }
        await load.idle(within: .seconds(2))
        try? await http.shutdown()
        upstream.shutdown()
    }

    /// One request through the stages (see the type's contract).
    public func handle(_ request: HTTPRequest) async -> HTTPResponse {
        load.enter()
        defer { load.leave() }
        var context: ExchangeContext
        switch await admission.admit(request) {
        case .refused(let response): return response
        case .admitted(let admitted): context = admitted
        }
        if request.headers["upgrade"].first != nil {
            // Upgrades the stream relay accepts never get here.
            return await recorder.refuse(Status(message: "this protocol upgrade is not proxied by the gateway; pods/exec, pods/attach and pods/portforward are (WebSocket, and SPDY/3.1 for port-forward)",
                                                reason: "BadRequest", code: 400), context)
        }
        // Known before recording, so the exchange carries its approval id from the start.
        switch await approvalGate.hold(context) {
        case .free: break
        case .held(let held): context.heldBy = held
        case .refusedByDryRun(let answer):
            return await recorder.answer(code: answer.code, body: answer.body, context)
        }
        let recording: Recording
        switch await recorder.beginOrRefuse(context, unrecorded: "forwarding unrecorded", refusal: "the request was not forwarded") {
        case .began(let began): recording = began
        case .refused(let response): return response
        }
        let holding = ContinuousClock.now
        let outcome = await approvalGate.decide(context, recording)
        if context.heldBy != nil {
            let held = ContinuousClock.now - holding
            context.heldSeconds = Double(held.components.seconds) + Double(held.components.attoseconds) / 1e18
        }
        if case .refused(let status, _) = outcome {
            return await recorder.completeRefused(status, context, recording)
        }
        await alerts.observe(context, sessionID: recording.sessionID)
        return await forwarder.forward(context, recording: recording)
    }

    /// `Bearer <token>` read as the data path reads it (the admin API uses the same).
    static func bearer(_ header: String) -> String? { RequestAdmission.bearer(header) }
}

/// Where the gateway announces alerts and approvals besides the store and its metrics.
public struct GatewayAnnouncements: Sendable {
    /// Events on the AgentConnection (alerts fired, approvals requested and decided).
    public var events: EventRecorder?
    /// Asked for a prompt `status.pendingApprovals` pass when an approval is requested or final.
    public var statusReporter: SessionStatusReporter?

    public init(events: EventRecorder? = nil, statusReporter: SessionStatusReporter? = nil) {
        self.events = events
        self.statusReporter = statusReporter
    }
}
