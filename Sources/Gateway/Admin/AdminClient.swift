import AsyncHTTPClient
import Foundation
import KubeCore
import NIOCore
import NIOHTTP1

/// A client of the gateway's admin API (``AdminAPI``), for `agentgate sessions` and
/// `agentgate approvals`. `token` is the admin token, or an approver's OIDC token for
/// approval decisions.
///
/// Contract: `adminURL` is `http(s)://HOST:PORT`; answers are the admin API's JSON. Error
/// answers throw ``AdminClientError`` carrying the Status message.
public struct AdminClient: Sendable {
    public var adminURL: String
    public var token: String

    public init(adminURL: String, token: String) {
        var url = adminURL
        while url.hasSuffix("/") { url.removeLast() }
        self.adminURL = url
        self.token = token
    }

    /// Reads the sandbox's admin address and token from DIR (`DIR/admin-address`, `DIR/admin-token`).
    public static func fromDataDirectory(_ directory: String) throws -> AdminClient {
        let dir = URL(fileURLWithPath: directory, isDirectory: true)
        guard let address = try? String(contentsOf: dir.appendingPathComponent("admin-address"), encoding: .utf8),
              let token = try? String(contentsOf: dir.appendingPathComponent("admin-token"), encoding: .utf8) else {
            throw AdminClientError(message: "\(directory) has no admin-address and admin-token (is `agentgate dev` or the gateway running with --data-dir \(directory)?); or give --admin-url and --token")
        }
        return AdminClient(adminURL: address.trimmingCharacters(in: .whitespacesAndNewlines),
                           token: token.trimmingCharacters(in: .whitespacesAndNewlines))
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
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        } catch {
            throw AdminClientError(message: "cannot reach the admin API at \(adminURL): \(error)")
        }
        let body = try await response.body.collect(upTo: 256 << 20)
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
