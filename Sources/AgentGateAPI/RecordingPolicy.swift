import KubeCore

/// RecordingPolicy (`rp`): what the gateway records for the connections that reference it,
/// how long sessions are kept, what happens when the session store is unavailable, and which
/// request rates raise an alert (a Warning Event on the AgentConnection, a metric, and a POST
/// to `alertWebhook` when set).
public struct RecordingPolicy: AgentGateObject {
    public static let kindInfo = AgentGateKinds.recordingPolicy

    public var apiVersion: String
    public var kind: String
    public var metadata: ObjectMeta
    public var spec: RecordingPolicySpec
    public var status: RecordingPolicyStatus?

    public init(metadata: ObjectMeta, spec: RecordingPolicySpec = RecordingPolicySpec(), status: RecordingPolicyStatus? = nil) {
        self.apiVersion = AgentGateGroup.apiVersion
        self.kind = Self.kindInfo.kind
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

/// Every field has a default, so an empty spec is a complete policy.
public struct RecordingPolicySpec: Codable, Sendable, Hashable {
    /// What each exchange records; defaults capture everything up to 64 KiB per body.
    public var capture: CaptureSettings?
    /// How long recorded sessions are kept (Go duration, at least 1h; default `720h`).
    public var retention: String?
    /// `FailClosed` (default) refuses a request that cannot be recorded; `FailOpen` forwards it.
    public var failureMode: FailureMode?
    /// Request rates that raise an alert, unique by name.
    public var alerts: [AlertRule]?
    /// Where the gateway POSTs each alert (JSON with the rule, connection, subject and session id).
    public var alertWebhook: AlertWebhook?

    public static let defaultRetention = "720h"

    public init(capture: CaptureSettings? = nil, retention: String? = nil, failureMode: FailureMode? = nil,
                alerts: [AlertRule]? = nil, alertWebhook: AlertWebhook? = nil) {
        self.capture = capture
        self.retention = retention
        self.failureMode = failureMode
        self.alerts = alerts
        self.alertWebhook = alertWebhook
    }
}

/// An HTTP(S) endpoint that receives alerts.
public struct AlertWebhook: Codable, Sendable, Hashable {
    /// http(s) URL that receives the POST.
    public var url: String

    public init(url: String) { self.url = url }
}

/// What each exchange records; defaults capture everything up to 64 KiB per body.
public struct CaptureSettings: Codable, Sendable, Hashable {
    /// Record request bodies (masked); default true.
    public var requestBodies: Bool?
    /// Record response bodies as the agent saw them (masked); default true.
    public var responseBodies: Bool?
    /// Bodies longer than this are truncated (and flagged) in the recording.
    public var maxBodyBytes: Int64?
    /// Record each watch event as the agent received it; default true.
    public var watchEvents: Bool?
    /// Record exec, attach and port-forward stream data (masked); default true.
    public var execStreams: Bool?

    public static let defaultMaxBodyBytes: Int64 = 65_536

    public init(requestBodies: Bool? = nil, responseBodies: Bool? = nil, maxBodyBytes: Int64? = nil,
                watchEvents: Bool? = nil, execStreams: Bool? = nil) {
        self.requestBodies = requestBodies
        self.responseBodies = responseBodies
        self.maxBodyBytes = maxBodyBytes
        self.watchEvents = watchEvents
        self.execStreams = execStreams
    }
}

public enum FailureMode: String, Codable, Sendable, Hashable, CaseIterable {
    case failClosed = "FailClosed"
    case failOpen = "FailOpen"
}

/// Fires when `threshold` matching requests of one session arrive within `window` (so 1
/// means "any"); it fires once per burst and again only after the count fell below the
/// threshold. Matchers work as in approval rules (absent list or `*` matches anything).
public struct AlertRule: Codable, Sendable, Hashable {
    /// Unique within the policy; named in the Event and the webhook payload.
    public var name: String
    public var verbs: [RequestVerb]?
    public var apiGroups: [String]?
    public var resources: [String]?
    public var subresources: [String]?
    public var namespaces: [String]?
    /// Matching requests of one session within `window` that fire the alert (1...100000).
    public var threshold: Int32
    /// Go duration, 1s...24h, default `1m`.
    public var window: String?

    public static let defaultWindow = "1m"

    public init(name: String, verbs: [RequestVerb]? = nil, apiGroups: [String]? = nil, resources: [String]? = nil,
                subresources: [String]? = nil, namespaces: [String]? = nil, threshold: Int32, window: String? = nil) {
        self.name = name
        self.verbs = verbs
        self.apiGroups = apiGroups
        self.resources = resources
        self.subresources = subresources
        self.namespaces = namespaces
        self.threshold = threshold
        self.window = window
    }
}

/// Conditions from the operator; the recording figures are the gateway's to write.
public struct RecordingPolicyStatus: Codable, Sendable, Hashable {
    /// The generation this status describes.
    public var observedGeneration: Int64?
    /// Sessions recorded under this policy.
    public var sessionsRecorded: Int64?
    /// Bytes of bodies and stream data recorded under this policy.
    public var bytesRecorded: Int64?
    /// RFC 3339 time retention last deleted expired sessions.
    public var lastPrune: String?
    public var conditions: [Condition]?

    public init(observedGeneration: Int64? = nil, sessionsRecorded: Int64? = nil, bytesRecorded: Int64? = nil,
                lastPrune: String? = nil, conditions: [Condition]? = nil) {
        self.observedGeneration = observedGeneration
        self.sessionsRecorded = sessionsRecorded
        self.bytesRecorded = bytesRecorded
        self.lastPrune = lastPrune
        self.conditions = conditions
    }
}
