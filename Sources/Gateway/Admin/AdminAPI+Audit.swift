import Foundation
import HTTPServing
import KubeCore
import SessionStore

/// The admin API's audit and login endpoints (contract at the top of `AdminAPI.swift`):
/// `GET /api/v1/audit/reads` (admin role) and `GET /api/v1/login-config` (no token).
extension AdminAPI {
    func auditReads(_ request: HTTPRequest, query: [String: [String]], rawQuery: String) async throws -> HTTPResponse {
        let viewer = try await require(.admin, for: "read the recording-read audit", request)
        func value(_ key: String) -> String? { query[key]?.first.flatMap { $0.isEmpty ? nil : $0 } }
        var filter = RecordingReadFilter(sessionID: value("session"), viewer: value("viewer"))
        if let limit = value("limit") {
            guard let n = Int(limit), n > 0 else { throw AdminQueryError(message: "limit must be a positive integer, got \(limit)") }
            filter.limit = n
        }
        // A person with the admin role reads the audit unrecorded; the break-glass token is
        // recorded wherever it goes.
        if viewer.isBreakGlass { try await audit(viewer, .listAudit, request, query: rawQuery) }
        let reads = try await store.listReads(filter)
        return json(.object(["items": .array(reads.map(AdminJSON.read))]))
    }

    func loginConfig() -> HTTPResponse {
        var object: [String: JSONValue] = ["breakGlass": .bool(breakGlassToken != nil)]
        if let login = authorization?.login {
            object["issuer"] = .string(login.issuer)
            object["clientID"] = .string(login.clientID)
            object["scopes"] = .array(login.scopes.map { .string($0) })
        }
        return json(.object(object))
    }
}

extension AdminJSON {
    /// A row of the recording-read audit; empty fields are omitted.
    public static func read(_ r: RecordingRead) -> JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(r.id), "viewer": .string(r.event.viewer), "action": .string(r.event.action.rawValue),
            "firstAt": .string(date(r.firstAt)), "lastAt": .string(date(r.lastAt)), "count": .int(r.count),
        ]
        for (key, value) in [("issuer", r.event.issuer), ("sessionID", r.event.sessionID), ("exchangeID", r.event.exchangeID),
                             ("query", r.event.query), ("address", r.event.address)] where !value.isEmpty {
            o[key] = .string(value)
        }
        return .object(o)
    }
}
