import AsyncHTTPClient
import Foundation
import KubeCore
import NIOCore
import NIOHTTP1
import NIOSSL

/// A client of the gateway's admin API (``AdminAPI``), for `agentgate sessions` and
/// `agentgate approvals`. `token` is a person's OIDC token (or the break-glass admin token).
///
/// Contract: `adminURL` is `http(s)://HOST:PORT`; answers are the admin API's JSON. HTTPS is
/// verified against `certificateAuthorityPEM` when given, else the system's roots. Connecting
/// gives up after ``connectTimeout`` without retrying (a wrong address fails at once, not
/// after the request's deadline). Error answers throw ``AdminClientError`` carrying the
/// Status message.
public struct AdminClient: Sendable {
    public var adminURL: String
    public var token: String
    /// PEM CA bundle that signed the admin listener's certificate (`--admin-ca`).
    public var certificateAuthorityPEM: [UInt8]?
    public var connectTimeout: Duration = .seconds(5)

    public init(adminURL: String, token: String, certificateAuthorityPEM: [UInt8]? = nil) {
        var url = adminURL
        while url.hasSuffix("/") { url.removeLast() }
        self.adminURL = url
        self.token = token
        self.certificateAuthorityPEM = certificateAuthorityPEM
    }

    /// Reads the sandbox's admin address and token from DIR (`DIR/admin-address`, `DIR/admin-token`);
    /// `token`, when given, is used instead of the file (a gateway whose static token is off has none).
    public static func fromDataDirectory(_ directory: String, token: String? = nil) throws -> AdminClient {
        let dir = URL(fileURLWithPath: directory, isDirectory: true)
        guard let address = try? String(contentsOf: dir.appendingPathComponent("admin-address"), encoding: .utf8) else {
            throw AdminClientError(message: "\(directory) has no admin-address (is `agentgate dev` or the gateway running with --data-dir \(directory)?); or give --admin-url and --token")
        }
        guard let token = token ?? (try? String(contentsOf: dir.appendingPathComponent("admin-token"), encoding: .utf8)) else {
            throw AdminClientError(message: "\(directory) has no admin-token (the gateway's static token is off): give --token with your OIDC token")
        }
        return AdminClient(adminURL: address.trimmingCharacters(in: .whitespacesAndNewlines),
                           token: token.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The recording-read audit (`GET /api/v1/audit/reads`, admin role).
    public func listReads(_ query: [(String, String)]) async throws -> JSONValue {
        try await get("/api/v1/audit/reads", query)
    }

    public func listSessions(_ query: [(String, String)]) async throws -> JSONValue {
        try await get("/api/v1/sessions", query)
    }

    public func session(id: String) async throws -> JSONValue {
        try await get("/api/v1/sessions/\(Self.escape(id))", [])
    }

    public func chunks(exchangeID: String) async throws -> JSONValue {
        try await get("/api/v1/exchanges/\(Self.escape(exchangeID))/chunks", [])
    }

    /// `state`: one of ``ApprovalState``'s raw values, or nil for all.
    public func listApprovals(state: String?) async throws -> JSONValue {
        try await send("GET", "/api/v1/approvals", state.map { [("state", $0)] } ?? [])
    }

    public func approval(id: String) async throws -> JSONValue {
        try await send("GET", "/api/v1/approvals/\(Self.escape(id))", [])
    }

    /// Approves or denies; returns the decided approval.
    public func decide(approvalID: String, approve: Bool, reason: String) async throws -> JSONValue {
        try await send("POST", "/api/v1/approvals/\(Self.escape(approvalID))/\(approve ? "approve" : "deny")", [],
                       body: JSONValue.object(["reason": .string(reason)]).serialized())
    }

    private static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }

    private func get(_ path: String, _ query: [(String, String)]) async throws -> JSONValue {
        try await send("GET", path, query)
    }

    private func send(_ method: String, _ path: String, _ query: [(String, String)], body: [UInt8]? = nil) async throws -> JSONValue {
        let q = query.map { "\(Self.escape($0.0))=\(Self.escape($0.1))" }.joined(separator: "&")
        var request = HTTPClientRequest(url: adminURL + path + (q.isEmpty ? "" : "?" + q))
        request.method = HTTPMethod(rawValue: method)
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        if let pem = certificateAuthorityPEM {
            var tls = TLSConfiguration.makeClientConfiguration()
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(pem))
            } catch {
                throw AdminClientError(message: "the admin CA (--admin-ca) is not a PEM certificate: \(error)")
            }
            request.tlsConfiguration = tls
        }
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow,
                                                     timeout: .init(connect: .seconds(connectTimeout.components.seconds)))
        configuration.connectionPool.retryConnectionEstablishment = false
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await http.execute(request, timeout: .seconds(60))
            body = try await response.body.collect(upTo: 256 << 20)
            try? await http.shutdown()
        } catch {
            try? await http.shutdown()
            throw AdminClientError(message: "cannot reach the admin API at \(adminURL): \(error)")
        }
        let value = (try? JSONValue(parsing: Array(buffer: body))) ?? .null
        guard response.status.code == 200 else {
            throw AdminClientError(message: "admin API \(path): \(response.status.code) \(value["message"]?.stringValue ?? String(buffer: body))")
        }
        return value
    }
}

public struct AdminClientError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}
