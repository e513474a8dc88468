import Foundation

/// The label selector grammar of apimachinery's `labels.Parse`, as a lexer and a
/// recursive-descent parser over UTF-8 bytes:
///
///     selector     := "" | requirement ("," requirement)*
///     requirement  := ["!"] key | key op value | key ("in" | "notin") "(" [values] ")"
///     op           := "=" | "==" | "!=" | ">" | "<"
///
/// Whitespace (space, tab, CR, LF) separates tokens and is otherwise ignored. `in` and
/// `notin` are keywords only where an operator is expected; elsewhere they are plain
/// identifiers (a label may be called `in`). Error messages are apimachinery's, word for
/// word, because clients and people compare them with what a real cluster says.
struct LabelSelectorParser {
    enum Token: Equatable {
        case endOfString, closedParen, comma, doesNotExist, doubleEquals, equals, greaterThan
        case identifier, `in`, lessThan, notEquals, notIn, openParen
    }

    struct Item {
        var token: Token
        var literal: String
    }

    /// Where the parser is: keywords `in`/`notin` count as identifiers when a value or key
    /// is expected (`Values`), and as operators after a key (`KeyAndOperator`).
    enum Context { case keyAndOperator, values }

    private var items: [Item] = []
    private var position = 0

    init(_ text: String) {
        items = Self.lex(Array(text.utf8))
    }

    // MARK: - Lexer

    private static let symbolTokens: [String: Token] = [
        ")": .closedParen, ",": .comma, "!": .doesNotExist, "==": .doubleEquals, "=": .equals,
        ">": .greaterThan, "<": .lessThan, "!=": .notEquals, "(": .openParen,
    ]

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A
    }

    private static func isSpecialSymbol(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "="), UInt8(ascii: "!"), UInt8(ascii: "("), UInt8(ascii: ")"),
             UInt8(ascii: ","), UInt8(ascii: ">"), UInt8(ascii: "<"):
            return true
        default:
            return false
        }
    }

    private static func lex(_ bytes: [UInt8]) -> [Item] {
        var items: [Item] = []
        var index = 0
        while true {
            while index < bytes.count, isWhitespace(bytes[index]) { index += 1 }
            guard index < bytes.count else {
                items.append(Item(token: .endOfString, literal: ""))
                return items
            }
            if isSpecialSymbol(bytes[index]) {
                // Longest symbol that is a token: `!=` and `==` win over `!` and `=`.
                var buffer = ""
                var last: Item?
                while index < bytes.count, isSpecialSymbol(bytes[index]) {
                    let candidate = buffer + String(UnicodeScalar(bytes[index]))
                    if let token = symbolTokens[candidate] {
                        buffer = candidate
                        last = Item(token: token, literal: candidate)
                        index += 1
                    } else {
                        break
                    }
                }
                // Every single special symbol is a token, so `last` is always set.
                items.append(last ?? Item(token: .endOfString, literal: ""))
            } else {
                let start = index
                while index < bytes.count, !isWhitespace(bytes[index]), !isSpecialSymbol(bytes[index]) {
                    index += 1
                }
                let word = String(decoding: bytes[start..<index], as: UTF8.self)
                switch word {
                case "in": items.append(Item(token: .in, literal: word))
                case "notin": items.append(Item(token: .notIn, literal: word))
                default: items.append(Item(token: .identifier, literal: word))
                }
            }
        }
    }

    // MARK: - Parser

    private func lookahead(_ context: Context) -> Item {
        var item = items[min(position, items.count - 1)]
        if context == .values, item.token == .in || item.token == .notIn {
            item.token = .identifier
        }
        return item
    }

    private mutating func consume(_ context: Context) -> Item {
        let item = lookahead(context)
        if position < items.count - 1 { position += 1 }
        return item
    }

    mutating func parse() throws -> [Labels.Requirement] {
        var requirements: [Labels.Requirement] = []
        while true {
            let next = lookahead(.values)
            switch next.token {
            case .identifier, .doesNotExist:
                do {
                    requirements.append(try parseRequirement())
                } catch let error as SelectorError {
                    throw SelectorError("unable to parse requirement: " + error.message)
                }
                let after = consume(.values)
                switch after.token {
                case .endOfString:
                    return requirements
                case .comma:
                    let following = lookahead(.values)
                    if following.token != .identifier && following.token != .doesNotExist {
                        throw SelectorError("found '\(following.literal)', expected: identifier after ','")
                    }
                default:
                    throw SelectorError("found '\(after.literal)', expected: ',' or 'end of string'")
                }
            case .endOfString:
                return requirements
            default:
                throw SelectorError("found '\(next.literal)', expected: !, identifier, or 'end of string'")
            }
        }
    }

    private mutating func parseRequirement() throws -> Labels.Requirement {
        let (key, inferred) = try parseKeyAndInferOperator()
        if let inferred {
            return try Labels.Requirement(key: key, operator: inferred, values: [])
        }
        let op = try parseOperator()
        let values: [String]
        switch op {
        case .in, .notIn:
            values = try parseValues()
        default:
            values = try parseExactValue()
        }
        return try Labels.Requirement(key: key, operator: op, values: values)
    }

    /// The key, and `exists`/`doesNotExist` when the requirement is unary.
    private mutating func parseKeyAndInferOperator() throws -> (String, Labels.Operator?) {
        var op: Labels.Operator?
        var item = consume(.values)
        if item.token == .doesNotExist {
            op = .doesNotExist
            item = consume(.values)
        }
        guard item.token == .identifier else {
            throw SelectorError("found '\(item.literal)', expected: identifier")
        }
        let keyErrors = NameValidation.isQualifiedName(item.literal)
        if !keyErrors.isEmpty {
            // apimachinery validates the key here without a field path, hence `<nil>`.
            throw SelectorError(FieldError(.invalid, field: "<nil>", value: goQuoted(item.literal),
                                           detail: keyErrors.joined(separator: "; ")).description)
        }
        let next = lookahead(.values).token
        if op == nil, next == .endOfString || next == .comma {
            op = .exists
        }
        return (item.literal, op)
    }

    private mutating func parseOperator() throws -> Labels.Operator {
        let item = consume(.keyAndOperator)
        switch item.token {
        case .in: return .in
        case .equals: return .equals
        case .doubleEquals: return .doubleEquals
        case .greaterThan: return .greaterThan
        case .lessThan: return .lessThan
        case .notIn: return .notIn
        case .notEquals: return .notEquals
        default:
            // Upstream's text, unbalanced quote included.
            throw SelectorError("found '\(item.literal)', expected: '=', '!=', '==', 'in', notin'")
        }
    }

    /// `( v1, v2 )`; `()` and stray commas stand for the empty value, as upstream.
    private mutating func parseValues() throws -> [String] {
        let open = consume(.values)
        guard open.token == .openParen else {
            throw SelectorError("found '\(open.literal)' expected: '('")
        }
        let first = lookahead(.values)
        switch first.token {
        case .identifier, .comma:
            let values = try parseIdentifiersList()
            if consume(.values).token != .closedParen {
                throw SelectorError("found '\(first.literal)', expected: ')'")
            }
            return values
        case .closedParen:
            _ = consume(.values)
            return [""]
        default:
            throw SelectorError("found '\(first.literal)', expected: ',', ')' or identifier")
        }
    }

    private mutating func parseIdentifiersList() throws -> [String] {
        var values: [String] = []
        while true {
            let item = consume(.values)
            switch item.token {
            case .identifier:
                values.append(item.literal)
                let next = lookahead(.values)
                switch next.token {
                case .comma: continue
                case .closedParen: return values
                default: throw SelectorError("found '\(next.literal)', expected: ',' or ')'")
                }
            case .comma:
                if values.isEmpty { values.append("") }  // `(,`
                let next = lookahead(.values).token
                if next == .closedParen {
                    values.append("")  // `,)`
                    return values
                }
                if next == .comma {
                    _ = consume(.values)
                    values.append("")  // `,,`
                }
            default:
                throw SelectorError("found '\(item.literal)', expected: ',', or identifier")
            }
        }
    }

    /// The single value after `=`, `==`, `!=`, `>`, `<`; missing means the empty value.
    private mutating func parseExactValue() throws -> [String] {
        let next = lookahead(.values).token
        if next == .endOfString || next == .comma {
            return [""]
        }
        let item = consume(.values)
        guard item.token == .identifier else {
            throw SelectorError("found '\(item.literal)', expected: identifier")
        }
        return [item.literal]
    }
}
