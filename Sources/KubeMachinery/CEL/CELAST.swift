import Foundation
import KubeCore

/// The parsed form of a CEL rule: an immutable tree, shared freely between threads.
///
/// Every node keeps the source offset it came from (for error positions) and its height, so the
/// parser can refuse trees too deep to evaluate on a small thread stack.
struct CELExpr: Sendable {
    indirect enum Kind: Sendable {
        case literal(CELValue)
        case identifier(String)
        /// `operand.field`
        case select(CELExpr, String)
        /// `has(operand.field)`
        case has(CELExpr, String)
        /// `operand[index]`
        case index(CELExpr, CELExpr)
        /// A global (`size(x)`) or receiver-style (`x.size()`) function call.
        case call(String, target: CELExpr?, args: [CELExpr])
        /// `x.matches('literal')` with the pattern compiled once at parse time.
        case matches(CELExpr, CELRegex)
        case list([CELExpr])
        case map([(key: CELExpr, value: CELExpr)])
        case not(CELExpr)
        case negate(CELExpr)
        case binary(CELBinaryOperator, CELExpr, CELExpr)
        case and(CELExpr, CELExpr)
        case or(CELExpr, CELExpr)
        case conditional(CELExpr, CELExpr, CELExpr)
        /// `range.all(x, p)` and the other list/map macros. `transform` is set only for `map`.
        case comprehension(CELMacro, range: CELExpr, variable: String, predicate: CELExpr?, transform: CELExpr?)
    }

    let kind: Kind
    let position: Int
    let height: Int

    init(_ kind: Kind, at position: Int) {
        self.kind = kind
        self.position = position
        self.height = 1 + CELExpr.children(of: kind).reduce(0) { max($0, $1.height) }
    }

    private static func children(of kind: Kind) -> [CELExpr] {
        switch kind {
        case .literal, .identifier: return []
        case .select(let e, _), .has(let e, _), .matches(let e, _), .not(let e), .negate(let e): return [e]
        case .index(let a, let b), .binary(_, let a, let b), .and(let a, let b), .or(let a, let b): return [a, b]
        case .call(_, let target, let args): return (target.map { [$0] } ?? []) + args
        case .list(let items): return items
        case .map(let entries): return entries.flatMap { [$0.key, $0.value] }
        case .conditional(let a, let b, let c): return [a, b, c]
        case .comprehension(_, let range, _, let predicate, let transform):
            return [range] + (predicate.map { [$0] } ?? []) + (transform.map { [$0] } ?? [])
        }
    }
}

enum CELBinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", remainder = "%"
    case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    case `in` = "in"
}

enum CELMacro: String, Sendable {
    case all, exists
    case existsOne = "exists_one"
    case map, filter
}

/// A regular expression compiled once and shared. `NSRegularExpression` is immutable and
/// documented as safe to use from several threads, hence the unchecked conformance.
final class CELRegex: @unchecked Sendable {
    let pattern: String
    let regex: NSRegularExpression

    init(_ pattern: String) throws {
        self.pattern = pattern
        self.regex = try NSRegularExpression(pattern: pattern)
    }

    /// RE2 `matches` semantics: true if the pattern matches any part of the string.
    func matches(_ string: String) -> Bool {
        let range = NSRange(string.startIndex..<string.endIndex, in: string)
        return regex.firstMatch(in: string, options: [], range: range) != nil
    }
}
