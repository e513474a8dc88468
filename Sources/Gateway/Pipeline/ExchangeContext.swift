import AgentGateAPI
import Foundation
import HTTPServing
import KubeCore
import Masking
import SessionStore

/// Everything known about one request once it is admitted (``RequestAdmission``), carried
/// forward through the stages: recording, approval, forwarding or the stream relay.
///
/// Contract: ``summary`` is made once, at admission: the request's RequestInfo, method, path
/// and query, and its body masked with the connection's masker as the API server reads its
/// media type, then truncated to the RecordingPolicy's `maxBodyBytes`. The exchange record
/// and an approval both carry it; no stage masks or truncates the request body again.
struct ExchangeContext: Sendable {
    let request: HTTPRequest
    let route: GatewayRoute
    let connection: GatewayConnection
    /// The one key of the connection, everywhere (registry, records, metrics, logs).
    var ref: ConnectionRef { connection.ref }
    let agent: VerifiedAgent
    let info: RequestInfo
    let query: [String: [String]]
    let started: DispatchTime
    /// What the agent asked for, as recorded (see the type's contract).
    let summary: RequestSummary
    /// Whether ``summary``'s body was cut to `maxBodyBytes`.
    let bodyTruncated: Bool
    /// The approval rule holding this request, if any.
    var heldBy: HeldBy?
    /// How long the request was held for its approval (not the gateway's added latency).
    var heldSeconds: Double = 0

    init(request: HTTPRequest, route: GatewayRoute, connection: GatewayConnection, agent: VerifiedAgent,
         info: RequestInfo, query: [String: [String]], started: DispatchTime) {
        self.request = request
        self.route = route
        self.connection = connection
        self.agent = agent
        self.info = info
        self.query = query
        self.started = started
        let capture = connection.config.recording.capture ?? CaptureSettings()
        let limit = Int(capture.maxBodyBytes ?? CaptureSettings.defaultMaxBodyBytes)
        // Needed by the exchange record (unless bodies are not captured) and by an approval.
        let needed = capture.requestBodies ?? true || connection.config.approval != nil
        let body = needed ? Self.recordedBody(request, masker: connection.masker, kindHint: Self.kindHint(info),
                                              resource: Self.maskedResource(info)).map { Self.truncated($0, to: limit) } : nil
        summary = RequestSummary(verb: info.verb, apiGroup: info.apiGroup, resource: info.resource,
                                 subresource: info.subresource, namespace: info.namespace, name: info.name,
                                 httpMethod: request.method, path: route.decodedPath, query: route.rawQuery ?? "",
                                 body: body?.bytes)
        bodyTruncated = body?.truncated ?? false
    }

    var elapsedMs: Double { Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1_000_000 }

    /// The kind the request addresses, for masking objects that do not state theirs.
    var kindHint: String? { Self.kindHint(info) }

    /// The addressed resource, for the masking policy's field rules.
    var maskedResource: MaskedResource? { Self.maskedResource(info) }

    var capture: CaptureSettings { connection.config.recording.capture ?? CaptureSettings() }
    var maxBodyBytes: Int { Int(capture.maxBodyBytes ?? CaptureSettings.defaultMaxBodyBytes) }
    var failClosed: Bool { connection.config.recording.failureMode != .failOpen }

    /// `bytes` cut to the policy's `maxBodyBytes` for the record: every recorded body (request,
    /// answer, dry run) is cut here.
    func recordable(_ bytes: [UInt8]) -> (bytes: [UInt8], truncated: Bool) { Self.truncated(bytes, to: maxBodyBytes) }

    static func truncated(_ bytes: [UInt8], to limit: Int) -> (bytes: [UInt8], truncated: Bool) {
        bytes.count > limit ? (Array(bytes.prefix(limit)), true) : (bytes, false)
    }

    static func kindHint(_ info: RequestInfo) -> String? {
        switch (info.apiGroup, info.resource) {
        case ("", "secrets"): return "Secret"
        case ("", "serviceaccounts"): return "ServiceAccount"
        case ("", "pods"): return "Pod"
        case ("", "configmaps"): return "ConfigMap"
        default: return nil
        }
    }

    static func maskedResource(_ info: RequestInfo) -> MaskedResource? {
        info.isResourceRequest ? MaskedResource(group: info.apiGroup, resource: info.resource) : nil
    }

    /// A request body as it is recorded: masked as the API server reads its media type. A
    /// body the gateway cannot read (protobuf, or any type but JSON and YAML) is withheld: a
    /// placeholder that says so is recorded instead, never bytes nobody masked.
    static func recordedBody(_ request: HTTPRequest, masker: Masker, kindHint: String?,
                             resource: MaskedResource?) -> [UInt8]? {
        guard !request.body.isEmpty else { return nil }
        let type = RequestMediaType(request.header("Content-Type"))
        guard type.isReadable else {
            return Array("[request body withheld: \(request.body.count) bytes of \(type.essence), which the gateway does not decode and so cannot mask]".utf8)
        }
        return masker.maskRequestBody(request.body, contentType: type.maskingContentType, kindHint: kindHint, resource: resource)
    }
}

/// Where an exchange was recorded: both nil when the store failed and the RecordingPolicy
/// said `FailOpen`.
struct Recording: Sendable {
    var exchangeID: ExchangeID?
    var sessionID: SessionID?
}
