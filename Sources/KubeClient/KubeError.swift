import Foundation
import KubeCore

/// What a Kubernetes call can fail with.
///
/// Contract: an HTTP error answer from the API server is decoded from its `metav1.Status` body
/// into one typed case by status code (and, for 409, by `reason`, so `AlreadyExists` and
/// `Conflict` are told apart). The server's `Status` is kept whole in every case, and
/// ``description`` is the server's own message, so what a user reads is what kubectl would
/// print. A body that is not a Status (a proxy's HTML page, say) becomes a Status whose message
/// is the body's first bytes. Failures that never reached the server are ``transport(_:)``;
/// an answer we cannot decode into the requested type is ``decoding(_:)``.
public enum KubeError: Error, CustomStringConvertible, Sendable {
    /// 404.
    case notFound(Status)
    /// 409 with reason `AlreadyExists` (create of an existing name).
    case alreadyExists(Status)
    /// 409 otherwise: a stale resourceVersion, a failed precondition, an apply conflict.
    case conflict(Status)
    /// 422, with the field causes (`details.causes`) the server named.
    case invalid(Status, causes: [StatusCause])
    /// 410: a resourceVersion or continue token fell out of the server's history.
    case gone(Status)
    /// 401: no or bad credentials.
    case unauthorized(Status)
    /// 403: the identity lacks RBAC permission (or an admission webhook refused).
    case forbidden(Status)
    /// 429, with the wait the server asked for (`Retry-After` header or `details.retryAfterSeconds`).
    case tooManyRequests(Status, retryAfter: Duration?)
    /// 400.
    case badRequest(Status)
    /// 5xx.
    case serverError(Status)
    /// Any other error code (405, 406, 413, 415...).
    case unexpected(Status)
    /// The request never got an answer: connection refused, TLS failure, timeout, reset.
    case transport(String)
    /// The answer could not be decoded into the requested Swift type.
    case decoding(String)

    /// The server's Status, for answers that came from the server.
    public var status: Status? {
        switch self {
        case .notFound(let s), .alreadyExists(let s), .conflict(let s), .gone(let s), .unauthorized(let s),
             .forbidden(let s), .badRequest(let s), .serverError(let s), .unexpected(let s):
            return s
        case .invalid(let s, _), .tooManyRequests(let s, _):
            return s
        case .transport, .decoding:
            return nil
        }
    }

    /// The HTTP status code the server answered with.
    public var code: Int? { status?.code }

    public var description: String {
        switch self {
        case .transport(let message): return "cannot reach the Kubernetes API: \(message)"
        case .decoding(let message): return message
        default: return status?.description ?? "unknown error"
        }
    }

    /// Builds the typed error for an HTTP error answer.
    ///
    /// - Parameters:
    ///   - code: the HTTP status code.
    ///   - body: the response body (normally a `metav1.Status` as JSON).
    ///   - retryAfterHeader: the `Retry-After` header value, when present.
    public static func fromResponse(code: Int, body: [UInt8], retryAfterHeader: String? = nil) -> KubeError {
        var status: Status
        if let decoded = try? JSONValue(parsing: body), decoded["kind"]?.stringValue == "Status" {
            // Field by field, so a Status missing optional parts (metadata, details) still decodes.
            status = Status(message: decoded["message"]?.stringValue, reason: decoded["reason"]?.stringValue,
                            details: decoded["details"].flatMap { try? $0.decode(StatusDetails.self) },
                            code: decoded["code"]?.intValue.map { Int($0) })
            status.status = decoded["status"]?.stringValue
        } else {
            let text = String(decoding: body.prefix(512), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            status = Status(message: text.isEmpty ? "the server answered HTTP \(code) with no body" : "the server answered HTTP \(code): \(text)",
                            reason: nil, code: code)
        }
        if status.code == nil { status.code = code }
        switch code {
        case 400: return .badRequest(status)
        case 401: return .unauthorized(status)
        case 403: return .forbidden(status)
        case 404: return .notFound(status)
        case 409: return status.reason == "AlreadyExists" ? .alreadyExists(status) : .conflict(status)
        case 410: return .gone(status)
        case 422: return .invalid(status, causes: status.details?.causes ?? [])
        case 429:
            let seconds = retryAfterHeader.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
                ?? status.details?.retryAfterSeconds
            return .tooManyRequests(status, retryAfter: seconds.map { .seconds($0) })
        case 500...599: return .serverError(status)
        default: return .unexpected(status)
        }
    }

    /// Builds the typed error for a `metav1.Status` carried in a watch ERROR event.
    public static func fromStatus(_ status: Status) -> KubeError {
        let body = (try? JSONValue(encoding: status).serialized()) ?? []
        return fromResponse(code: status.code ?? 500, body: body)
    }
}

/// A kubeconfig or in-cluster configuration that cannot be used. The message names the file,
/// the context and the field the user must fix.
public struct KubeConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
