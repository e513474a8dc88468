import AgentGateAPI
import AsyncHTTPClient
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
/// Contract, per request, in this order (nothing reaches upstream before step 7):
/// 1. route and path check (400 for path tricks, 404 for an unknown connection);
/// 2. the agent's bearer token verified (401) and checked against the connection (403);
/// 3. RequestInfo derived from the decoded path exactly as kube-apiserver does;
/// 4. `spec.access` (403 naming the rule);
/// 5. session resolved and the exchange recorded (`beginExchange`); a store error answers
///    503 unless the connection's RecordingPolicy says `FailOpen`;
/// 6. headers rewritten (``UpstreamHeaders``);
/// 7. forwarded; the answer is decoded, masked, recorded and returned — watches and
///    `logs?follow` event by event (see `Gateway+Forward.swift`).
/// Every refusal is a `metav1.Status` with the matching code, and is recorded only when the
/// agent was authenticated (anonymous noise is not a session).
public final class Gateway: @unchecked Sendable {
    public let registry: ConnectionRegistry
    public let store: any SessionStore
    public let verifier: OIDCVerifier
    public let metrics = GatewayMetrics()
    let upstreamBase: String
    let http: HTTPClient
    let logger: Logger
    let resolver = RequestInfoResolver()
    /// Session ids already resolved for token-keyed sessions (see ``SessionCache``).
    let sessions = SessionCache()
    private var servers: [HTTPServer] = []
    private let serversLock = NSLock()
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
        upstreamBase = base
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
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        verifier = OIDCVerifier(http: http)
    }

    /// Serves on `host:port` (HTTPS with `tls`); returns the bound port. May be called more
    /// than once (an HTTPS listener and a loopback HTTP one).
    public func start(host: String, port: Int, tls: NIOSSLContext?) async throws -> Int {
        let server = HTTPServer(maxBodyBytes: 3 * 1024 * 1024)
        serversLock.withLock { servers.append(server) }
        return try await server.start(host: host, port: port, tls: tls) { [self] request in
            await self.handle(request)
        }
    }

    public func shutdown() async {
        for server in serversLock.withLock({ servers }) { await server.shutdown() }
        try? await http.shutdown()
    }

    // MARK: - Pipeline

    public func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let started = DispatchTime.now()
        let route: GatewayRoute
        switch GatewayRoute.parse(request.uri) {
        case .success(let parsed): route = parsed
        case .failure(.invalidPath(let message)): return refuse(.badRequest(message))
        case .failure(.notAConnectionPath):
            return refuse(Status(message: "the server could not find the requested resource; agent endpoints are /c/<namespace>/<connection>",
                                 reason: "NotFound", code: 404))
        }
        guard let connection = registry.connection(namespace: route.namespace, name: route.name) else {
            return refuse(Status(message: "agentconnection \"\(route.namespace)/\(route.name)\" is not served by this gateway",
                                 reason: "NotFound", details: StatusDetails(name: route.name, group: "agentgate.io", kind: "agentconnections"),
                                 code: 404))
        }
        let ref = ConnectionRef(namespace: route.namespace, name: route.name)
        let authorizations = request.headers["authorization"]
        guard authorizations.count == 1, let bearer = Self.bearer(authorizations[0]) else {
            metrics.count(connection: ref, verb: "", code: 401)
            return refuse(.unauthorized(authorizations.count > 1 ? "more than one Authorization header" : "a bearer token is required"))
        }
        let agent: VerifiedAgent
        do {
            agent = try await verifier.verify(bearer, identity: connection.config.identity)
            try OIDCVerifier.authorize(agent, identity: connection.config.identity)
        } catch let error as AgentForbidden {
            metrics.count(connection: ref, verb: "", code: 403)
            return refuse(.forbidden(error.message))
        } catch {
            metrics.count(connection: ref, verb: "", code: 401)
            return refuse(.unauthorized("Unauthorized: \(error)"))
        }
        let query = RequestInfoResolver.parseQuery(route.rawQuery ?? "")
        let info: RequestInfo
        do {
            info = try resolver.resolveStrictly(method: request.method, path: route.decodedPath, query: query)
        } catch {
            return refuse(.badRequest("\(error)"))
        }
        let context = ExchangeContext(request: request, route: route, connection: connection, ref: ref,
                                      agent: agent, info: info, query: query, started: started)
        if case .denied(let message) = AccessCheck.evaluate(connection.config.access, info) {
            return await refuseRecorded(.forbidden(message), context)
        }
        if request.bodyTooLarge {
            return await refuseRecorded(.requestEntityTooLarge(), context)
        }
        if ["exec", "attach", "portforward"].contains(info.subresource) || request.headers["upgrade"].first != nil {
            return await refuseRecorded(Status(message: "\(info.subresource.isEmpty ? "protocol upgrades" : "pods/\(info.subresource)") through the gateway are not supported yet",
                                               reason: "BadRequest", code: 400), context)
        }
        let recording: Recording
        do {
            recording = try await beginRecording(context)
        } catch {
            metrics.recorderErrors.add(1)
            if connection.config.recording.failureMode == .failOpen {
                logger.warning("recording failed, forwarding unrecorded (FailOpen) on \(ref): \(error)")
                recording = Recording(exchangeID: nil, sessionID: nil)
            } else {
                logger.error("recording failed on \(ref); refusing (FailClosed): \(error)")
                metrics.count(connection: ref, verb: info.verb, code: 503)
                return refuse(.serviceUnavailable("the session recorder is unavailable, so the request was not forwarded (RecordingPolicy failureMode FailClosed)"))
            }
        }
        return await forward(context, recording: recording)
    }

    static func bearer(_ header: String) -> String? {
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
        let body = status.serializedJSON()
        metrics.count(connection: context.ref, verb: context.info.verb, code: status.code ?? 500)
        if let recording = try? await beginRecording(context), let id = recording.exchangeID {
            try? await store.completeExchange(id, result: ExchangeResult(
                statusCode: status.code ?? 500, completedAt: Date(), latencyMs: context.elapsedMs,
                responseBody: body, responseBytes: Int64(body.count)))
        }
        return .json(status.code ?? 500, body)
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
