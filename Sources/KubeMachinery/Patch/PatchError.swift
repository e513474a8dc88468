import Foundation
import KubeCore

/// A patch that cannot be applied, with the HTTP code and wording kube-apiserver answers.
///
/// `code` is 400 (malformed patch), 409 (server-side apply conflict), 413 (too many JSON patch
/// operations), 415 (unsupported patch type), 422 (a JSON patch operation that does not apply), or
/// 500 where kube-apiserver passes a raw patch-library error through. ``status`` builds the
/// `metav1.Status` body the server returns.
public struct PatchError: Error, Sendable, CustomStringConvertible, Equatable {
    public var message: String
    public var code: Int
    /// The managers and fields of a server-side apply conflict, one line per conflict, e.g.
    /// `conflict with "other-manager": .spec.x`.
    public var conflicts: [String]?
    /// metav1 StatusReason: `Invalid`, `BadRequest`, `Conflict`, `UnsupportedMediaType`, ...
    public var reason: String
    /// Status causes (`details.causes`): the patch library's own message for 422, one
    /// `FieldManagerConflict` per field for 409.
    public var causes: [StatusCause]

    public init(message: String, code: Int, reason: String? = nil, conflicts: [String]? = nil,
                causes: [StatusCause] = []) {
        self.message = message
        self.code = code
        self.conflicts = conflicts
        self.causes = causes
        self.reason = reason ?? PatchError.defaultReason(code)
    }

    public var description: String {
        // Include the library message for 422s: the Status message alone says nothing useful.
        if code == 422, let cause = causes.first?.message { return "\(message): \(cause)" }
        return message
    }

    /// The `metav1.Status` kube-apiserver answers with.
    public var status: Status {
        Status(message: message, reason: reason.isEmpty ? nil : reason,
               details: causes.isEmpty ? nil : StatusDetails(causes: causes), code: code)
    }

    static func defaultReason(_ code: Int) -> String {
        switch code {
        case 400: return "BadRequest"
        case 409: return "Conflict"
        case 413: return "RequestEntityTooLarge"
        case 415: return "UnsupportedMediaType"
        case 422: return "Invalid"
        default: return ""  // metav1.StatusReasonUnknown
        }
    }

    static func badRequest(_ message: String) -> PatchError { PatchError(message: message, code: 400) }

    /// apimachinery's `NewGenericServerResponse(422, ...)`: a fixed message, the detail in a cause.
    static func unprocessable(_ detail: String) -> PatchError {
        PatchError(message: "the server rejected our request due to an error in our request", code: 422,
                   causes: [StatusCause(reason: "UnexpectedServerResponse", message: detail, field: nil)])
    }
}

/// Go's `%v` rendering of decoded JSON (`map[a:1 b:[x y]]`), used where kube-apiserver's messages
/// embed a value that way.
func goFormat(_ value: JSONValue) -> String {
    switch value {
    case .null: return "<nil>"
    case .bool(let b): return b ? "true" : "false"
    case .int(let i): return String(i)
    case .double(let d): return d.rounded() == d && abs(d) < 1e21 ? String(Int64(d)) : String(d)
    case .string(let s): return s
    case .array(let a): return "[" + a.map(goFormat).joined(separator: " ") + "]"
    case .object(let o):
        return "map[" + o.keys.sorted().map { "\($0):\(goFormat(o[$0] ?? .null))" }.joined(separator: " ") + "]"
    }
}
