import Foundation

/// Field selectors as apimachinery's `fields.ParseSelector` reads them:
/// `metadata.name=a,metadata.namespace!=b`.
///
/// - Terms are comma-separated and ANDed; `=` and `==` mean equal, `!=` not equal. The
///   first operator in a term splits it (field names cannot be escaped).
/// - In values, `\,`, `\=` and `\\` escape a comma, an equals sign and a backslash; any other
///   escape, or an unescaped `,` or `=` in a value, is an error.
/// - A field absent from the object compares as the empty string (so `a!=x` matches an
///   object without `a`, and `a=` matches it too) — upstream's behaviour.
/// - The empty selector matches everything.
/// - Parsing does not check field names: which fields a kind supports is the server's
///   business. `validate(supported:)` fails with `field label not supported: x`, the message
///   kube-apiserver answers (400) for an unknown field.
public enum Fields {
    public enum Operator: String, Sendable, Hashable {
        case equals = "="
        case doubleEquals = "=="
        case notEquals = "!="
    }

    /// One `field op value` term; `value` is unescaped.
    public struct Requirement: Sendable, Hashable, CustomStringConvertible {
        public let field: String
        public let `operator`: Operator
        public let value: String

        public init(field: String, operator op: Operator, value: String) {
            self.field = field
            self.operator = op
            self.value = value
        }

        public func matches(_ fields: [String: String]) -> Bool {
            let actual = fields[field] ?? ""
            return self.operator == .notEquals ? actual != value : actual == value
        }

        /// `field=value` / `field!=value`, with the value escaped again.
        public var description: String {
            field + (self.operator == .notEquals ? "!=" : "=") + Fields.escapeValue(value)
        }
    }

    /// The AND of its requirements, in upstream's order (terms sorted as written).
    public struct Selector: Sendable, Hashable, CustomStringConvertible {
        public let requirements: [Requirement]

        public static let everything = Selector(requirements: [])

        public init(requirements: [Requirement]) {
            self.requirements = requirements
        }

        /// Parses as `fields.ParseSelector`; errors are worded as its are.
        public init(parsing text: String) throws {
            var requirements: [Requirement] = []
            let terms = Fields.splitTerms(text).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for term in terms where !term.isEmpty {
                guard let (field, op, rawValue) = Fields.splitTerm(term) else {
                    throw SelectorError("invalid selector: '\(text)'; can't understand '\(term)'")
                }
                requirements.append(Requirement(field: field, operator: op, value: try Fields.unescapeValue(rawValue)))
            }
            self.requirements = requirements
        }

        public var isEmpty: Bool { requirements.isEmpty }

        public func matches(_ fields: [String: String]) -> Bool {
            requirements.allSatisfy { $0.matches(fields) }
        }

        /// The fields the selector reads, each once, in order.
        public var requiredFields: [String] {
            var seen = Set<String>()
            return requirements.map(\.field).filter { seen.insert($0).inserted }
        }

        /// The value a field must equal (`metadata.name=x`), if a term demands one.
        /// This is how the API server and `RequestInfo` learn a list's single name.
        public func requiresExactMatch(_ field: String) -> String? {
            requirements.first { $0.field == field && $0.operator != .notEquals }?.value
        }

        /// Throws `field label not supported: x` for the first field outside `supported`.
        public func validate(supported: Set<String>) throws {
            if let field = requiredFields.first(where: { !supported.contains($0) }) {
                throw SelectorError("field label not supported: \(field)")
            }
        }

        public var description: String {
            requirements.map(\.description).joined(separator: ",")
        }
    }

    /// The fields every kind supports in kube-apiserver.
    public static let commonSupportedFields: Set<String> = ["metadata.name", "metadata.namespace"]

    /// Escapes `\`, `,` and `=` so a value can be placed in a selector string.
    public static func escapeValue(_ value: String) -> String {
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case ",": out += "\\,"
            case "=": out += "\\="
            default: out.append(character)
            }
        }
        return out
    }

    /// Undoes `escapeValue`; rejects unknown escapes and bare `,` / `=`.
    public static func unescapeValue(_ value: String) throws -> String {
        var out = ""
        var escaping = false
        for scalar in value.unicodeScalars {
            if escaping {
                guard scalar == "\\" || scalar == "," || scalar == "=" else {
                    throw SelectorError("invalid field selector: invalid escape sequence: \\\(scalar)")
                }
                out.unicodeScalars.append(scalar)
                escaping = false
                continue
            }
            switch scalar {
            case "\\":
                escaping = true
            case ",", "=":
                // Upstream prints the rune's number here; we print the character itself.
                throw SelectorError("invalid field selector: unescaped character in value: '\(scalar)'")
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        if escaping {
            throw SelectorError("invalid field selector: invalid escape sequence: \\")
        }
        return out
    }

    /// Splits on commas not preceded by an escaping backslash; escapes stay in the terms.
    static func splitTerms(_ text: String) -> [String] {
        guard !text.isEmpty else { return [] }
        var terms: [String] = []
        var current = ""
        var escaping = false
        for scalar in text.unicodeScalars {
            if escaping {
                escaping = false
            } else if scalar == "\\" {
                escaping = true
            } else if scalar == "," {
                terms.append(current)
                current = ""
                continue
            }
            current.unicodeScalars.append(scalar)
        }
        terms.append(current)
        return terms
    }

    /// The first `!=`, `==` or `=` splits the term (checked in that order at each position).
    static func splitTerm(_ term: String) -> (String, Operator, String)? {
        let scalars = Array(term.unicodeScalars)
        for index in scalars.indices {
            for op in [Operator.notEquals, .doubleEquals, .equals] {
                let symbol = Array(op.rawValue.unicodeScalars)
                if index + symbol.count <= scalars.count, Array(scalars[index..<index + symbol.count]) == symbol {
                    var field = String.UnicodeScalarView()
                    field.append(contentsOf: scalars[..<index])
                    var value = String.UnicodeScalarView()
                    value.append(contentsOf: scalars[(index + symbol.count)...])
                    return (String(field), op, String(value))
                }
            }
        }
        return nil
    }
}
