import Crypto
import Foundation
import HTTPServing
import KubeCore
import Logging
import SessionStore

/// The gateway's authenticated admin HTTP API (`--admin-listen`), read by `agentgate sessions`
/// and `agentgate approvals` (and the web page).
///
/// Contract:
/// - Who (`AdminAPI+Access.swift`): `Authorization: Bearer` with an OIDC token of an issuer in
///   `--admin-auth-file` (``AdminAuthConfig``), whose groups give a role: `reviewer` reads
///   sessions, exchanges, chunks and approvals; `approver` also decides approvals; `admin`
///   also reads the audit. Or the break-glass token (``loadOrCreateToken(at:)``,
///   `--admin-token-file`; off with `--no-admin-token`), which is `admin` without a person:
///   each use is logged at warning and audited, and it decides nothing. No token, a token of
///   no trusted issuer, or a bad one: 401. A valid token without the role: 403 naming it.
///   Approvals also accept a connection's approvers (its issuer and `approverGroups`, see
///   `AdminAPI+Approvals.swift`).
/// - Every read of a recording is recorded before it is answered (``SessionStore/recordRead``):
///   viewer (subject, or `admin-token`), issuer, session, exchange, address, time. When it
///   cannot be recorded, the read is refused (503).
/// - Errors are `metav1.Status` JSON (`{"kind":"Status","code":409,"reason":"Conflict","message":...}`).
/// - `GET /api/v1/login-config` (no token): `{"breakGlass":bool}` plus, when the page may log
///   in with OIDC, `issuer`, `clientID`, `scopes`.
/// - `GET /api/v1/sessions` (reviewer) — filters `connection` (`ns/name`), `subject`, `model`, `since`,
///   `until` (RFC 3339), `verb`, `resource`, `namespace`, `name`, `limit`; answers
///   `{"items":[session...]}`, most recent activity first. Audited as one read of the list
///   (its filter), not a read per session listed.
/// - `GET /api/v1/sessions/{id}` (reviewer) — the session with its exchanges (bodies as UTF-8 text,
///   or base64 under `…Base64` when not text); 404 Status when unknown.
/// - `GET /api/v1/exchanges/{id}/chunks` (reviewer) — stream frames (watch events, log chunks) in order.
/// - `GET /api/v1/audit/reads` (admin) — filters `session`, `viewer`, `limit`; answers
///   `{"items":[{"id","viewer","issuer","action","sessionID","exchangeID","query","address",
///   "firstAt","lastAt","count"}]}`, most recent first (empty fields omitted). Reads of one
///   target by one viewer from one address within 5 minutes share a row (`count`).
/// - `GET /api/v1/approvals` — filters `state` (pending, approved, denied, expired, abandoned),
///   `connection` (`ns/name`), `limit`; answers `{"items":[approval...]}`, newest first. With a
///   connection approver's token, only the connections whose `approverGroups` it is in.
/// - `GET /api/v1/approvals/{id}` — one approval: `id`, `connection`, `rule`, `state`,
///   `subject`, `groups`, `model`, `sessionID`, `exchangeID`, `verb`, `apiGroup`, `resource`,
///   `subresource`, `namespace`, `name`, `method`, `path`, `query`, `requestBody`,
///   `dryRunStatusCode`, `dryRunBody` (what the API server said a dry run would do),
///   `approverGroups`, `createdAt`, `expiresAt`, `decidedAt`, `decidedBy`, `reason` (absent
///   fields are omitted; bodies as in sessions, `…Base64` when not text).
/// - `POST /api/v1/approvals/{id}/approve` and `/deny`, body `{"reason":"..."}` (required to
///   deny), by a person: the approver role (and the approval's `approverGroups` when it has
///   some), or a connection approver. 200 and the decided approval; 401 bad token, 403 not an
///   approver / the requesting agent itself / the break-glass token, 404 unknown id, 409
///   Conflict when already decided (a decision is made once).
/// Metrics and probes are not here: the gateway serves them on its probe listener
/// (`--metrics-address`, ``ProbeEndpoint``).
public final class AdminAPI: Sendable {
    let store: any SessionStore
    /// The break-glass token; nil when it is off.
    let breakGlassToken: String?
    /// The admin issuers and roles; nil: only the break-glass token (and connection approvers).
    let authorization: AdminAuthConfig?
    /// Verifies admin tokens: the gateway's one verifier.
    let verifier: OIDCVerifier?
    /// The gateway whose held requests the approval endpoints decide (nil: no approvals).
    let gateway: Gateway?
    let logger: Logger

    /// - Parameters:
    ///   - token: the break-glass token, nil when it is off.
    ///   - authorization: admin issuers and roles (`--admin-auth-file`).
    ///   - verifier: checks admin tokens; default the gateway's.
    public init(store: any SessionStore, token: String?, authorization: AdminAuthConfig? = nil, verifier: OIDCVerifier? = nil,
                gateway: Gateway? = nil, logger: Logger = Logger(label: "agentgate.admin")) {
        self.store = store
        self.breakGlassToken = token
        self.authorization = authorization
        self.verifier = verifier ?? gateway?.verifier
        self.gateway = gateway
        self.logger = logger
        precondition(authorization == nil || self.verifier != nil, "admin issuers need a verifier (the gateway's)")
    }

    /// Reads the admin token from `url`, creating a random one (0600) when the file is absent.
    public static func loadOrCreateToken(at url: URL) throws -> String {
        if let text = try? String(contentsOf: url, encoding: .utf8) {
            let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !token.isEmpty { return token }
        }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let token = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }.map { String(format: "%02x", $0) }.joined()
        guard FileManager.default.createFile(atPath: url.path, contents: Data((token + "\n").utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            // A token nobody can read back would lock every client out: say so instead.
            throw GatewayConfigError("cannot write the admin token file \(url.path)")
        }
        return token
    }

    public func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let parts = request.uri.split(separator: "?", maxSplits: 1)
        let path = parts.first.map(String.init) ?? "/"
        let rawQuery = parts.count > 1 ? String(parts[1]) : ""
        let query = RequestInfoResolver.parseQuery(rawQuery)
        if request.method == "GET", let page = WebPage.response(for: path, loginIssuer: authorization?.login?.issuer) { return page }
        if path == "/api/v1/login-config", request.method == "GET" { return loginConfig() }
        let segments = path.split(separator: "/").map(String.init)
        if segments.count >= 3, segments[0...2] == ["api", "v1", "approvals"] {
            return await handleApprovals(request, segments: segments, query: query)
        }
        guard request.method == "GET" else { return status(.methodNotAllowed("only GET is served")) }
        do {
            switch segments.count {
            case 3 where segments[0...2] == ["api", "v1", "sessions"]:
                let viewer = try await require(.reviewer, for: "read sessions", request)
                let filter = try Self.filter(query)
                try await audit(viewer, .listSessions, request, query: rawQuery)
                let sessions = try await store.listSessions(filter)
                return json(.object(["items": .array(sessions.map(AdminJSON.session))]))
            case 4 where segments[0...2] == ["api", "v1", "sessions"]:
                let viewer = try await require(.reviewer, for: "read sessions", request)
                try await audit(viewer, .readSession, request, session: segments[3])
                guard let detail = try await store.session(id: segments[3]) else {
                    return status(.notFound(group: "", resource: "sessions", name: segments[3]))
                }
                var object = AdminJSON.session(detail.session)
                object.set(.array(detail.exchanges.map(AdminJSON.exchange)), at: ["exchanges"])
                return json(object)
            case 5 where segments[0...2] == ["api", "v1", "exchanges"] && segments[4] == "chunks":
                let viewer = try await require(.reviewer, for: "read sessions", request)
                let exchange = try await store.exchange(id: segments[3])
                try await audit(viewer, .readChunks, request, session: exchange?.sessionID ?? "", exchange: segments[3])
                let chunks = try await store.streamChunks(exchangeID: segments[3])
                return json(.object(["items": .array(chunks.map(AdminJSON.chunk))]))
            case 4 where segments[0...3] == ["api", "v1", "audit", "reads"]:
                return try await auditReads(request, query: query, rawQuery: rawQuery)
            default:
                return status(Status(message: "no such admin endpoint: \(path)", reason: "NotFound", code: 404))
            }
        } catch let refusal as AdminRefusal {
            return status(refusal.status)
        } catch let error as AdminQueryError {
            return status(.badRequest(error.message))
        } catch {
            return status(.serviceUnavailable("the session store failed: \(error)"))
        }
    }

    /// The single bearer token of the request, if any.
    func bearer(_ request: HTTPRequest) -> String? {
        let headers = request.headers["authorization"]
        guard headers.count == 1 else { return nil }
        return Gateway.bearer(headers[0])
    }

    static func filter(_ query: [String: [String]]) throws -> SessionFilter {
        var filter = SessionFilter()
        func value(_ key: String) -> String? { query[key]?.first.flatMap { $0.isEmpty ? nil : $0 } }
        if let connection = value("connection") {
            let parts = connection.split(separator: "/")
            guard parts.count == 2 else { throw AdminQueryError(message: "connection must be NAMESPACE/NAME, got \(connection)") }
            filter.connection = ConnectionRef(namespace: String(parts[0]), name: String(parts[1]))
        }
        filter.subject = value("subject")
        filter.model = value("model")
        filter.verb = value("verb")
        filter.resource = value("resource")
        filter.namespace = value("namespace")
        filter.name = value("name")
        for key in ["since", "until"] {
            guard let text = value(key) else { continue }
            guard let date = AdminJSON.parseDate(text) else {
                throw AdminQueryError(message: "\(key) must be an RFC 3339 time (2025-01-02T15:04:05Z), got \(text)")
            }
            if key == "since" { filter.since = date } else { filter.until = date }
        }
        if let limit = value("limit") {
            guard let n = Int(limit), n > 0 else { throw AdminQueryError(message: "limit must be a positive integer, got \(limit)") }
            filter.limit = n
        }
        return filter
    }

    func json(_ value: JSONValue) -> HTTPResponse { .json(200, value.serialized()) }
    func status(_ status: Status) -> HTTPResponse { .json(status.code ?? 500, status.serializedJSON()) }
}

struct AdminQueryError: Error {
    var message: String
}

/// The admin API's JSON shapes (shared with `agentgate sessions`).
public enum AdminJSON {
    // A format style is a value: no formatter allocated per call (KubeTime does the same).
    private static let fractionalSeconds = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    public static func date(_ date: Date) -> String { fractionalSeconds.format(date) }

    /// RFC 3339 with or without fractional seconds.
    public static func parseDate(_ text: String) -> Date? { KubeTime.parse(text) }

    static func session(_ s: SessionRecord) -> JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(s.id), "connection": .string(s.connection.description), "subject": .string(s.subject),
            "groups": .array(s.groups.map { .string($0) }), "startedAt": .string(date(s.startedAt)),
            "lastActivity": .string(date(s.lastActivity)), "exchangeCount": .int(s.exchangeCount), "bytes": .int(s.bytes),
        ]
        if let model = s.model { o["model"] = .string(model) }
        if let key = s.tokenKey { o["tokenKey"] = .string(key) }
        return .object(o)
    }

    static func exchange(_ e: ExchangeRecord) -> JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(e.id), "sessionID": .string(e.sessionID), "sequence": .int(e.sequence), "time": .string(date(e.time)),
            "verb": .string(e.verb), "apiGroup": .string(e.apiGroup), "resource": .string(e.resource),
            "subresource": .string(e.subresource), "namespace": .string(e.namespace), "name": .string(e.name),
            "method": .string(e.httpMethod), "path": .string(e.path), "query": .string(e.query),
            "requestBytes": .int(e.requestBytes), "responseBytes": .int(e.responseBytes), "truncated": .bool(e.truncated),
            "state": .string(e.state.rawValue), "streamChunkCount": .int(e.streamChunkCount),
        ]
        if let code = e.statusCode { o["statusCode"] = .int(Int64(code)) }
        if let latency = e.latencyMs { o["latencyMs"] = .double(latency) }
        if let done = e.completedAt { o["completedAt"] = .string(date(done)) }
        if let v = e.approvalID { o["approvalID"] = .string(v) }
        if let v = e.kubectlCommand { o["kubectlCommand"] = .string(v) }
        if let v = e.kubectlSession { o["kubectlSession"] = .string(v) }
        if let v = e.userAgent { o["userAgent"] = .string(v) }
        body(e.requestBody, "requestBody", into: &o)
        body(e.responseBody, "responseBody", into: &o)
        return .object(o)
    }

    static func chunk(_ c: StreamChunk) -> JSONValue {
        var o: [String: JSONValue] = ["sequence": .int(c.sequence), "time": .string(date(c.time)), "channel": .string(c.channel)]
        body(c.data, "data", into: &o)
        return .object(o)
    }

    static func body(_ bytes: [UInt8]?, _ key: String, into o: inout [String: JSONValue]) {
        guard let bytes else { return }
        if let text = String(validatingUTF8CString: bytes) {
            o[key] = .string(text)
        } else {
            o[key + "Base64"] = .string(Data(bytes).base64EncodedString())
        }
    }
}

extension String {
    /// Strict UTF-8 decoding (nil when the bytes are not valid UTF-8).
    init?(validatingUTF8CString bytes: [UInt8]) {
        guard let text = String(bytes: bytes, encoding: .utf8) else { return nil }
        self = text
    }
}
