/// A small parser of the ICU regex syntax MaskingRules use, enough to judge a pattern's shape
/// before it is compiled: whether it can backtrack catastrophically, and which literal text
/// every match must contain (used as the pattern's prefilter keyword).
///
/// It understands atoms (literals, escapes, `.`, bracket classes), groups of every flavour,
/// alternation and quantifiers. Character classes are kept as ASCII bitsets plus a "matches
/// non-ASCII" flag, which is precise enough to tell whether two classes overlap.
struct RegexShape {
    /// A set of characters: ASCII as a bitset, everything else as one flag.
    struct CharSet: Equatable {
        var low: UInt64 = 0, high: UInt64 = 0, nonASCII = false
        static let all = CharSet(low: ~0, high: ~0, nonASCII: true)
        static func char(_ c: UInt8) -> CharSet { var s = CharSet(); s.insert(c); return s }
        mutating func insert(_ c: UInt8) {
            if c < 64 { low |= 1 << UInt64(c) } else if c < 128 { high |= 1 << UInt64(c - 64) } else { nonASCII = true }
        }
        mutating func insertRange(_ a: UInt8, _ b: UInt8) {
            guard a <= b else { return }
            for c in a...b { insert(c) }
        }
        func union(_ o: CharSet) -> CharSet { CharSet(low: low | o.low, high: high | o.high, nonASCII: nonASCII || o.nonASCII) }
        var inverted: CharSet { CharSet(low: ~low, high: ~high, nonASCII: !nonASCII) }
        func overlaps(_ o: CharSet) -> Bool { (low & o.low) != 0 || (high & o.high) != 0 || (nonASCII && o.nonASCII) }
        /// The single ASCII character of a one-character set.
        var singleChar: UInt8? {
            guard !nonASCII, low.nonzeroBitCount + high.nonzeroBitCount == 1 else { return nil }
            return low != 0 ? UInt8(low.trailingZeroBitCount) : UInt8(64 + high.trailingZeroBitCount)
        }
        static var digits: CharSet { var s = CharSet(); s.insertRange(0x30, 0x39); return s }
        static var word: CharSet {
            var s = digits; s.insertRange(0x41, 0x5a); s.insertRange(0x61, 0x7a); s.insert(0x5f); s.nonASCII = true; return s
        }
        static var space: CharSet { var s = CharSet(); for c: UInt8 in [0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d] { s.insert(c) }; s.nonASCII = true; return s }
    }

    indirect enum Node {
        case atom(CharSet)
        case empty                       // anchors and lookarounds: match no character
        case group([[Node]])             // alternatives, each a sequence
        case quantified(Node, min: Int, max: Int?)
    }

    struct SyntaxError: Error { var message: String; var offset: Int }

    let root: [[Node]]
    let caseInsensitive: Bool
    /// Names of the pattern's named capture groups (`(?<secret>...)`), in order.
    let groupNames: [String]

    init(_ pattern: String) throws {
        var parser = Parser(bytes: Array(pattern.utf8))
        root = try parser.parseAlternatives()
        if parser.index < parser.bytes.count {
            throw SyntaxError(message: "unmatched ')'", offset: parser.index)
        }
        caseInsensitive = parser.caseInsensitive
        groupNames = parser.groupNames
    }

    // MARK: - Catastrophic backtracking

    /// A description of the first sub-pattern that can backtrack exponentially, or nil.
    ///
    /// A repeated group is catastrophic when its body can match the same text in more than one
    /// way per repetition: it holds a repeated element and every other mandatory element could
    /// be eaten by that repetition too (`(a+)+`, `(\w*)*`, `(.*a){10}`, `(\w+\s?)+`), or its
    /// alternatives can start with the same character (`(a|ab)+`). A separator the inner
    /// repetition cannot match (`(\d+\.)+`, `([a-z]+-)*`) keeps it linear.
    func catastrophicReason() -> String? { Self.findCatastrophe(in: root) }

    private static func findCatastrophe(in alternatives: [[Node]]) -> String? {
        for sequence in alternatives {
            for node in sequence {
                if let reason = findCatastrophe(in: node) { return reason }
            }
        }
        return nil
    }

    private static func findCatastrophe(in node: Node) -> String? {
        switch node {
        case .atom, .empty: return nil
        case .group(let alternatives): return findCatastrophe(in: alternatives)
        case .quantified(let inner, _, let max):
            if max == nil || max! > 1, case .group(let alternatives) = inner {
                if alternatives.count > 1 {
                    let firsts = alternatives.map { firstSet(of: $0) }
                    for i in firsts.indices { for j in firsts.indices where i < j && firsts[i].overlaps(firsts[j]) {
                        return "alternatives of a repeated group can match the same text, so a failing match backtracks exponentially; make the alternatives start differently or use an atomic group (?>...)"
                    } }
                }
                var elements: [(set: CharSet, repeating: Bool, mandatory: Bool)] = []
                for sequence in alternatives { flatten(sequence, mandatory: alternatives.count == 1, into: &elements) }
                for (i, element) in elements.enumerated() where element.repeating {
                    let others = elements.enumerated().filter { $0.offset != i && $0.element.mandatory }
                    if others.allSatisfy({ $0.element.set.overlaps(element.set) }) {
                        return "nested quantifiers over the same characters (a repeated element inside a repeated group, as in (a+)+ or (.*a){10}) backtrack exponentially on a failing match; remove the outer quantifier or separate repetitions with a character the inner one cannot match"
                    }
                }
            }
            return findCatastrophe(in: inner)
        }
    }

    private static func flatten(
        _ sequence: [Node], mandatory: Bool, repeating: Bool = false,
        into out: inout [(set: CharSet, repeating: Bool, mandatory: Bool)]
    ) {
        for node in sequence {
            switch node {
            case .empty: continue
            case .atom(let set): out.append((set, repeating, mandatory))
            case .group(let alternatives):
                for inner in alternatives {
                    flatten(inner, mandatory: mandatory && alternatives.count == 1, repeating: repeating, into: &out)
                }
            case .quantified(let inner, let min, let max):
                let repeats = repeating || max == nil || max! > 1
                flatten([inner], mandatory: mandatory && min > 0, repeating: repeats, into: &out)
            }
        }
    }

    private static func firstSet(of sequence: [Node]) -> CharSet {
        var result = CharSet()
        for node in sequence {
            switch node {
            case .empty: continue
            case .atom(let set): return result.union(set)
            case .group(let alternatives):
                for alternative in alternatives { result = result.union(firstSet(of: alternative)) }
                return result
            case .quantified(let inner, let min, _):
                result = result.union(firstSet(of: [inner]))
                if min > 0 { return result }
            }
        }
        return result
    }

    // MARK: - Required literal

    /// The longest run of literal characters every match contains, from the top-level sequence
    /// of a pattern without top-level alternation. Empty when there is none.
    func requiredLiteral() -> [UInt8] {
        guard root.count == 1 else { return [] }
        var best: [UInt8] = [], current: [UInt8] = []
        for node in root[0] {
            if case .atom(let set) = node, let c = set.singleChar {
                current.append(c)
                if current.count > best.count { best = current }
            } else if case .empty = node {
                continue
            } else {
                current = []
            }
        }
        return best
    }

    // MARK: - Parser

    private struct Parser {
        let bytes: [UInt8]
        var index = 0
        var caseInsensitive = false
        var groupNames: [String] = []
        var depth = 0

        mutating func parseAlternatives() throws -> [[Node]] {
            var alternatives: [[Node]] = [[]]
            while index < bytes.count {
                let c = bytes[index]
                if c == UInt8(ascii: ")") { break }
                if c == UInt8(ascii: "|") { index += 1; alternatives.append([]); continue }
                var node = try parseAtom()
                while let (min, max) = try parseQuantifier() {
                    if case .empty = node { throw SyntaxError(message: "quantifier after an anchor or lookaround", offset: index) }
                    if case .quantified = node { /* a++ or a*? handled as modifiers below */ }
                    node = .quantified(node, min: min, max: max)
                }
                alternatives[alternatives.count - 1].append(node)
            }
            return alternatives
        }

        mutating func parseQuantifier() throws -> (Int, Int?)? {
            guard index < bytes.count else { return nil }
            let start = index
            var result: (Int, Int?)
            switch bytes[index] {
            case UInt8(ascii: "*"): result = (0, nil); index += 1
            case UInt8(ascii: "+"): result = (1, nil); index += 1
            case UInt8(ascii: "?"): result = (0, 1); index += 1
            case UInt8(ascii: "{"):
                index += 1
                guard let min = readInt() else { index = start; return nil }
                var max: Int? = min
                if index < bytes.count, bytes[index] == UInt8(ascii: ",") { index += 1; max = readInt() }
                guard index < bytes.count, bytes[index] == UInt8(ascii: "}") else {
                    throw SyntaxError(message: "unterminated {n,m} quantifier", offset: start)
                }
                index += 1
                if let max, max < min { throw SyntaxError(message: "quantifier {\(min),\(max)} has max below min", offset: start) }
                result = (min, max)
            default: return nil
            }
            // Lazy (`*?`) and possessive (`*+`) modifiers do not change the shape we judge.
            if index < bytes.count, bytes[index] == UInt8(ascii: "?") || bytes[index] == UInt8(ascii: "+") { index += 1 }
            return result
        }

        mutating func readInt() -> Int? {
            var value = 0, digits = 0
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39, digits < 6 {
                value = value * 10 + Int(bytes[index] - 0x30); index += 1; digits += 1
            }
            return digits == 0 ? nil : value
        }

        mutating func parseAtom() throws -> Node {
            let start = index
            let c = bytes[index]
            index += 1
            switch c {
            case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"):
                throw SyntaxError(message: "quantifier '\(Character(UnicodeScalar(c)))' has nothing to repeat", offset: start)
            case UInt8(ascii: "^"), UInt8(ascii: "$"): return .empty
            case UInt8(ascii: "."): return .atom(.all)
            case UInt8(ascii: "["): return .atom(try parseClass())
            case UInt8(ascii: "\\"): return try parseEscape(inClass: false).map { .atom($0) } ?? .empty
            case UInt8(ascii: "("):
                depth += 1
                guard depth < 100 else { throw SyntaxError(message: "groups nested too deeply", offset: start) }
                var lookaround = false
                if index < bytes.count, bytes[index] == UInt8(ascii: "?") {
                    index += 1
                    guard index < bytes.count else { throw SyntaxError(message: "unterminated group", offset: start) }
                    switch bytes[index] {
                    case UInt8(ascii: ":"), UInt8(ascii: ">"): index += 1
                    case UInt8(ascii: "="), UInt8(ascii: "!"): index += 1; lookaround = true
                    case UInt8(ascii: "<"):
                        index += 1
                        if index < bytes.count, bytes[index] == UInt8(ascii: "=") || bytes[index] == UInt8(ascii: "!") {
                            index += 1; lookaround = true
                        } else {
                            let nameStart = index
                            while index < bytes.count, bytes[index] != UInt8(ascii: ">") { index += 1 }
                            guard index < bytes.count else { throw SyntaxError(message: "unterminated group name", offset: start) }
                            groupNames.append(String(decoding: bytes[nameStart..<index], as: UTF8.self))
                            index += 1
                        }
                    default:
                        // Inline flags: (?i) or (?i:...).
                        var flags: [UInt8] = []
                        while index < bytes.count, bytes[index] != UInt8(ascii: ")"), bytes[index] != UInt8(ascii: ":") {
                            flags.append(bytes[index]); index += 1
                        }
                        guard index < bytes.count else { throw SyntaxError(message: "unterminated flag group", offset: start) }
                        if flags.contains(UInt8(ascii: "i")) { caseInsensitive = true }
                        if bytes[index] == UInt8(ascii: ")") { index += 1; depth -= 1; return .empty }
                        index += 1
                    }
                }
                let inner = try parseAlternatives()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ")") else {
                    throw SyntaxError(message: "missing closing ')'", offset: start)
                }
                index += 1
                depth -= 1
                return lookaround ? .empty : .group(inner)
            case UInt8(ascii: ")"):
                throw SyntaxError(message: "unmatched ')'", offset: start)
            default:
                return .atom(.char(c))
            }
        }

        /// Escape after a backslash; nil for zero-width escapes (\b, \B, \A, \z, \Z, \G).
        mutating func parseEscape(inClass: Bool) throws -> CharSet? {
            guard index < bytes.count else { throw SyntaxError(message: "trailing backslash", offset: index - 1) }
            let c = bytes[index]
            index += 1
            switch c {
            case UInt8(ascii: "d"): return .digits
            case UInt8(ascii: "D"): return CharSet.digits.inverted
            case UInt8(ascii: "w"): return .word
            case UInt8(ascii: "W"): return CharSet.word.inverted
            case UInt8(ascii: "s"): return .space
            case UInt8(ascii: "S"): return CharSet.space.inverted
            case UInt8(ascii: "b"), UInt8(ascii: "B"), UInt8(ascii: "A"), UInt8(ascii: "z"), UInt8(ascii: "Z"), UInt8(ascii: "G"):
                return inClass ? .char(0x08) : nil
            case UInt8(ascii: "n"): return .char(0x0a)
            case UInt8(ascii: "t"): return .char(0x09)
            case UInt8(ascii: "r"): return .char(0x0d)
            case UInt8(ascii: "x"), UInt8(ascii: "u"), UInt8(ascii: "p"), UInt8(ascii: "P"), UInt8(ascii: "N"):
                // Code points and Unicode properties: skip their argument, treat as any character.
                if index < bytes.count, bytes[index] == UInt8(ascii: "{") {
                    while index < bytes.count, bytes[index] != UInt8(ascii: "}") { index += 1 }
                    index = Swift.min(index + 1, bytes.count)
                } else if c == UInt8(ascii: "x") || c == UInt8(ascii: "u") {
                    index = Swift.min(index + (c == UInt8(ascii: "x") ? 2 : 4), bytes.count)
                }
                return .all
            case 0x30...0x39:
                return .all   // back-reference or octal: be conservative
            default:
                if (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) {
                    throw SyntaxError(message: "unknown escape \\\(Character(UnicodeScalar(c)))", offset: index - 2)
                }
                return .char(c)
            }
        }

        mutating func parseClass() throws -> CharSet {
            let start = index - 1
            var set = CharSet()
            var negated = false
            if index < bytes.count, bytes[index] == UInt8(ascii: "^") { negated = true; index += 1 }
            var first = true
            while true {
                guard index < bytes.count else { throw SyntaxError(message: "missing closing ']' of character class", offset: start) }
                var c = bytes[index]
                if c == UInt8(ascii: "]") && !first { index += 1; break }
                first = false
                if c == UInt8(ascii: "[") {
                    // POSIX classes and nested sets: treat as any character (conservative).
                    let inner = try { index += 1; return try parseClass() }()
                    set = set.union(inner.union(.all)); continue
                }
                index += 1
                if c == UInt8(ascii: "\\") {
                    guard let escaped = try parseEscape(inClass: true) else { continue }
                    if let single = escaped.singleChar { c = single } else { set = set.union(escaped); continue }
                }
                if index + 1 < bytes.count, bytes[index] == UInt8(ascii: "-"), bytes[index + 1] != UInt8(ascii: "]") {
                    index += 1
                    var end = bytes[index]
                    index += 1
                    if end == UInt8(ascii: "\\"), let escaped = try parseEscape(inClass: true), let single = escaped.singleChar { end = single }
                    guard c <= end else { throw SyntaxError(message: "character class range out of order", offset: index - 3) }
                    set.insertRange(c, Swift.min(end, 127))
                    if end > 127 { set.nonASCII = true }
                } else {
                    set.insert(c)
                }
            }
            return negated ? set.inverted : set
        }
    }
}
