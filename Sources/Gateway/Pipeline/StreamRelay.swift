import Crypto
import Foundation
import HTTPServing
import KubeCore
import Logging
import NIOHTTP1
import SessionStore

/// `pods/exec`, `pods/attach` and `pods/portforward` through the gateway.
///
/// The stream relay stage: `pods/exec`, `pods/attach` and `pods/portforward` upgrades.
///
/// Contract, per upgrade request (nothing reaches upstream before step 5):
/// 1. admission (``RequestAdmission``: route, OIDC, RequestInfo, `spec.access`), with the
///    same refusals;
/// 2. only the stream subresources of pods upgrade, and only with protocols the gateway
///    can read: exec/attach over WebSocket (`v5`/`v4.channel.k8s.io`, older binary channel
///    versions) or `Upgrade: SPDY/3.1` (`v4`/`v3`/`v2.channel.k8s.io` in
///    `X-Stream-Protocol-Version`: kubectl before 1.30, or its fallback; the gateway decodes
///    both SPDY legs, see ``SPDYChannels``), port-forward over WebSocket
///    (`SPDY/3.1+portforward.k8s.io`, `v2.portforward.k8s.io`) or `Upgrade: SPDY/3.1`;
/// 3. the exchange is begun (FailClosed: 503 when the store is down);
/// 4. the approval hold (see the marked call site);
/// 5. upstream is asked for the same upgrade, with the connection's token; a refusal there
///    (403, 404, ...) reaches the agent as is (masked) and completes the exchange;
/// 6. on `101` the agent gets `101` with the subprotocol upstream chose, and a
///    ``StreamProxy`` relays and records until either side ends. The stream counts as in
///    flight (``RequestLoad``) until its exchange is completed, so a graceful shutdown waits
///    for it and its record.
final class StreamRelay: Sendable {
    let admission: RequestAdmission
    let approvals: ApprovalGate
    let recorder: ExchangeRecorder
    let alerts: AlertEvaluator
    let connector: UpstreamConnector
    let metrics: GatewayMetrics
    let load: RequestLoad
    /// Refused WebSocket exec/attach upgrades, repeated to kubectl's SPDY fallback.
    let refusals: StreamRefusals

    init(admission: RequestAdmission, approvals: ApprovalGate, recorder: ExchangeRecorder, alerts: AlertEvaluator,
         connector: UpstreamConnector, metrics: GatewayMetrics, load: RequestLoad, refusals: StreamRefusals) {
        self.admission = admission
        self.approvals = approvals
        self.recorder = recorder
        self.alerts = alerts
        self.connector = connector
        self.metrics = metrics
        self.load = load
        self.refusals = refusals
    }

    static let channelProtocols: Set<String> = [
        "v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io",
    ]
    /// The exec/attach protocols of the SPDY upgrade the gateway can relay decoded: those that
    /// name each stream by its `streamType` header (v1's error stream semantics differ).
    static let spdyChannelProtocols: Set<String> = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io"]
    static let portForwardWebSocketProtocols: Set<String> = [
        "SPDY/3.1+portforward.k8s.io", "v2.portforward.k8s.io", "portforward.k8s.io",
    ]

    enum StreamAdmission {
        case accept(headers: [(String, String)], session: AgentStreamEnd)
        case refuse(HTTPResponse)
    }

    func admit(_ request: HTTPRequest, transport: UpstreamConnector.Transport) async -> StreamAdmission {
        // In flight from the first byte: a drain waits for the decision, then for the stream.
        load.enter()
        defer { load.leave() }
        var context: ExchangeContext
        switch await admission.admit(request) {
        case .refused(let response): return .refuse(response)
        case .admitted(let admitted): context = admitted
        }
        let info = context.info
        guard info.isResourceRequest, info.apiGroup.isEmpty, info.resource == "pods",
              ["exec", "attach", "portforward"].contains(info.subresource) else {
            return .refuse(await recorder.refuse(Status(message: "protocol upgrades are proxied for pods/exec, pods/attach and pods/portforward only",
                                                       reason: "BadRequest", code: 400), context))
        }
        let portForward = info.subresource == "portforward"
        var kind: StreamProxy.Kind = portForward ? .portForward(nil) : .channels
        var protocolHeaders: [(String, String)] = []
        switch transport {
        case .webSocket:
            let readable = portForward ? Self.portForwardWebSocketProtocols : Self.channelProtocols
            let offered = request.headers["Sec-WebSocket-Protocol"].flatMap { $0.split(separator: ",") }
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { readable.contains($0) }
            guard !offered.isEmpty else {
                return .refuse(await recorder.refuse(Status(message: "pods/\(info.subresource) through the gateway needs one of the WebSocket subprotocols \(readable.sorted().joined(separator: ", "))",
                                                           reason: "BadRequest", code: 400), context))
            }
            protocolHeaders.append(("Sec-WebSocket-Protocol", offered.joined(separator: ", ")))
        case .spdy:
            var offered = request.headers["X-Stream-Protocol-Version"]
            if !portForward {
                offered = offered.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
                    .filter { Self.spdyChannelProtocols.contains($0) }
                guard !offered.isEmpty, let channels = try? SPDYChannels() else {
                    return .refuse(await recorder.refuse(Status(message: "pods/\(info.subresource) over SPDY through the gateway needs one of the stream protocols \(Self.spdyChannelProtocols.sorted().joined(separator: ", ")) in X-Stream-Protocol-Version",
                                                               reason: "BadRequest", code: 400), context))
                }
                kind = .spdyChannels(channels)
            }
            for value in offered { protocolHeaders.append(("X-Stream-Protocol-Version", value)) }
        }

        // Connect subresources have no dry run, so a rule holds them or not.
        if case .held(let held) = await approvals.hold(context) { context.heldBy = held }
        let recording: Recording
        switch await recorder.beginOrRefuse(context, unrecorded: "streaming unrecorded", refusal: "the stream was not opened") {
        case .began(let began): recording = began
        case .refused(let response): return .refuse(response)
        }
        await alerts.observe(context, sessionID: recording.sessionID)
        // The agent's WebSocket handshake headers are its own leg's; NIO writes the upstream ones.
        var headers = UpstreamHeaders.request(from: request.headers, token: context.connection.token, sessionID: recording.sessionID)
        for name in ["Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol",
                     "Accept-Encoding", "X-Stream-Protocol-Version"] {
            headers.remove(name: name)
        }
        headers.add(contentsOf: protocolHeaders)

        // The upgrade is admitted, recorded and not yet connected upstream: an approval rule
        // matching pods/exec (attach, portforward) holds it here; a denial or timeout completes
        // the exchange with its Status and answers it instead of switching protocols.
        if case .refused(let status, _) = await approvals.decide(context, recording) {
            return .refuse(await recorder.completeRefused(status, context, recording))
        }
        // The agent hung up while the upgrade was decided (its connection's close cancels this
        // task): no stream is opened upstream for nobody, approved or not.
        if Task.isCancelled {
            let status = Status.serviceUnavailable("the agent disconnected before the stream was opened; nothing was run")
            await recorder.complete(context, recording, code: 503, body: status.serializedJSON(), bytes: nil, truncated: false, state: .incomplete)
            return .refuse(.status(status))
        }

        let (events, eventsIn) = AsyncStream<StreamEvent>.makeStream()
        let outcome: UpstreamConnector.Outcome
        do {
            outcome = try await connector.connect(method: request.method, target: context.route.upstreamTarget,
                                                          headers: headers, transport: transport, inbound: eventsIn)
        } catch {
            let status = Status(message: "the upstream API server cannot be reached: \(context.connection.masker.maskErrorMessage("\(error)"))",
                                reason: "ServiceUnavailable", code: 502)
            await recorder.complete(context, recording, code: 502, body: status.serializedJSON(), bytes: nil, truncated: false, state: .complete)
            metrics.count(connection: context.ref, verb: info.verb, code: 502)
            return .refuse(.status(status))
        }
        switch outcome {
        case .refused(let code, let upstreamHeaders, let body):
            let masked = context.connection.masker.maskBody(body, contentType: upstreamHeaders.first(name: "Content-Type"))
            await recorder.complete(context, recording, code: code, body: masked, bytes: nil, truncated: false, state: .complete)
            metrics.count(connection: context.ref, verb: info.verb, code: code)
            return .refuse(HTTPResponse(status: code, headers: UpstreamHeaders.response(from: upstreamHeaders), body: .bytes(masked)))
        case .upgraded(let upstream, let upstreamHeaders):
            metrics.forwardedRequests.add(1)
            metrics.count(connection: context.ref, verb: info.verb, code: 101)
            if portForward, transport == .spdy || upstreamHeaders.first(name: "Sec-WebSocket-Protocol") == "SPDY/3.1+portforward.k8s.io" {
                kind = .portForward(try? PortForwardFrames())
            }
            let agent = AgentStreamEnd(eventsIn: eventsIn)
            agent.backPressure = { upstream.setReading($0) }
            let capture = context.capture
            let streamRecorder = StreamRecorder(store: recorder.store, exchangeID: recording.exchangeID,
                                                captureFrames: capture.execStreams ?? true, failClosed: context.failClosed,
                                                metrics: metrics, started: context.started)
            let proxy = StreamProxy(kind: kind, agent: agent, upstream: upstream, events: events, eventsIn: eventsIn,
                                    masker: context.connection.masker, recorder: streamRecorder)
            // In flight until its exchange is completed: a graceful shutdown waits for it.
            load.enter()
            let load = self.load
            Task {
                defer { load.leave() }
                await proxy.run()
            }
            var answer: [(String, String)] = []
            switch transport {
            case .webSocket:
                if let chosen = upstreamHeaders.first(name: "Sec-WebSocket-Protocol") { answer.append(("Sec-WebSocket-Protocol", chosen)) }
            case .spdy:
                if let chosen = upstreamHeaders.first(name: "X-Stream-Protocol-Version") { answer.append(("X-Stream-Protocol-Version", chosen)) }
            }
            return .accept(headers: answer, session: agent)
        }
    }
}

/// WebSocket upgrades on the gateway's listeners.
struct StreamUpgrades: WebSocketService {
    let relay: StreamRelay

    func decide(_ request: HTTPRequest) async -> UpgradeDecision<any WebSocketSession> {
        switch await relay.admit(request, transport: .webSocket) {
        case .accept(let headers, let session): return .accept(headers: headers, session: session)
        case .refuse(let response):
            await relay.refusals.remember(response, for: request)
            return .refuse(response)
        }
    }
}

/// `Upgrade: SPDY/3.1` on the gateway's listeners (kubectl's fallback for exec, attach and port-forward).
struct SPDYStreamUpgrades: ByteStreamUpgradeService {
    let relay: StreamRelay
    var upgradeProtocol: String { "SPDY/3.1" }

    func decide(_ request: HTTPRequest) async -> UpgradeDecision<any ByteStreamSession> {
        // kubectl retries a refused WebSocket exec/attach over SPDY at once; that retry gets the
        // answer the WebSocket attempt got (a denial, an expiry, an upstream error), not a
        // second approval or a second run of the rules, so kubectl prints what actually happened.
        if let repeated = await relay.refusals.take(for: request) { return .refuse(repeated) }
        switch await relay.admit(request, transport: .spdy) {
        case .accept(let headers, let session): return .accept(headers: headers, session: session)
        case .refuse(let response): return .refuse(response)
        }
    }
}

/// The refusals of WebSocket upgrades, kept briefly for kubectl's SPDY fallback of the same
/// request (same URL, same Authorization header: only the agent that got the refusal gets it
/// again). One use each; forgotten after ``lifetime``. They are kept in the session store, so
/// a fallback that reaches another replica gets the same answer, not a second approval.
struct StreamRefusals: Sendable {
    static let lifetime: TimeInterval = 30
    let store: any SessionStore
    let logger: Logger

    private static func key(_ request: HTTPRequest) -> String? {
        guard let authorization = request.headers["authorization"].first else { return nil }
        let digest = SHA256.hash(data: Data(authorization.utf8)).map { String(format: "%02x", $0) }.joined()
        return digest + " " + request.uri
    }

    func remember(_ response: HTTPResponse, for request: HTTPRequest) async {
        guard let key = Self.key(request), case .bytes(let body) = response.body else { return }
        do {
            try await store.rememberStreamRefusal(key, answer: StreamRefusal(statusCode: response.status, body: body),
                                                  until: Date().addingTimeInterval(Self.lifetime))
        } catch {
            logger.warning("a refused upgrade is not kept for the client's SPDY retry: \(error)")
        }
    }

    func take(for request: HTTPRequest) async -> HTTPResponse? {
        guard let key = Self.key(request) else { return nil }
        guard let refusal = try? await store.takeStreamRefusal(key, at: Date()) else { return nil }
        return .json(refusal.statusCode, refusal.body)
    }
}
