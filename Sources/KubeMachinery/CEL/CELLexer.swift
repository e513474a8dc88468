import Foundation
import KubeCore

/// Splits a CEL rule into tokens.
///
/// Covers CEL's lexical grammar: decimal and hex integers, `u`-suffixed unsigned integers,
/// doubles with fraction or exponent, strings in single, double or triple quotes, with the
/// `r` (raw) and `b` (bytes) prefixes and CEL's escapes (`\n`, `\xHH`, `\uHHHH`, `\UHHHHHHHH`,
/// octal `\ooo`, ...), identifiers, and the operators. Every token keeps its offset so errors
/// can point at it.
struct CELToken: Equatable, Sendable {
    enum Kind: Equatable, Sendable {
        case int(Int64)
        /// A decimal integer too large for `int`; only valid right after a unary minus
        /// (`-9223372036854775808`), which the parser checks.
        case intMagnitude(UInt64)
        case uint(UInt64)
        case double(Double)
        case string(String)
        case bytes([UInt8])
        case identifier(String)
        case punct(String)
        case end
    }
    var kind: Kind
    var position: Int
}

struct CELLexer {
    private let scalars: [Unicode.Scalar]
    private var index = 0

    init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }

    /// Tokenises the whole source; the last token is `.end`.
    static func tokenize(_ scalars: [Unicode.Scalar]) throws -> [CELToken] {
        var lexer = CELLexer(scalars)
        var tokens: [CELToken] = []
        while true {
            let token = try lexer.next()
            tokens.append(token)
            if token.kind == .end { return tokens }
        }
    }

    private func peek(_ offset: Int = 0) -> Unicode.Scalar? {
        let i = index + offset
        return i < scalars.count ? scalars[i] : nil
    }

    private func fail(_ message: String, at position: Int) -> CELError {
        CELError(message: message, position: position)
    }

    private static let twoCharacterPunctuators: Set<String> = ["==", "!=", "<=", ">=", "&&", "||"]
    private static let oneCharacterPunctuators: Set<String> = [
        "(", ")", "[", "]", "{", "}", ".", ",", "?", ":", "!", "-", "+", "*", "/", "%", "<", ">",
    ]

    mutating func next() throws -> CELToken {
        skipTrivia()
        let start = index
        guard let c = peek() else { return CELToken(kind: .end, position: index) }

        if isDigit(c) || (c == "." && peek(1).map(isDigit) == true) {
            return try number(start: start)
        }
        if c == "\"" || c == "'" {
            return try string(start: start, raw: false, bytes: false)
        }
        if isIdentifierStart(c) {
            // String prefixes: r, R, b, B and their two-letter combinations.
            var raw = false, bytes = false, length = 0
            while length < 2, let p = peek(length) {
                if (p == "r" || p == "R") && !raw { raw = true } else if (p == "b" || p == "B") && !bytes { bytes = true } else { break }
                length += 1
            }
            if length > 0, let q = peek(length), q == "\"" || q == "'" {
                index += length
                return try string(start: start, raw: raw, bytes: bytes)
            }
            var name = ""
            while let p = peek(), isIdentifierStart(p) || isDigit(p) {
                name.unicodeScalars.append(p)
                index += 1
            }
            return CELToken(kind: .identifier(name), position: start)
        }
        if let second = peek(1) {
            var pair = String(c)
            pair.unicodeScalars.append(second)
            if Self.twoCharacterPunctuators.contains(pair) {
                index += 2
                return CELToken(kind: .punct(pair), position: start)
            }
        }
        let single = String(c)
        if Self.oneCharacterPunctuators.contains(single) {
            index += 1
            return CELToken(kind: .punct(single), position: start)
        }
        throw fail("unexpected character '\(c)'", at: start)
    }

    private mutating func skipTrivia() {
        while let c = peek() {
            if c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\u{0C}" {
                index += 1
            } else if c == "/" && peek(1) == "/" {
                while let d = peek(), d != "\n" { index += 1 }
            } else {
                return
            }
        }
    }

    private func isDigit(_ c: Unicode.Scalar) -> Bool { c >= "0" && c <= "9" }
    private func isHexDigit(_ c: Unicode.Scalar) -> Bool {
        isDigit(c) || (c >= "a" && c <= "f") || (c >= "A" && c <= "F")
    }
    private func isIdentifierStart(_ c: Unicode.Scalar) -> Bool {
        (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "_"
    }

    private mutating func number(start: Int) throws -> CELToken {
        // Hexadecimal integer.
        if peek() == "0", let x = peek(1), x == "x" || x == "X" {
            index += 2
            var digits = ""
            while let c = peek(), isHexDigit(c) { digits.unicodeScalars.append(c); index += 1 }
            guard let magnitude = UInt64(digits, radix: 16) else {
                throw fail(digits.isEmpty ? "invalid hex literal" : "integer literal out of range", at: start)
            }
            return try integer(magnitude, start: start)
        }
        var text = ""
        var isDouble = false
        while let c = peek(), isDigit(c) { text.unicodeScalars.append(c); index += 1 }
        if peek() == ".", let d = peek(1), isDigit(d) {
            isDouble = true
            text += "."
            index += 1
            while let c = peek(), isDigit(c) { text.unicodeScalars.append(c); index += 1 }
        }
        if let e = peek(), e == "e" || e == "E" {
            var look = 1
            if let sign = peek(1), sign == "+" || sign == "-" { look = 2 }
            if let d = peek(look), isDigit(d) {
                isDouble = true
                for _ in 0..<look {
                    if let p = peek() { text.unicodeScalars.append(p) }
                    index += 1
                }
                while let c = peek(), isDigit(c) { text.unicodeScalars.append(c); index += 1 }
            }
        }
        if isDouble {
            guard let value = Double(text) else { throw fail("invalid double literal '\(text)'", at: start) }
            return CELToken(kind: .double(value), position: start)
        }
        guard let magnitude = UInt64(text) else { throw fail("integer literal '\(text)' out of range", at: start) }
        return try integer(magnitude, start: start)
    }

    private mutating func integer(_ magnitude: UInt64, start: Int) throws -> CELToken {
        if let u = peek(), u == "u" || u == "U" {
            index += 1
            return CELToken(kind: .uint(magnitude), position: start)
        }
        if magnitude <= UInt64(Int64.max) { return CELToken(kind: .int(Int64(magnitude)), position: start) }
        return CELToken(kind: .intMagnitude(magnitude), position: start)
    }

    private mutating func string(start: Int, raw: Bool, bytes: Bool) throws -> CELToken {
        guard let quote = peek() else { throw fail("unterminated string", at: start) }
        let triple = peek(1) == quote && peek(2) == quote
        index += triple ? 3 : 1
        var out: [UInt8] = []
        func appendScalar(_ s: Unicode.Scalar) { out.append(contentsOf: Array(String(s).utf8)) }
        while true {
            guard let c = peek() else { throw fail("unterminated string literal", at: start) }
            if triple {
                if c == quote && peek(1) == quote && peek(2) == quote { index += 3; break }
            } else {
                if c == quote { index += 1; break }
                if c == "\n" || c == "\r" { throw fail("newline in single-quoted string literal", at: index) }
            }
            if c == "\\" && !raw {
                let escapeStart = index
                index += 1
                guard let e = peek() else { throw fail("unterminated string literal", at: start) }
                index += 1
                switch e {
                case "\\", "\"", "'", "`", "?": appendScalar(e)
                case "a": out.append(7)
                case "b": out.append(8)
                case "f": out.append(12)
                case "n": out.append(10)
                case "r": out.append(13)
                case "t": out.append(9)
                case "v": out.append(11)
                case "x", "X", "u", "U":
                    let count = (e == "x" || e == "X") ? 2 : (e == "u" ? 4 : 8)
                    var digits = ""
                    for _ in 0..<count {
                        guard let h = peek(), isHexDigit(h) else { throw fail("invalid escape sequence", at: escapeStart) }
                        digits.unicodeScalars.append(h)
                        index += 1
                    }
                    guard let value = UInt32(digits, radix: 16) else { throw fail("invalid escape sequence", at: escapeStart) }
                    if count == 2 && bytes {
                        out.append(UInt8(value))
                    } else if count == 2 {
                        appendScalar(Unicode.Scalar(UInt8(value)))
                    } else {
                        guard !bytes, let scalar = Unicode.Scalar(value) else {
                            throw fail("invalid unicode escape", at: escapeStart)
                        }
                        appendScalar(scalar)
                    }
                case "0"..."3":
                    var value = UInt32(e.value - 48)
                    for _ in 0..<2 {
                        guard let o = peek(), o >= "0" && o <= "7" else { throw fail("invalid octal escape", at: escapeStart) }
                        value = value * 8 + (o.value - 48)
                        index += 1
                    }
                    if bytes { out.append(UInt8(value)) } else { appendScalar(Unicode.Scalar(UInt8(value))) }
                default:
                    throw fail("invalid escape sequence '\\\(e)'", at: escapeStart)
                }
                continue
            }
            appendScalar(c)
            index += 1
        }
        if bytes { return CELToken(kind: .bytes(out), position: start) }
        return CELToken(kind: .string(String(decoding: out, as: UTF8.self)), position: start)
    }
}
