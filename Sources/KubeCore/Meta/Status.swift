import Foundation

/// metav1.Status: the body of every API error, and what kubectl prints from it.
public struct Status: Codable, Sendable, Hashable, Error, CustomStringConvertible {
    public var kind: String = "Status"
    public var apiVersion: String = "v1"
    public var metadata: ListMeta = ListMeta()
    /// "Success" or "Failure".
    public var status: String?
    public var message: String?
    /// A machine-readable StatusReason (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...).
    public var reason: String?
    public var details: StatusDetails?
    public var code: Int?

    public init(status: String? = "Failure", message: String? = nil, reason: String? = nil,
                details: StatusDetails? = nil, code: Int? = nil) {
        self.status = status
        self.message = message
        self.reason = reason
        self.details = details
        self.code = code
    }

    public var description: String { message ?? reason ?? "unknown error (code \(code ?? 0))" }
}

public struct StatusDetails: Codable, Sendable, Hashable {
    public var name: String?
    public var group: String?
    public var kind: String?
    public var uid: String?
    public var causes: [StatusCause]?
    public var retryAfterSeconds: Int?

    public init(name: String? = nil, group: String? = nil, kind: String? = nil, uid: String? = nil,
                causes: [StatusCause]? = nil, retryAfterSeconds: Int? = nil) {
        self.name = name
        self.group = group
        self.kind = kind
        self.uid = uid
        self.causes = causes
        self.retryAfterSeconds = retryAfterSeconds
    }
}

public struct StatusCause: Codable, Sendable, Hashable {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`, ...
    public var reason: String?
    public var message: String?
    /// The field path, e.g. `spec.credentials.rotateBefore`.
    public var field: String?

    public init(reason: String?, message: String?, field: String?) {
        self.reason = reason
        self.message = message
        self.field = field
    }
}

/// Constructors for the errors kube-apiserver returns, with its wording.
extension Status {
    /// "<resource>.<group> \"<name>\" not found"
    public static func notFound(group: String, resource: String, name: String) -> Status {
        let qualified = group.isEmpty ? resource : "\(resource).\(group)"
        return Status(message: "\(qualified) \"\(name)\" not found", reason: "NotFound",
                      details: StatusDetails(name: name, group: group.isEmpty ? nil : group, kind: resource), code: 404)
    }

    public static func alreadyExists(group: String, resource: String, name: String) -> Status {
        let qualified = group.isEmpty ? resource : "\(resource).\(group)"
        return Status(message: "\(qualified) \"\(name)\" already exists", reason: "AlreadyExists",
                      details: StatusDetails(name: name, group: group.isEmpty ? nil : group, kind: resource), code: 409)
    }

    public static func conflict(group: String, resource: String, name: String, message: String) -> Status {
        let qualified = group.isEmpty ? resource : "\(resource).\(group)"
        return Status(message: "Operation cannot be fulfilled on \(qualified) \"\(name)\": \(message)",
                      reason: "Conflict",
                      details: StatusDetails(name: name, group: group.isEmpty ? nil : group, kind: resource), code: 409)
    }

    /// 422 with one cause per field error: `Kind.group "name" is invalid: [field: reason, ...]`.
    public static func invalid(group: String, kind: String, name: String, errors: [FieldError]) -> Status {
        let qualified = group.isEmpty ? kind : "\(kind).\(group)"
        let joined = errors.map(\.description)
        let summary = joined.count == 1 ? joined[0] : "[" + joined.joined(separator: ", ") + "]"
        return Status(message: "\(qualified) \"\(name)\" is invalid: \(summary)", reason: "Invalid",
                      details: StatusDetails(name: name, group: group.isEmpty ? nil : group, kind: kind,
                                             causes: errors.map { $0.cause }),
                      code: 422)
    }

    public static func badRequest(_ message: String) -> Status {
        Status(message: message, reason: "BadRequest", code: 400)
    }

    public static func methodNotAllowed(_ message: String) -> Status {
        Status(message: message, reason: "MethodNotAllowed", code: 405)
    }

    public static func unauthorized(_ message: String = "Unauthorized") -> Status {
        Status(message: message, reason: "Unauthorized", code: 401)
    }

    public static func forbidden(_ message: String) -> Status {
        Status(message: message, reason: "Forbidden", code: 403)
    }

    public static func gone(_ message: String) -> Status {
        Status(message: message, reason: "Expired", code: 410)
    }

    public static func unsupportedMediaType(_ contentType: String) -> Status {
        Status(message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
               reason: "UnsupportedMediaType", code: 415)
    }

    public static func requestEntityTooLarge(_ message: String = "the request is too large") -> Status {
        Status(message: message, reason: "RequestEntityTooLarge", code: 413)
    }

    public static func internalError(_ message: String) -> Status {
        Status(message: "Internal error occurred: \(message)", reason: "InternalError", code: 500)
    }

    public static func serviceUnavailable(_ message: String) -> Status {
        Status(message: message, reason: "ServiceUnavailable", code: 503)
    }

    public static func success(details: StatusDetails? = nil) -> Status {
        Status(status: "Success", details: details)
    }
}
