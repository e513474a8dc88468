import Foundation
import KubeCore

/// CEL's arithmetic, comparison and membership operators.
///
/// Arithmetic is defined only between values of the same kind (`1 + 1.0` is an error, as in
/// CEL); `int` and `uint` arithmetic fails on overflow instead of wrapping. Comparisons order
/// numbers across `int`, `uint` and `double`. Durations and timestamps support `+`, `-` and
/// comparison in the combinations CEL defines.
enum CELOperators {
    /// Durations CEL can represent: those of Go's `time.Duration` (±2^63 ns, about 292 years).
    static let maxDurationSeconds = 9_223_372_036.854775807
    /// Timestamps CEL can represent: years 0001 to 9999.
    static let minTimestamp = Date(timeIntervalSince1970: -62_135_596_800)
    static let maxTimestamp = Date(timeIntervalSince1970: 253_402_300_799.999999)

    static func overload(_ op: String, _ a: CELValue, _ b: CELValue, at position: Int) -> CELError {
        CELError(message: "no such overload: \(a.typeName) \(op) \(b.typeName)", position: position)
    }

    static func checkedDuration(_ seconds: Double, at position: Int) throws -> CELValue {
        guard seconds.isFinite, abs(seconds) <= maxDurationSeconds else {
            throw CELError(message: "duration out of range", position: position)
        }
        return .duration(seconds)
    }

    static func checkedTimestamp(_ date: Date, at position: Int) throws -> CELValue {
        guard date >= minTimestamp, date <= maxTimestamp else {
            throw CELError(message: "timestamp out of range", position: position)
        }
        return .timestamp(date)
    }

    static func negate(_ value: CELValue, at position: Int) throws -> CELValue {
        switch value {
        case .int(let i):
            guard i != Int64.min else { throw CELError(message: "integer overflow", position: position) }
            return .int(-i)
        case .double(let d): return .double(-d)
        case .duration(let d): return .duration(-d)
        default: throw CELError(message: "no such overload: -\(value.typeName)", position: position)
        }
    }

    static func apply(
        _ op: CELBinaryOperator, _ a: CELValue, _ b: CELValue, at position: Int, interpreter: inout CELInterpreter
    ) throws -> CELValue {
        switch op {
        case .add: return try add(a, b, at: position, interpreter: &interpreter)
        case .subtract: return try subtract(a, b, at: position)
        case .multiply, .divide, .remainder: return try multiplicative(op, a, b, at: position)
        case .equal, .notEqual:
            try interpreter.charge(cost(a) + cost(b), at: position)
            return .bool(a.celEquals(b) == (op == .equal))
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            guard let order = CELValue.compare(a, b) else {
                // NaN compares false with everything rather than failing.
                if isNumber(a), isNumber(b) { return .bool(false) }
                throw overload(op.rawValue, a, b, at: position)
            }
            switch op {
            case .less: return .bool(order < 0)
            case .lessOrEqual: return .bool(order <= 0)
            case .greater: return .bool(order > 0)
            default: return .bool(order >= 0)
            }
        case .in:
            switch b {
            case .list(let items):
                try interpreter.charge(items.count, at: position)
                return .bool(items.contains { $0.celEquals(a) })
            case .map(let members):
                if case .string(let key) = a { return .bool(members[key] != nil) }
                return .bool(false)
            default:
                throw overload("in", a, b, at: position)
            }
        }
    }

    private static func isNumber(_ value: CELValue) -> Bool {
        switch value {
        case .int, .uint, .double: return true
        default: return false
        }
    }

    /// Work proportional to a value's size, charged for operations that walk it.
    static func cost(_ value: CELValue) -> Int {
        switch value {
        case .string(let s): return s.utf8.count / 64
        case .bytes(let b): return b.count / 64
        case .list(let l): return l.count
        case .map(let m): return m.count
        default: return 0
        }
    }

    private static func add(_ a: CELValue, _ b: CELValue, at position: Int, interpreter: inout CELInterpreter) throws -> CELValue {
        switch (a, b) {
        case let (.int(x), .int(y)):
            let (r, overflow) = x.addingReportingOverflow(y)
            if overflow { throw CELError(message: "integer overflow", position: position) }
            return .int(r)
        case let (.uint(x), .uint(y)):
            let (r, overflow) = x.addingReportingOverflow(y)
            if overflow { throw CELError(message: "unsigned integer overflow", position: position) }
            return .uint(r)
        case let (.double(x), .double(y)): return .double(x + y)
        case let (.string(x), .string(y)):
            try interpreter.charge(cost(a) + cost(b), at: position)
            return .string(x + y)
        case let (.bytes(x), .bytes(y)):
            try interpreter.charge(cost(a) + cost(b), at: position)
            return .bytes(x + y)
        case let (.list(x), .list(y)):
            try interpreter.charge(x.count + y.count, at: position)
            return .list(x + y)
        case let (.duration(x), .duration(y)): return try checkedDuration(x + y, at: position)
        case let (.timestamp(t), .duration(d)), let (.duration(d), .timestamp(t)):
            return try checkedTimestamp(t.addingTimeInterval(d), at: position)
        default: throw overload("+", a, b, at: position)
        }
    }

    private static func subtract(_ a: CELValue, _ b: CELValue, at position: Int) throws -> CELValue {
        switch (a, b) {
        case let (.int(x), .int(y)):
            let (r, overflow) = x.subtractingReportingOverflow(y)
            if overflow { throw CELError(message: "integer overflow", position: position) }
            return .int(r)
        case let (.uint(x), .uint(y)):
            let (r, overflow) = x.subtractingReportingOverflow(y)
            if overflow { throw CELError(message: "unsigned integer overflow", position: position) }
            return .uint(r)
        case let (.double(x), .double(y)): return .double(x - y)
        case let (.duration(x), .duration(y)): return try checkedDuration(x - y, at: position)
        case let (.timestamp(x), .timestamp(y)): return try checkedDuration(x.timeIntervalSince(y), at: position)
        case let (.timestamp(t), .duration(d)): return try checkedTimestamp(t.addingTimeInterval(-d), at: position)
        default: throw overload("-", a, b, at: position)
        }
    }

    private static func multiplicative(_ op: CELBinaryOperator, _ a: CELValue, _ b: CELValue, at position: Int) throws -> CELValue {
        switch (a, b) {
        case let (.int(x), .int(y)):
            let result: (partialValue: Int64, overflow: Bool)
            switch op {
            case .multiply: result = x.multipliedReportingOverflow(by: y)
            case .divide:
                guard y != 0 else { throw CELError(message: "division by zero", position: position) }
                result = x.dividedReportingOverflow(by: y)
            default:
                guard y != 0 else { throw CELError(message: "modulus by zero", position: position) }
                result = x.remainderReportingOverflow(dividingBy: y)
            }
            if result.overflow { throw CELError(message: "integer overflow", position: position) }
            return .int(result.partialValue)
        case let (.uint(x), .uint(y)):
            switch op {
            case .multiply:
                let (r, overflow) = x.multipliedReportingOverflow(by: y)
                if overflow { throw CELError(message: "unsigned integer overflow", position: position) }
                return .uint(r)
            case .divide:
                guard y != 0 else { throw CELError(message: "division by zero", position: position) }
                return .uint(x / y)
            default:
                guard y != 0 else { throw CELError(message: "modulus by zero", position: position) }
                return .uint(x % y)
            }
        case let (.double(x), .double(y)):
            switch op {
            case .multiply: return .double(x * y)
            case .divide: return .double(x / y)
            default: throw overload("%", a, b, at: position)
            }
        default:
            throw overload(op.rawValue, a, b, at: position)
        }
    }
}
