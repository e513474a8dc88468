import Foundation
import KubeCore

/// Value types the gateway hands to and gets from a `SessionStore`.
/// All are `Sendable` and `Codable` so the admin API can serve them as JSON as is.

public typealias SessionID = String
public typealias ExchangeID = String

/// An AgentConnection, by namespace and name.
public struct ConnectionRef: Hashable, Sendable, Codable, CustomStringConvertible {
    public var namespace: String
    public var name: String
    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }
    public var description: String { "\(namespace)/\(name)" }

    /// Byte for byte, as the API server compares names: Swift's `==` on String would take
    /// `café` spelt with a combining accent for the precomposed one, another connection.
    public static func == (a: ConnectionRef, b: ConnectionRef) -> Bool {
        a.namespace.utf8.elementsEqual(b.namespace.utf8) && a.name.utf8.elementsEqual(b.name.utf8)
    }

    public func hash(into hasher: inout Hasher) {
        for byte in namespace.utf8 { hasher.combine(byte) }
        hasher.combine(0xFF as UInt8)   // never a byte of UTF-8: the two names cannot run together
        for byte in name.utf8 { hasher.combine(byte) }
    }
}

/// What identifies a session: connection, agent subject and the token's `sid` or `jti`.
public struct SessionKey: Hashable, Sendable, Codable {
    public var connection: ConnectionRef
    public var subject: String
    /// The token's `sid` claim, else its `jti`, else nil (then sessions split on idle gaps).
    public var tokenKey: String?
    public init(connection: ConnectionRef, subject: String, tokenKey: String? = nil) {
        self.connection = connection
        self.subject = subject
        self.tokenKey = tokenKey
    }

    /// Subject and token key byte for byte, as the database compares them: Swift's `==` would
    /// call two look-alike subjects ("Kelvin", "\u{212A}elvin" with a KELVIN SIGN) one agent,
    /// and a cache keyed so would record one agent's exchanges into the other's session.
    public static func == (a: SessionKey, b: SessionKey) -> Bool {
        guard a.connection == b.connection, a.subject.hasSameBytes(as: b.subject) else { return false }
        switch (a.tokenKey, b.tokenKey) {
        case (nil, nil): return true
        case let (x?, y?): return x.hasSameBytes(as: y)
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(connection)
        Self.combineBytes(subject, into: &hasher)
        if let tokenKey { Self.combineBytes(tokenKey, into: &hasher) } else { hasher.combine(0xFE as UInt8) }
    }

    /// The string's UTF-8 bytes, then 0xFF (never a UTF-8 byte) to end them.
    private static func combineBytes(_ text: String, into hasher: inout Hasher) {
        var text = text
        text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        hasher.combine(0xFF as UInt8)
    }
}

/// Identity details recorded when a session starts.
public struct AgentIdentityInfo: Hashable, Sendable, Codable {
    public var groups: [String]
    /// The model name, read from the connection's configured claim.
    public var model: String?
    public init(groups: [String] = [], model: String? = nil) {
        self.groups = groups
        self.model = model
    }
}

public struct SessionRecord: Hashable, Sendable, Codable {
    /// Time-ordered: sorts by start time.
    public var id: SessionID
    public var connection: ConnectionRef
    public var subject: String
    public var groups: [String]
    public var model: String?
    public var tokenKey: String?
    public var startedAt: Date
    public var lastActivity: Date
    public var exchangeCount: Int64
    /// Bytes stored for this session: request and response bodies plus stream chunks.
    public var bytes: Int64
}

public enum ExchangeState: String, Hashable, Sendable, Codable, CaseIterable {
    /// Begun, response not finished.
    case inProgress
    case complete
    /// Cut: the gateway crashed or the stream was interrupted.
    case incomplete
}

/// What the gateway knows before forwarding. Empty strings stand for absent RequestInfo
/// parts (core group "", no subresource, cluster scope, non-resource URL).
public struct ExchangeStart: CarriesRequestSummary, Hashable, Sendable {
    /// What the agent asked for (RequestInfo, method, path, query, masked body).
    public var request: RequestSummary
    public var sessionID: SessionID
    public var time: Date
    /// Size on the wire (may exceed `requestBody.count` when truncated).
    public var requestBytes: Int64
    public var truncated: Bool
    public var approvalID: String?
    public var kubectlCommand: String?
    public var kubectlSession: String?
    public var userAgent: String?

    public init(
        sessionID: SessionID, time: Date, verb: String, apiGroup: String = "", resource: String = "",
        subresource: String = "", namespace: String = "", name: String = "", httpMethod: String,
        path: String, query: String = "", requestBody: [UInt8]? = nil, requestBytes: Int64 = 0,
        truncated: Bool = false, approvalID: String? = nil, kubectlCommand: String? = nil,
        kubectlSession: String? = nil, userAgent: String? = nil
    ) {
        self.init(sessionID: sessionID, time: time,
                  request: RequestSummary(verb: verb, apiGroup: apiGroup, resource: resource, subresource: subresource,
                                          namespace: namespace, name: name, httpMethod: httpMethod, path: path,
                                          query: query, body: requestBody),
                  requestBytes: requestBytes, truncated: truncated, approvalID: approvalID,
                  kubectlCommand: kubectlCommand, kubectlSession: kubectlSession, userAgent: userAgent)
    }

    public init(sessionID: SessionID, time: Date, request: RequestSummary, requestBytes: Int64, truncated: Bool,
                approvalID: String? = nil, kubectlCommand: String? = nil, kubectlSession: String? = nil,
                userAgent: String? = nil) {
        self.request = request
        self.sessionID = sessionID
        self.time = time
        self.requestBytes = requestBytes
        self.truncated = truncated
        self.approvalID = approvalID
        self.kubectlCommand = kubectlCommand
        self.kubectlSession = kubectlSession
        self.userAgent = userAgent
    }
}

/// What the gateway knows once the response is finished.
public struct ExchangeResult: Hashable, Sendable {
    public var statusCode: Int
    public var completedAt: Date
    /// Milliseconds from request start to response end.
    public var latencyMs: Double
    /// As the agent saw it (masked); nil when bodies are not recorded or it was streamed as chunks.
    public var responseBody: [UInt8]?
    public var responseBytes: Int64
    /// Set when either body was cut to the policy's maximum; ORed with the start's flag.
    public var truncated: Bool
    /// Set when the exchange was held for approval after it began; kept otherwise.
    public var approvalID: String?
    public var state: ExchangeState

    public init(
        statusCode: Int, completedAt: Date, latencyMs: Double, responseBody: [UInt8]? = nil,
        responseBytes: Int64 = 0, truncated: Bool = false, approvalID: String? = nil,
        state: ExchangeState = .complete
    ) {
        self.statusCode = statusCode
        self.completedAt = completedAt
        self.latencyMs = latencyMs
        self.responseBody = responseBody
        self.responseBytes = responseBytes
        self.truncated = truncated
        self.approvalID = approvalID
        self.state = state
    }
}

public struct ExchangeRecord: CarriesRequestSummary, Hashable, Sendable, Codable {
    /// What the agent asked for (RequestInfo, method, path, query, masked body).
    public var request: RequestSummary
    public var id: ExchangeID
    public var sessionID: SessionID
    /// 1, 2, 3... within the session, in the order exchanges began.
    public var sequence: Int64
    public var time: Date
    public var statusCode: Int?
    public var latencyMs: Double?
    public var completedAt: Date?
    public var responseBody: [UInt8]?
    public var requestBytes: Int64
    public var responseBytes: Int64
    public var truncated: Bool
    public var approvalID: String?
    public var kubectlCommand: String?
    public var kubectlSession: String?
    public var userAgent: String?
    public var state: ExchangeState
    /// The store instance that began it.
    public var owner: String
    public var streamChunkCount: Int64

    public init(id: ExchangeID, sessionID: SessionID, sequence: Int64, time: Date, request: RequestSummary,
                statusCode: Int?, latencyMs: Double?, completedAt: Date?, responseBody: [UInt8]?, requestBytes: Int64,
                responseBytes: Int64, truncated: Bool, approvalID: String?, kubectlCommand: String?,
                kubectlSession: String?, userAgent: String?, state: ExchangeState, owner: String, streamChunkCount: Int64) {
        self.request = request
        self.id = id
        self.sessionID = sessionID
        self.sequence = sequence
        self.time = time
        self.statusCode = statusCode
        self.latencyMs = latencyMs
        self.completedAt = completedAt
        self.responseBody = responseBody
        self.requestBytes = requestBytes
        self.responseBytes = responseBytes
        self.truncated = truncated
        self.approvalID = approvalID
        self.kubectlCommand = kubectlCommand
        self.kubectlSession = kubectlSession
        self.userAgent = userAgent
        self.state = state
        self.owner = owner
        self.streamChunkCount = streamChunkCount
    }
}

/// One frame of a stream: a watch event, or an exec/attach/log chunk on a channel
/// ("stdout", "stderr", "stdin", "event"...).
public struct StreamChunk: Hashable, Sendable, Codable {
    public var exchangeID: ExchangeID
    /// 1, 2, 3... within the exchange, in append order.
    public var sequence: Int64
    public var time: Date
    public var channel: String
    public var data: [UInt8]
}

public struct SessionDetail: Hashable, Sendable, Codable {
    public var session: SessionRecord
    public var exchanges: [ExchangeRecord]
}

/// Narrows `listSessions`. Every set field must match; exchange fields (verb, resource,
/// namespace, name) match sessions with at least one such exchange. `since`/`until` select
/// sessions active in the window.
public struct SessionFilter: Hashable, Sendable {
    public var connection: ConnectionRef?
    public var subject: String?
    public var model: String?
    public var since: Date?
    public var until: Date?
    public var verb: String?
    public var resource: String?
    public var namespace: String?
    public var name: String?
    public var limit: Int

    public init(
        connection: ConnectionRef? = nil, subject: String? = nil, model: String? = nil,
        since: Date? = nil, until: Date? = nil, verb: String? = nil, resource: String? = nil,
        namespace: String? = nil, name: String? = nil, limit: Int = 100
    ) {
        self.connection = connection
        self.subject = subject
        self.model = model
        self.since = since
        self.until = until
        self.verb = verb
        self.resource = resource
        self.namespace = namespace
        self.name = name
        self.limit = limit
    }
}

public struct PruneResult: Hashable, Sendable, Codable {
    public var sessions: Int64 = 0
    public var exchanges: Int64 = 0
    public var streamChunks: Int64 = 0
    /// Stored bytes freed (bodies and chunks).
    public var bytes: Int64 = 0
    public init() {}
}

/// AgentConnection `status.sessions`, plus bytes for RecordingPolicy status.
public struct SessionStats: Hashable, Sendable, Codable {
    public var active: Int64 = 0
    public var total: Int64 = 0
    public var lastActivity: Date?
    public var lastSessionID: SessionID?
    public var bytes: Int64 = 0
    public init() {}
}

public struct SessionStoreOptions: Sendable {
    /// 15 minutes: without a `sid`/`jti`, activity after a longer pause starts a new session.
    public static let defaultIdleGap: TimeInterval = 15 * 60
    /// An instance that has not heartbeaten for this long is considered dead.
    public static let defaultStaleAfter: TimeInterval = 60

    /// How long SQLite's recording journal gathers records before ingesting them together
    /// (reads in this process ingest at once). See `RecordingJournal`.
    public static let defaultJournalIngestDelay: Duration = .milliseconds(20)
    /// 16 MiB: see `journalBacklogBytes`.
    public static let defaultJournalBacklogBytes = 16 << 20

    public var idleGap: TimeInterval
    /// Unique per process; recorded as exchange owner.
    public var instanceID: String
    public var journalIngestDelay: Duration
    /// Records waiting in SQLite's recording journal past which new exchanges wait for the
    /// ingest to catch up (`RecordingJournal.waitForRoom`).
    public var journalBacklogBytes: Int
    /// The gateway's count of requests in flight: SQLite runs the write of the only request in
    /// flight on its caller's thread (see `SQLiteDriver`). Nil: every write queues.
    public var requestLoad: RequestLoad?

    public init(idleGap: TimeInterval = SessionStoreOptions.defaultIdleGap, instanceID: String? = nil,
                journalIngestDelay: Duration = SessionStoreOptions.defaultJournalIngestDelay,
                journalBacklogBytes: Int = SessionStoreOptions.defaultJournalBacklogBytes) {
        self.idleGap = idleGap
        self.instanceID = instanceID ?? SortableID.make(at: Date())
        self.journalIngestDelay = journalIngestDelay
        self.journalBacklogBytes = journalBacklogBytes
    }
}
