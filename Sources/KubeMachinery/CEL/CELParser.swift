import Foundation
import KubeCore

/// Recursive-descent parser for CEL, producing a ``CELExpr`` tree.
///
/// Precedence, lowest first: `?:` (right-associative), `||`, `&&`, relations
/// (`== != < <= > >= in`), `+ -`, `* / %`, unary `! -`, then member access, indexing and calls.
/// Macros (`has`, `all`, `exists`, `exists_one`, `map`, `filter`) are expanded here into
/// dedicated nodes. Nesting is limited (``maxHeight``) so that neither parsing nor evaluation can
/// exhaust a thread's stack; chains of `&&`/`||` are built balanced so long conjunctions of
/// rules stay shallow.
struct CELParser {
    /// Deepest tree accepted. Kept well below what a 512 KiB thread stack can evaluate.
    static let maxHeight = 128

    private let tokens: [CELToken]
    private var index = 0
    private var depth = 0
    private let stack = CELStackGuard()

    init(tokens: [CELToken]) { self.tokens = tokens }

    static func parse(_ scalars: [Unicode.Scalar]) throws -> CELExpr {
        var parser = CELParser(tokens: try CELLexer.tokenize(scalars))
        let expr = try parser.expression()
        guard case .end = parser.current.kind else {
            throw parser.unexpected(expecting: "end of expression")
        }
        return expr
    }

    private static let reserved: Set<String> = [
        "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop",
        "package", "namespace", "return", "var", "void", "while",
    ]

    // MARK: Token helpers

    private var current: CELToken { tokens[min(index, tokens.count - 1)] }

    private func isPunct(_ p: String) -> Bool {
        if case .punct(let q) = current.kind { return q == p }
        return false
    }

    private mutating func accept(_ p: String) -> Bool {
        guard isPunct(p) else { return false }
        index += 1
        return true
    }

    private mutating func expect(_ p: String) throws {
        guard accept(p) else { throw unexpected(expecting: "'\(p)'") }
    }

    private func describe(_ token: CELToken) -> String {
        switch token.kind {
        case .end: return "end of input"
        case .punct(let p): return "'\(p)'"
        case .identifier(let name): return "'\(name)'"
        case .string: return "string literal"
        case .bytes: return "bytes literal"
        default: return "number literal"
        }
    }

    private func unexpected(expecting what: String) -> CELError {
        CELError(message: "syntax error: expected \(what) but found \(describe(current))", position: current.position)
    }

    private func node(_ kind: CELExpr.Kind, at position: Int) throws -> CELExpr {
        let expr = CELExpr(kind, at: position)
        guard expr.height <= Self.maxHeight else {
            throw CELError(message: "expression nested too deeply (limit \(Self.maxHeight))", position: position)
        }
        return expr
    }

    /// Guards the recursion of the parser itself (e.g. `((((...))))` or `!!!!...`).
    private mutating func descend() throws {
        depth += 1
        if depth > Self.maxHeight || !stack.hasRoom() {
            throw CELError(message: "expression nested too deeply (limit \(Self.maxHeight))", position: current.position)
        }
    }

    // MARK: Grammar

    mutating func expression() throws -> CELExpr {
        try descend()
        defer { depth -= 1 }
        let condition = try binary(minimumPrecedence: 1)
        guard isPunct("?") else { return condition }
        let position = current.position
        index += 1
        let whenTrue = try binary(minimumPrecedence: 1)
        try expect(":")
        let whenFalse = try expression()
        return try node(.conditional(condition, whenTrue, whenFalse), at: position)
    }

    /// Binary operators by precedence climbing (one function rather than one per level keeps the
    /// parser's stack use per nesting level small). Runs of the same `&&` or `||` are collected
    /// and combined as a balanced tree.
    private mutating func binary(minimumPrecedence: Int) throws -> CELExpr {
        var left = try unary()
        while let (op, precedence) = currentBinaryOperator(), precedence >= minimumPrecedence {
            if op == "&&" || op == "||" {
                left = try logicalChain(left, op: op, precedence: precedence)
            } else {
                left = try binaryOperation(left, op: op, precedence: precedence)
            }
        }
        return left
    }

    // The two continuations of `binary` are separate functions so that, in debug builds, a
    // nesting level only pays for the stack of the one it takes.
    @inline(never)
    private mutating func logicalChain(_ first: CELExpr, op: String, precedence: Int) throws -> CELExpr {
        var operands = [first]
        var positions: [Int] = []
        while currentBinaryOperator()?.op == op {
            positions.append(current.position)
            index += 1
            operands.append(try binary(minimumPrecedence: precedence + 1))
        }
        return try balance(operands[...], positions[...], or: op == "||")
    }

    @inline(never)
    private mutating func binaryOperation(_ left: CELExpr, op: String, precedence: Int) throws -> CELExpr {
        let position = current.position
        index += 1
        let right = try binary(minimumPrecedence: precedence + 1)
        guard let kind = Self.arithmetic[op] ?? Self.relations[op] else {
            throw CELError(message: "syntax error: unknown operator '\(op)'", position: position)
        }
        return try node(.binary(kind, left, right), at: position)
    }

    private func currentBinaryOperator() -> (op: String, precedence: Int)? {
        switch current.kind {
        case .punct(let p):
            guard let precedence = Self.precedence[p] else { return nil }
            return (p, precedence)
        case .identifier("in"):
            return ("in", 3)
        default:
            return nil
        }
    }

    private static let precedence: [String: Int] = [
        "||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3, "+": 4, "-": 4, "*": 5, "/": 5, "%": 5,
    ]

    private static let relations: [String: CELBinaryOperator] = [
        "==": .equal, "!=": .notEqual, "<": .less, "<=": .lessOrEqual, ">": .greater, ">=": .greaterOrEqual, "in": .in,
    ]

    private static let arithmetic: [String: CELBinaryOperator] = [
        "+": .add, "-": .subtract, "*": .multiply, "/": .divide, "%": .remainder,
    ]

    private func balance(_ operands: ArraySlice<CELExpr>, _ positions: ArraySlice<Int>, or: Bool) throws -> CELExpr {
        if operands.count == 1, let only = operands.first { return only }
        let mid = operands.startIndex + operands.count / 2
        let left = try balance(operands[operands.startIndex..<mid], positions[positions.startIndex..<(mid - 1)], or: or)
        let right = try balance(operands[mid...], positions[mid...], or: or)
        let position = positions[mid - 1]
        return try node(or ? .or(left, right) : .and(left, right), at: position)
    }

    private mutating func unary() throws -> CELExpr {
        if isPunct("!") || isPunct("-") { return try prefixed() }
        return try member(try primary())
    }

    @inline(never)
    private mutating func prefixed() throws -> CELExpr {
        let position = current.position
        if accept("!") {
            try descend()
            defer { depth -= 1 }
            return try node(.not(try unary()), at: position)
        }
        if accept("-") {
            // Fold the sign into a numeric literal so `-9223372036854775808` is representable.
            switch current.kind {
            case .int(let i) where !nextIsMemberAccess():
                index += 1
                return try member(try node(.literal(.int(-i)), at: position))
            case .intMagnitude(let m) where m == UInt64(Int64.max) + 1 && !nextIsMemberAccess():
                index += 1
                return try member(try node(.literal(.int(Int64.min)), at: position))
            case .double(let d) where !nextIsMemberAccess():
                index += 1
                return try member(try node(.literal(.double(-d)), at: position))
            default:
                try descend()
                defer { depth -= 1 }
                return try node(.negate(try unary()), at: position)
            }
        }
        return try member(try primary())
    }

    /// Whether the token after the current one starts a member access (`-1.size()` must negate
    /// the call's result, not the literal).
    private func nextIsMemberAccess() -> Bool {
        guard index + 1 < tokens.count, case .punct(let p) = tokens[index + 1].kind else { return false }
        return p == "." || p == "["
    }

    private mutating func member(_ start: CELExpr) throws -> CELExpr {
        var expr = start
        while true {
            let position = current.position
            if accept(".") {
                guard case .identifier(let name) = current.kind else { throw unexpected(expecting: "field name") }
                index += 1
                if accept("(") {
                    let args = try arguments(closing: ")")
                    expr = try call(name, target: expr, args: args, at: position)
                } else {
                    expr = try node(.select(expr, name), at: position)
                }
            } else if accept("[") {
                let key = try expression()
                try expect("]")
                expr = try node(.index(expr, key), at: position)
            } else {
                return expr
            }
        }
    }

    private mutating func arguments(closing: String) throws -> [CELExpr] {
        var args: [CELExpr] = []
        if accept(closing) { return args }
        repeat {
            if isPunct(closing) { break } // trailing comma
            args.append(try expression())
        } while accept(",")
        try expect(closing)
        return args
    }

    private mutating func primary() throws -> CELExpr {
        if accept("(") {
            let inner = try expression()
            try expect(")")
            return inner
        }
        return try primaryOther()
    }

    @inline(never)
    private mutating func primaryOther() throws -> CELExpr {
        let token = current
        let position = token.position
        switch token.kind {
        case .int(let i): index += 1; return try node(.literal(.int(i)), at: position)
        case .uint(let u): index += 1; return try node(.literal(.uint(u)), at: position)
        case .double(let d): index += 1; return try node(.literal(.double(d)), at: position)
        case .string(let s): index += 1; return try node(.literal(.string(s)), at: position)
        case .bytes(let b): index += 1; return try node(.literal(.bytes(b)), at: position)
        case .intMagnitude:
            throw CELError(message: "integer literal out of range for int", position: position)
        case .identifier(let name):
            index += 1
            switch name {
            case "true": return try node(.literal(.bool(true)), at: position)
            case "false": return try node(.literal(.bool(false)), at: position)
            case "null": return try node(.literal(.null), at: position)
            case "in": throw CELError(message: "syntax error: unexpected 'in'", position: position)
            default: break
            }
            if Self.reserved.contains(name) {
                throw CELError(message: "reserved identifier '\(name)'", position: position)
            }
            if accept("(") {
                return try call(name, target: nil, args: try arguments(closing: ")"), at: position)
            }
            if isPunct("{") {
                throw CELError(message: "message construction '\(name){...}' is not supported", position: current.position)
            }
            return try node(.identifier(name), at: position)
        case .punct("."):
            // A leading dot names the root scope: `.self` is `self`.
            index += 1
            guard case .identifier = current.kind else { throw unexpected(expecting: "identifier") }
            return try primary()
        case .punct("("):
            index += 1
            let inner = try expression()
            try expect(")")
            return inner
        case .punct("["):
            index += 1
            try descend()
            defer { depth -= 1 }
            return try node(.list(try arguments(closing: "]")), at: position)
        case .punct("{"):
            index += 1
            try descend()
            defer { depth -= 1 }
            var entries: [(key: CELExpr, value: CELExpr)] = []
            while !isPunct("}") {
                let key = try expression()
                try expect(":")
                entries.append((key, try expression()))
                if !accept(",") { break }
            }
            try expect("}")
            return try node(.map(entries), at: position)
        default:
            throw unexpected(expecting: "expression")
        }
    }

    /// Builds a call node, expanding macros and pre-compiling literal `matches` patterns.
    private func call(_ name: String, target: CELExpr?, args: [CELExpr], at position: Int) throws -> CELExpr {
        if name == "has" && target == nil {
            guard args.count == 1, case .select(let operand, let field) = args[0].kind else {
                throw CELError(message: "has() requires a field selection, e.g. has(self.field)", position: position)
            }
            return try node(.has(operand, field), at: position)
        }
        if let target, let macro = CELMacro(rawValue: name) {
            let arity = macro == .map ? [2, 3] : [2]
            guard arity.contains(args.count) else {
                throw CELError(message: "\(name)() takes \(arity.map(String.init).joined(separator: " or ")) arguments", position: position)
            }
            guard case .identifier(let variable) = args[0].kind else {
                throw CELError(message: "\(name)() requires a variable name as its first argument", position: args[0].position)
            }
            let predicate: CELExpr? = (macro == .map && args.count == 2) ? nil : args[1]
            let transform: CELExpr? = macro == .map ? args[args.count - 1] : nil
            return try node(.comprehension(macro, range: target, variable: variable, predicate: predicate, transform: transform), at: position)
        }
        // `duration('30s')` and `timestamp('...')` of a literal are evaluated once, here: rules
        // mostly compare against constants, and a malformed constant becomes a compile error
        // that points at it rather than a failure on every object.
        if target == nil, name == "duration" || name == "timestamp", args.count == 1,
           case .literal(let literal) = args[0].kind, case .string = literal,
           let value = try CELConversions.convert(name, literal, at: args[0].position) {
            return try node(.literal(value), at: position)
        }
        if name == "matches" {
            let subject = target ?? (args.count == 2 ? args[0] : nil)
            let patternArg = target == nil ? (args.count == 2 ? args[1] : nil) : (args.count == 1 ? args[0] : nil)
            if let subject, let patternArg, case .literal(.string(let pattern)) = patternArg.kind {
                do {
                    return try node(.matches(subject, try CELRegex(pattern)), at: position)
                } catch let error as CELError {
                    throw error
                } catch {
                    throw CELError(message: "invalid regular expression '\(pattern)'", position: patternArg.position)
                }
            }
        }
        return try node(.call(name, target: target, args: args), at: position)
    }
}
