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
/// Contract, per request, in this order (nothing reaches upstream before step 7, except an
/// approval's dry run):
/// 1. route and path check (400 for path tricks, 404 for an unknown connection);
/// 2. the agent's bearer token verified (401) and checked against the connection (403);
/// 3. RequestInfo derived from the decoded path exactly as kube-apiserver does; a connect
///    subresource on a method the API server does not route for it is refused (405);
/// 4. `spec.access` (403 naming the rule; writes to `agentgate.io` need an Allow rule naming
///    that group); then the body: CBOR is refused (415), patches that could reveal a masked
///    value are refused (403, ``MaskedPatchGuard``), and the approval rules are matched (a
///    rule decided on the resulting object dry-runs the request first, see ``ApprovalMatcher``);
/// 5. session resolved and the exchange recorded (`beginExchange`, with the approval id when
///    a `spec.approval` rule holds the request); a store error answers 503 unless the
///    connection's RecordingPolicy says `FailOpen`;
/// 6. held for approval when a rule matches (``awaitApproval(_:_:)``): denied or expired
///    answer 403, a gateway shutdown 503, and nothing is forwarded;
/// 7. headers rewritten (``UpstreamHeaders``) and forwarded; the answer is decoded, masked,
///    recorded and returned — watches and `logs?follow` event by event (see
///    `Gateway+Forward.swift`).
/// `pods/exec`, `pods/attach` and `pods/portforward` upgrades take the same steps 1–6 and
/// then become recorded streams (see `Streams/Gateway+Streams.swift`). Every admitted request
/// is counted against the RecordingPolicy's alert rules (``AlertEvaluator``).
/// Every refusal is a `metav1.Status` with the matching code, and is recorded only when the
/// agent was authenticated (anonymous noise is not a session).
public final class Gateway: @unchecked Sendable {
    public let registry: ConnectionRegistry
    public let store: any SessionStore
    public let verifier: OIDCVerifier
    public let metrics = GatewayMetrics()
    /// OIDC discovery and keys, and the approval and alert webhooks; never the API server.
    let http: HTTPClient
    /// The upstream leg of upgraded requests (AsyncHTTPClient cannot switch protocols).
    let upstreamConnector: UpstreamConnector
    /// The upstream leg of every other forwarded request, and of an approval's dry run.
    let upstreamClient: UpstreamClient
    /// The RecordingPolicy alert rules of every connection.
    public let alerts: AlertEvaluator
    /// Requests held for approval, and decisions (see ``ApprovalBroker``).
    public let approvals: ApprovalBroker
    let announcer: ApprovalAnnouncer
    let logger: Logger
    /// One line per exchange (see ``logAccess(_:_:code:bytes:state:)``).
    let accessLog = Logger(label: "agentgate.access")
    let resolver = RequestInfoResolver()
    /// Session ids already resolved for token-keyed sessions (see ``SessionCache``).
    let sessions = SessionCache()
    /// Refused WebSocket exec/attach upgrades, repeated to kubectl's SPDY fallback.
    let streamRefusals: StreamRefusals
    private var servers: [HTTPServer] = []
    private let serversLock = NSLock()
    /// Exchanges in flight: requests being handled, and streamed answers until recorded
    /// (what ``shutdown(drain:)`` waits for).
    let inFlight = InFlightCounter()
    /// Largest non-streamed upstream body read into memory.
    public var maxResponseBytes = 256 * 1024 * 1024

    /// - Parameters:
    ///   - upstream: where the API server is and how to trust it (its credentials are not used:
    ///     each connection brings its own token).
    public init(upstream: KubeConfig, registry: ConnectionRegistry, store: any SessionStore,
                logger: Logger = Logger(label: "agentgate.gateway")) throws {
        self.registry = registry
        self.store = store
        self.logger = logger
        var base = upstream.server
        while base.hasSuffix("/") { base.removeLast() }
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            if let ca = upstream.certificateAuthorityPEM {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca))
            }
            if let cert = upstream.clientCertificatePEM, let key = upstream.clientKeyPEM {
                // A client certificate would authenticate every request as the gateway itself,
                // on top of the injected token; refuse rather than mix identities.
                _ = (cert, key)
                throw GatewayConfigError("\(upstream.origin): the gateway's kubeconfig uses a client certificate; the gateway must reach the API server with connection tokens only (use a kubeconfig without client-certificate-data)")
            }
        } catch let error as GatewayConfigError {
            throw error
        } catch {
            throw GatewayConfigError("\(upstream.origin): certificate-authority data cannot be loaded: \(error)")
        }
        if upstream.insecureSkipTLSVerify { tls.certificateVerification = .none }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow,
                                                     timeout: .init(connect: .seconds(10), read: nil),
                                                     decompression: .enabled(limit: .none))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 1024
        // No distributed tracing is configured; without this the client still parses each
        // request's URL again for the attributes of a span nobody records (~4% of a small GET).
        configuration.tracing.tracer = nil
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        verifier = OIDCVerifier(http: http)
        do {
            upstreamConnector = try UpstreamConnector(server: base, tls: tls)
            upstreamClient = UpstreamClient(upstream: upstreamConnector)
        } catch {
            throw GatewayConfigError("\(upstream.origin): \(error)")
        }
        streamRefusals = StreamRefusals(store: store, logger: logger)
        alerts = AlertEvaluator(store: store, metrics: metrics, http: http, logger: logger)
        metrics.observeRecorder { [store] in store.recorderBacklog() }
        approvals = ApprovalBroker(store: store, logger: logger)
        metrics.observePendingApprovals { [approvals] in approvals.heldCount }
        let announcer = ApprovalAnnouncer(registry: registry, http: http, logger: logger)
        self.announcer = announcer
        approvals.onFinal = { await announcer.finished($0) }
        approvals.start()
    }

    /// Where approvals are announced besides the store: Events on the AgentConnection and a
    /// prompt `status.pendingApprovals` (the gateway runner wires its cluster client here).
    public func configureAnnouncements(events: EventRecorder?, statusReporter: SessionStatusReporter?) {
        announcer.configure(events: events, reporter: statusReporter)
    }

    /// Serves on `host:port` (HTTPS with `tls`); returns the bound port. May be called more
    /// than once (an HTTPS listener and a loopback HTTP one).
    public func start(host: String, port: Int, tls: NIOSSLContext?) async throws -> Int {
        let server = HTTPServer(maxBodyBytes: 3 * 1024 * 1024)
        serversLock.withLock { servers.append(server) }
        return try await server.start(host: host, port: port, tls: tls, webSocket: StreamUpgrades(gateway: self),
                                      byteStreams: [SPDYStreamUpgrades(gateway: self)]) { [self] request in
            await self.handle(request)
        }
    }

    /// Stops accepting connections, answers held requests (503, approval `abandoned`), lets
    /// the exchanges in flight finish and be recorded (for up to `drain`), then closes the
    /// listeners and whatever connections are still open.
    public func shutdown(drain: Duration = .zero) async {
        let servers = serversLock.withLock { self.servers }
        for server in servers { await server.stopAccepting() }
        // Released holds record their 503 and answer it: the listeners close once their
        // handlers have returned (the answer is written as a handler returns).
        let released = await approvals.shutdown()
        await inFlight.idle(within: released > 0 ? max(drain, .seconds(5)) : drain)
        for server in servers { await server.shutdown() }
        try? await http.shutdown()
        upstreamClient.shutdown()
    }

    // MARK: - Pipeline

    public func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let concurrent = inFlight.enter()
        defer { inFlight.leave() }
        // The only request in flight: its record is written without a thread hop (see StoreWriteHints).
        return await StoreWriteHints.$alone.withValue(concurrent == 1) { await pipeline(request) }
    }

    private func pipeline(_ request: HTTPRequest) async -> HTTPResponse {
        var context: ExchangeContext
        switch await admit(request) {
        case .refused(let response): return response
        case .admitted(let admitted): context = admitted
        }
        let ref = context.ref
        let info = context.info
        if request.headers["upgrade"].first != nil {
            // Upgrades the stream services accept never get here (see `Gateway+Streams.swift`).
            return await refuseRecorded(Status(message: "this protocol upgrade is not proxied by the gateway; pods/exec, pods/attach and pods/portforward are (WebSocket, and SPDY/3.1 for port-forward)",
                                               reason: "BadRequest", code: 400), context)
        }
        let bodyType = RequestMediaType(request.header("Content-Type"))
        if !request.body.isEmpty, bodyType.isCBOR {
            return await refuseRecorded(Status(message: "the body of the request was in \(bodyType.essence), which the gateway does not decode, mask or record; send application/json or application/yaml",
                                               reason: "UnsupportedMediaType", code: 415), context)
        }
        if let refusal = MaskedPatchGuard.refusal(method: request.method, type: bodyType, body: request.body, query: context.query,
                                                  masker: context.connection.masker, kindHint: context.kindHint,
                                                  resource: context.maskedResource) {
            return await refuseRecorded(.forbidden(refusal), context)
        }
        // Known before recording, so the exchange carries its approval id from the start (an
        // exec/attach upgrade does the same in `admitStream`).
        switch await approvalHold(context) {
        case .free: break
        case .held(let held): context.heldBy = held
        case .refusedByDryRun(let answer):
            return await answerRecorded(code: answer.code, body: answer.body, context)
        }
        let recording: Recording
        switch await beginRecordingOrRefuse(context, unrecorded: "forwarding unrecorded", refusal: "the request was not forwarded") {
        case .began(let began): recording = began
        case .refused(let response): return response
        }
        let holding = DispatchTime.now()
        let outcome = await awaitApproval(context, recording)
        if context.heldBy != nil { context.heldSeconds = Double(DispatchTime.now().uptimeNanoseconds - holding.uptimeNanoseconds) / 1_000_000_000 }
        if case .refused(let status, _) = outcome {
            let body = status.serializedJSON()
            await complete(context, recording, code: status.code ?? 403, body: body, bytes: nil, truncated: false, state: .complete)
            metrics.count(connection: ref, verb: info.verb, code: status.code ?? 403)
            return .json(status.code ?? 403, body)
        }
        await alerts.observe(context, sessionID: recording.sessionID)
        return await forward(context, recording: recording)
    }

    enum RecordingStart {
        case began(Recording)
        case refused(HTTPResponse)
    }

    /// Step 5: the exchange begun before anything goes upstream. When the store fails, the
    /// request goes on unrecorded only under the RecordingPolicy's `FailOpen`; otherwise it is
    /// refused with 503 (`refusal` says what did not happen).
    func beginRecordingOrRefuse(_ context: ExchangeContext, unrecorded: String, refusal: String) async -> RecordingStart {
        do {
            return .began(try await beginRecording(context))
        } catch {
            metrics.recorderErrors.add(1)
            if context.connection.config.recording.failureMode == .failOpen {
                logger.warning("recording failed, \(unrecorded) (FailOpen) on \(context.ref): \(error)")
                return .began(Recording(exchangeID: nil, sessionID: nil))
            }
            logger.error("recording failed on \(context.ref); refusing (FailClosed): \(error)")
            metrics.count(connection: context.ref, verb: context.info.verb, code: 503)
            return .refused(refuse(.serviceUnavailable("the session recorder is unavailable, so \(refusal) (RecordingPolicy failureMode FailClosed)")))
        }
    }

    /// The outcome of steps 1–4 of the pipeline.
    enum Admission {
        case admitted(ExchangeContext)
        case refused(HTTPResponse)
    }

    /// Route, authentication, RequestInfo and `spec.access`: everything decided before a
    /// request (or an upgrade) is recorded and forwarded.
    func admit(_ request: HTTPRequest) async -> Admission {
        let started = DispatchTime.now()
        let route: GatewayRoute
        switch GatewayRoute.parse(request.uri) {
        case .success(let parsed): route = parsed
        case .failure(.invalidPath(let message)): return .refused(refuse(.badRequest(message)))
        case .failure(.notAConnectionPath):
            return .refused(refuse(Status(message: "the server could not find the requested resource; agent endpoints are /c/<namespace>/<connection>",
                                          reason: "NotFound", code: 404)))
        }
        guard let connection = registry.connection(namespace: route.namespace, name: route.name) else {
            return .refused(refuse(Status(message: "agentconnection \"\(route.namespace)/\(route.name)\" is not served by this gateway",
                                          reason: "NotFound", details: StatusDetails(name: route.name, group: "agentgate.io", kind: "agentconnections"),
                                          code: 404)))
        }
        let ref = ConnectionRef(namespace: route.namespace, name: route.name)
        let authorizations = request.headers["authorization"]
        guard authorizations.count == 1, let bearer = Self.bearer(authorizations[0]) else {
            metrics.count(connection: ref, verb: "", code: 401)
            return .refused(refuse(.unauthorized(authorizations.count > 1 ? "more than one Authorization header" : "a bearer token is required")))
        }
        let agent: VerifiedAgent
        do {
            agent = try await verifier.verify(bearer, identity: connection.config.identity)
            try OIDCVerifier.authorize(agent, identity: connection.config.identity)
        } catch let error as AgentForbidden {
            metrics.count(connection: ref, verb: "", code: 403)
            return .refused(refuse(.forbidden(error.message)))
        } catch {
            metrics.count(connection: ref, verb: "", code: 401)
            return .refused(refuse(.unauthorized("Unauthorized: \(error)")))
        }
        let query = RequestInfoResolver.parseQuery(route.rawQuery ?? "")
        let info: RequestInfo
        do {
            info = try resolver.resolveStrictly(method: request.method, path: route.decodedPath, query: query)
        } catch {
            return .refused(refuse(.badRequest("\(error)")))
        }
        let context = ExchangeContext(request: request, route: route, connection: connection, ref: ref,
                                      agent: agent, info: info, query: query, started: started)
        // A connect subresource on a method the API server does not route for it (RequestInfo.connectMethods).
        if let allowed = info.connectMethods, !allowed.contains(request.method) {
            return .refused(await refuseRecorded(.methodNotAllowed("\(request.method) is not allowed on \(info.resource)/\(info.subresource); the API server routes only \(allowed.sorted().joined(separator: ", "))"), context))
        }
        if case .denied(let message) = AccessCheck.evaluate(connection.config.access, info) {
            return .refused(await refuseRecorded(.forbidden(message), context))
        }
        if request.bodyTooLarge {
            return .refused(await refuseRecorded(.requestEntityTooLarge(), context))
        }
        return .admitted(context)
    }

    static func bearer(_ header: String) -> String? {
        // The usual header, `Bearer <token>` with a token of visible ASCII (a JWT always is),
        // read byte-wise: splitting and trimming Characters of a kilobyte token was ~1% of a
        // small request's CPU. Anything else takes the general reading below.
        let bytes = header.utf8
        if bytes.count > 7, bytes.prefix(6).elementsEqual("bearer".utf8, by: { $0 | 0x20 == $1 }),
           bytes.dropFirst(6).first == UInt8(ascii: " "), bytes.dropFirst(7).allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            return String(Substring(bytes.dropFirst(7)))
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        // Foundation's trimming is a measurable share of a small request: only when needed.
        let raw = parts[1]
        let token = raw.first?.isWhitespace == true || raw.last?.isWhitespace == true
            ? raw.trimmingCharacters(in: .whitespaces) : String(raw)
        return token.isEmpty ? nil : token
    }

    func refuse(_ status: Status) -> HTTPResponse {
        .json(status.code ?? 500, status.serializedJSON())
    }

    /// A refusal after authentication: recorded as a complete exchange when the store works.
    func refuseRecorded(_ status: Status, _ context: ExchangeContext) async -> HTTPResponse {
        await answerRecorded(code: status.code ?? 500, body: status.serializedJSON(), context)
    }

    /// An answer the gateway gives without forwarding (a refusal, a dry run's), recorded as a
    /// complete exchange when the store works.
    func answerRecorded(code: Int, body: [UInt8], _ context: ExchangeContext) async -> HTTPResponse {
        metrics.count(connection: context.ref, verb: context.info.verb, code: code)
        if let recording = try? await beginRecording(context) {
            await complete(context, recording, code: code, body: body, bytes: nil, truncated: false, state: .complete)
        }
        return .json(code, body)
    }
}

/// Everything known about one request before it is forwarded.
struct ExchangeContext: Sendable {
    var request: HTTPRequest
    var route: GatewayRoute
    var connection: GatewayConnection
    var ref: ConnectionRef
    var agent: VerifiedAgent
    var info: RequestInfo
    var query: [String: [String]]
    var started: DispatchTime
    /// The approval rule holding this request, if any.
    var heldBy: HeldBy?
    /// How long the request was held for its approval (not the gateway's added latency).
    var heldSeconds: Double = 0

    var elapsedMs: Double { Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1_000_000 }

    /// The kind the request addresses, for masking objects that do not state theirs.
    var kindHint: String? {
        switch (info.apiGroup, info.resource) {
        case ("", "secrets"): return "Secret"
        case ("", "serviceaccounts"): return "ServiceAccount"
        case ("", "pods"): return "Pod"
        case ("", "configmaps"): return "ConfigMap"
        default: return nil
        }
    }

    /// The addressed resource, for the masking policy's field rules.
    var maskedResource: MaskedResource? {
        info.isResourceRequest ? MaskedResource(group: info.apiGroup, resource: info.resource) : nil
    }

    var capture: CaptureSettings { connection.config.recording.capture ?? CaptureSettings() }
    var maxBodyBytes: Int { Int(capture.maxBodyBytes ?? CaptureSettings.defaultMaxBodyBytes) }
}

struct Recording: Sendable {
    var exchangeID: ExchangeID?
    var sessionID: SessionID?
}

/// A count of requests in flight.
final class InFlightCounter: @unchecked Sendable {   // `count` and `idleWaiters` behind `lock`
    private let lock = NSLock()
    private var count = 0
    private var idleWaiters: [StopSignal] = []

    /// Counts one more request; returns how many are in flight with it.
    func enter() -> Int {
        lock.withLock {
            count += 1
            return count
        }
    }

    func leave() {
        let woken = lock.withLock { () -> [StopSignal] in
            count -= 1
            guard count == 0 else { return [] }
            defer { idleWaiters.removeAll() }
            return idleWaiters
        }
        for waiter in woken { waiter.stop() }
    }

    /// Returns once no request is in flight, or after `limit`.
    func idle(within limit: Duration) async {
        let signal = StopSignal()
        let busy = lock.withLock { () -> Bool in
            if count > 0 { idleWaiters.append(signal) }
            return count > 0
        }
        if busy { await signal.sleep(limit) }
    }
}
