import Foundation

/// A label or field selector that cannot be parsed, converted or used, worded as
/// apimachinery words it (`unable to parse requirement: ...`, `found ',', expected: ...`,
/// `field label not supported: spec.nodeName`).
///
/// The API server returns `message` as is in a 400 `Status` (`Status.badRequest(error.message)`).
public struct SelectorError: Error, Sendable, Hashable, CustomStringConvertible, LocalizedError {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
    public var errorDescription: String? { message }

    /// Several field errors as apimachinery's `ErrorList.ToAggregate().Error()` shows them:
    /// one message alone, several (deduplicated) in `[a, b]`.
    static func aggregate(_ errors: [FieldError]) -> SelectorError? {
        var seen = Set<String>()
        let messages = errors.map(\.description).filter { seen.insert($0).inserted }
        switch messages.count {
        case 0: return nil
        case 1: return SelectorError(messages[0])
        default: return SelectorError("[" + messages.joined(separator: ", ") + "]")
        }
    }
}

/// Go's `%q` for the strings that appear in validation messages: double quotes, with `"`,
/// `\` and control characters escaped, so a value with spaces or quotes stays readable.
func goQuoted(_ value: String) -> String {
    var out = "\""
    for scalar in value.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += String(format: "\\x%02x", scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

/// Go's `%#v` of a `[]string`, as apimachinery prints a list value in `Invalid value: ...`.
func goStringSliceLiteral(_ values: [String]) -> String {
    "[]string{" + values.map(goQuoted).joined(separator: ", ") + "}"
}
