import Foundation

/// One validation failure at a field path, worded as apimachinery's `field.Error` is.
public struct FieldError: Sendable, Hashable, Error, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case required = "FieldValueRequired"
        case invalid = "FieldValueInvalid"
        case notSupported = "FieldValueNotSupported"
        case typeInvalid = "FieldValueTypeInvalid"
        case forbidden = "FieldValueForbidden"
        case tooLong = "FieldValueTooLong"
        case tooMany = "FieldValueTooMany"
        case duplicate = "FieldValueDuplicate"
    }

    public var kind: Kind
    /// Dotted path with indexes: `spec.approval.rules[0].verbs`.
    public var field: String
    /// The offending value as it should be shown (already quoted where apimachinery quotes).
    public var value: String?
    public var detail: String

    public init(_ kind: Kind, field: String, value: String? = nil, detail: String) {
        self.kind = kind
        self.field = field
        self.value = value
        self.detail = detail
    }

    /// The text kube-apiserver puts in messages and `causes[].message`.
    public var message: String {
        switch kind {
        case .required: return "Required value" + (detail.isEmpty ? "" : ": \(detail)")
        case .forbidden: return "Forbidden: \(detail)"
        case .tooLong: return "Too long: \(detail)"
        case .tooMany: return "Too many: \(detail)"
        case .duplicate: return "Duplicate value: \(value ?? "")"
        case .notSupported: return "Unsupported value: \(value ?? ""): \(detail)"
        case .typeInvalid: return "Invalid value: \(value ?? ""): \(detail)"
        case .invalid: return "Invalid value: \(value ?? "")" + (detail.isEmpty ? "" : ": \(detail)")
        }
    }

    public var description: String { "\(field): \(message)" }

    public var cause: StatusCause {
        StatusCause(reason: kind.rawValue, message: message, field: field)
    }
}
