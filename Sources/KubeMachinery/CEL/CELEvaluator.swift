import Foundation
import KubeCore

/// Walks a ``CELExpr`` tree for one evaluation.
///
/// Errors are thrown as ``CELError`` but behave as CEL error values where CEL says so: `&&`,
/// `||`, `all` and `exists` evaluate both sides and let a decisive `false`/`true` win over an
/// error in either position (commutative short-circuit). Every node visited and every element a
/// builtin walks costs a step; past ``maxSteps`` evaluation stops with a resource-limit error
/// that nothing absorbs. Recursion is bounded by the parser's tree-height limit.
struct CELInterpreter {
    let maxSteps: Int
    private(set) var steps = 0
    /// Variables bound by macros, innermost last, then `self` and `oldSelf`.
    private var scopes: [(name: String, value: CELValue)]
    private let stack = CELStackGuard()

    init(selfValue: CELValue, oldSelf: CELValue?, maxSteps: Int) {
        var bindings: [(name: String, value: CELValue)] = [("self", selfValue)]
        if let oldSelf { bindings.append(("oldSelf", oldSelf)) }
        self.init(bindings: bindings, maxSteps: maxSteps)
    }

    /// An evaluation with the given top-level variables (`object`, `request`, `authorizer`...).
    init(bindings: [(name: String, value: CELValue)], maxSteps: Int) {
        self.maxSteps = maxSteps
        self.scopes = bindings
    }

    /// Adds `count` to the step counter, failing once the limit is passed.
    mutating func charge(_ count: Int, at position: Int) throws {
        steps += max(1, count)
        if steps > maxSteps {
            throw CELError(message: "evaluation exceeded the cost limit of \(maxSteps) steps", position: position, isResourceLimit: true)
        }
    }

    /// Evaluates `expr`, returning a non-fatal error as a value instead of throwing it.
    private mutating func attempt(_ expr: CELExpr) throws -> Result<CELValue, CELError> {
        do {
            return .success(try eval(expr))
        } catch let error as CELError where !error.isResourceLimit {
            return .failure(error)
        }
    }

    /// Evaluates `expr`. Kept to a thin dispatch so each level of recursion costs little stack,
    /// even in debug builds; the work happens in the helpers below.
    mutating func eval(_ expr: CELExpr) throws -> CELValue {
        try charge(1, at: expr.position)
        guard stack.hasRoom() else {
            throw CELError(message: "expression nested too deeply for the available stack", position: expr.position, isResourceLimit: true)
        }
        switch expr.kind {
        case .literal(let value): return value
        case .identifier(let name): return try lookup(name, at: expr.position)
        case .select, .has, .index, .matches: return try evalAccess(expr)
        case .call: return try evalCall(expr)
        case .list, .map: return try evalConstruction(expr)
        case .binary: return try evalBinary(expr)
        case .not, .negate, .and, .or, .conditional: return try evalOperator(expr)
        case .comprehension: return try evalComprehension(expr)
        }
    }

    @inline(never)
    private mutating func evalAccess(_ expr: CELExpr) throws -> CELValue {
        let at = expr.position
        switch expr.kind {
        case .select(let operand, let field):
            return try select(field, from: try eval(operand), at: at)
        case .has(let operand, let field):
            guard let container = try evalPresence(operand) else { return .bool(false) }
            switch container {
            case .map(let members): return .bool(members[field] != nil)
            case .null: return .bool(false)
            default:
                throw CELError(message: "has() cannot test field '\(field)' of a value of type \(container.typeName)", position: at)
            }
        case .index(let operand, let key):
            return try index(try eval(operand), by: try eval(key), at: at)
        case .matches(let subject, let regex):
            guard case .string(let s) = try eval(subject) else {
                throw CELError(message: "matches() requires a string", position: at)
            }
            try charge(s.utf8.count / 16, at: at)
            return .bool(regex.matches(s))
        default:
            return try eval(expr)
        }
    }

    @inline(never)
    private mutating func evalCall(_ expr: CELExpr) throws -> CELValue {
        guard case .call(let name, let target, let args) = expr.kind else { return try eval(expr) }
        let receiver = try target.map { try eval($0) }
        var values: [CELValue] = []
        values.reserveCapacity(args.count)
        for arg in args { values.append(try eval(arg)) }
        return try CELFunctions.call(name, target: receiver, args: values, at: expr.position, interpreter: &self)
    }

    @inline(never)
    private mutating func evalConstruction(_ expr: CELExpr) throws -> CELValue {
        switch expr.kind {
        case .list(let items):
            var values: [CELValue] = []
            values.reserveCapacity(items.count)
            for item in items { values.append(try eval(item)) }
            return .list(values)
        case .map(let entries):
            var members: [String: CELValue] = [:]
            for entry in entries {
                guard case .string(let key) = try eval(entry.key) else {
                    throw CELError(message: "map keys must be strings", position: entry.key.position)
                }
                guard members[key] == nil else {
                    throw CELError(message: "duplicate map key '\(key)'", position: entry.key.position)
                }
                members[key] = try eval(entry.value)
            }
            return .map(members)
        default:
            return try eval(expr)
        }
    }

    @inline(never)
    private mutating func evalBinary(_ expr: CELExpr) throws -> CELValue {
        guard case .binary(let op, let lhs, let rhs) = expr.kind else { return try eval(expr) }
        let left = try eval(lhs)
        let right = try eval(rhs)
        return try CELOperators.apply(op, left, right, at: expr.position, interpreter: &self)
    }

    @inline(never)
    private mutating func evalComprehension(_ expr: CELExpr) throws -> CELValue {
        guard case .comprehension(let macro, let range, let variable, let predicate, let transform) = expr.kind else {
            return try eval(expr)
        }
        return try comprehension(macro, range: range, variable: variable, predicate: predicate, transform: transform, at: expr.position)
    }

    @inline(never)
    private mutating func evalOperator(_ expr: CELExpr) throws -> CELValue {
        let at = expr.position
        switch expr.kind {
        case .not(let operand):
            guard case .bool(let b) = try eval(operand) else {
                throw CELError(message: "no such overload: !_ applies to bool", position: at)
            }
            return .bool(!b)
        case .negate(let operand):
            return try CELOperators.negate(try eval(operand), at: at)
        case .and(let lhs, let rhs):
            return try logical(lhs, rhs, decisive: false, at: at)
        case .or(let lhs, let rhs):
            return try logical(lhs, rhs, decisive: true, at: at)
        case .conditional(let condition, let whenTrue, let whenFalse):
            guard case .bool(let b) = try eval(condition) else {
                throw CELError(message: "ternary condition must be a bool", position: condition.position)
            }
            return try eval(b ? whenTrue : whenFalse)
        default:
            return try eval(expr)
        }
    }

    private func lookup(_ name: String, at position: Int) throws -> CELValue {
        if let bound = scopes.last(where: { $0.name == name }) { return bound.value }
        if name == "oldSelf" {
            throw CELError(message: "oldSelf is only available when updating an existing object", position: position)
        }
        if CELFunctions.typeNames.contains(name) { return .type(name) }
        throw CELError(message: "undeclared reference to '\(name)'", position: position)
    }

    private func select(_ field: String, from value: CELValue, at position: Int) throws -> CELValue {
        if case .object(let box) = value {
            let member = try CELFunctions.repositioned(at: position) { try box.object.field(field) }
            guard let member else { throw CELError(message: "no such key: \(field)", position: position) }
            return member
        }
        guard case .map(let members) = value else {
            throw CELError(message: "cannot select field '\(field)' from a value of type \(value.typeName)", position: position)
        }
        guard let member = members[field] else { throw CELError(message: "no such key: \(field)", position: position) }
        return member
    }

    /// Evaluates the operand of `has()`: a missing field anywhere along a field path yields nil
    /// (so `has(self.a.b)` is false when `a` is absent) instead of an error.
    private mutating func evalPresence(_ expr: CELExpr) throws -> CELValue? {
        guard case .select(let operand, let field) = expr.kind else { return try eval(expr) }
        try charge(1, at: expr.position)
        guard let container = try evalPresence(operand) else { return nil }
        switch container {
        case .map(let members): return members[field]
        case .null: return nil
        default: return try select(field, from: container, at: expr.position)
        }
    }

    private func index(_ container: CELValue, by key: CELValue, at position: Int) throws -> CELValue {
        switch (container, key) {
        case (.list(let items), _):
            let i: Int64
            switch key {
            case .int(let v): i = v
            case .uint(let v) where v <= UInt64(Int64.max): i = Int64(v)
            case .double(let d) where d.rounded() == d && abs(d) < 9e18: i = Int64(d)
            default: throw CELError(message: "list index must be an integer, not \(key.typeName)", position: position)
            }
            guard i >= 0, i < Int64(items.count) else {
                throw CELError(message: "index out of range: \(i)", position: position)
            }
            return items[Int(i)]
        case (.map(let members), .string(let k)):
            guard let value = members[k] else { throw CELError(message: "no such key: \(k)", position: position) }
            return value
        case (.map, _):
            throw CELError(message: "no such key: \(CELFunctions.display(key))", position: position)
        default:
            throw CELError(message: "a value of type \(container.typeName) cannot be indexed", position: position)
        }
    }

    /// `&&` (decisive value false) and `||` (decisive value true) with CEL's commutative
    /// handling of errors: the decisive value on either side wins; otherwise the first error.
    private mutating func logical(_ lhs: CELExpr, _ rhs: CELExpr, decisive: Bool, at position: Int) throws -> CELValue {
        let left = try attempt(lhs)
        if case .success(.bool(decisive)) = left { return .bool(decisive) }
        let right = try attempt(rhs)
        if case .success(.bool(decisive)) = right { return .bool(decisive) }
        for side in [left, right] {
            switch side {
            case .failure(let error): throw error
            case .success(.bool): continue
            case .success(let other):
                throw CELError(message: "no such overload: \(decisive ? "||" : "&&") applies to bool, not \(other.typeName)", position: position)
            }
        }
        return .bool(!decisive)
    }

    private mutating func comprehension(
        _ macro: CELMacro, range: CELExpr, variable: String, predicate: CELExpr?, transform: CELExpr?, at position: Int
    ) throws -> CELValue {
        let elements: [CELValue]
        switch try eval(range) {
        case .list(let items): elements = items
        // Macros over a map range over its keys; sorted so `map()` results are deterministic.
        case .map(let members): elements = members.keys.sorted().map(CELValue.string)
        case let other:
            throw CELError(message: "\(macro.rawValue)() applies to lists and maps, not \(other.typeName)", position: position)
        }
        scopes.append((variable, .null))
        defer { scopes.removeLast() }
        var firstError: CELError?
        var count = 0
        var results: [CELValue] = []
        for element in elements {
            try charge(1, at: position)
            scopes[scopes.count - 1].value = element
            var keep = true
            if let predicate {
                switch try attempt(predicate) {
                case .success(.bool(let b)): keep = b
                case .success(let other):
                    let error = CELError(message: "\(macro.rawValue)() predicate must return bool, not \(other.typeName)", position: predicate.position)
                    if macro == .all || macro == .exists { firstError = firstError ?? error; continue }
                    throw error
                case .failure(let error):
                    if macro == .all || macro == .exists { firstError = firstError ?? error; continue }
                    throw error
                }
            }
            switch macro {
            case .all where !keep: return .bool(false)
            case .exists where keep: return .bool(true)
            case .existsOne where keep: count += 1
            case .filter where keep: results.append(element)
            case .map where keep:
                if let transform { results.append(try eval(transform)) }
            default: break
            }
        }
        if let firstError { throw firstError }
        switch macro {
        case .all: return .bool(true)
        case .exists: return .bool(false)
        case .existsOne: return .bool(count == 1)
        case .map, .filter: return .list(results)
        }
    }
}
