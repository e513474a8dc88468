import Foundation
import KubeCore

/// A CEL runtime value.
///
/// JSON maps onto it as Kubernetes does for custom resources: integers → `int`, numbers →
/// `double`, objects → `map` with string keys, arrays → `list`, `null` → `null`.
/// `duration` is held in seconds and `timestamp` as a `Date`; `type` is the value of a type
/// identifier or of `type(x)` (e.g. `type("int")`).
///
/// Swift `==` on this type is structural (handy for tests). CEL's own `==`, which compares
/// numbers across `int`/`uint`/`double`, is ``celEquals(_:)``.
public enum CELValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    case list([CELValue])
    case map([String: CELValue])
    case duration(Double)
    case timestamp(Date)
    case type(String)
    /// An opaque value with methods (``CELObject``): the `authorizer` and what it returns.
    case object(CELObjectBox)

    /// Converts a JSON document (a custom resource or part of one) into a CEL value.
    public init(json: JSONValue) {
        switch json {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let a): self = .list(a.map(CELValue.init(json:)))
        case .object(let o): self = .map(o.mapValues(CELValue.init(json:)))
        }
    }

    /// The CEL type name: `int`, `uint`, `double`, `string`, `bytes`, `bool`, `null_type`, `list`,
    /// `map`, `google.protobuf.Duration`, `google.protobuf.Timestamp`, `type`.
    public var typeName: String {
        switch self {
        case .null: return "null_type"
        case .bool: return "bool"
        case .int: return "int"
        case .uint: return "uint"
        case .double: return "double"
        case .string: return "string"
        case .bytes: return "bytes"
        case .list: return "list"
        case .map: return "map"
        case .duration: return "google.protobuf.Duration"
        case .timestamp: return "google.protobuf.Timestamp"
        case .type: return "type"
        case .object(let box): return box.object.celTypeName
        }
    }

    /// CEL equality (heterogeneous, as cel-go evaluates it for Kubernetes): numbers compare by
    /// value across `int`, `uint` and `double`; values of different kinds are unequal; lists and
    /// maps compare element by element.
    public func celEquals(_ other: CELValue) -> Bool {
        switch (self, other) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.string(a), .string(b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case let (.bytes(a), .bytes(b)): return a == b
        case let (.duration(a), .duration(b)): return a == b
        case let (.timestamp(a), .timestamp(b)): return a == b
        case let (.type(a), .type(b)): return a == b
        case let (.object(a), .object(b)): return a == b
        case let (.list(a), .list(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.celEquals($1) }
        case let (.map(a), .map(b)):
            guard a.count == b.count else { return false }
            for (key, value) in a {
                guard let otherValue = b[key], value.celEquals(otherValue) else { return false }
            }
            return true
        default:
            if let order = CELValue.compareNumbers(self, other) { return order == 0 }
            return false
        }
    }

    /// Orders two numbers of any numeric kinds exactly (no rounding of large ints through
    /// `Double`); `nil` if either is not a number or a NaN is involved.
    static func compareNumbers(_ a: CELValue, _ b: CELValue) -> Int? {
        switch (a, b) {
        case let (.int(x), .int(y)): return x < y ? -1 : (x > y ? 1 : 0)
        case let (.uint(x), .uint(y)): return x < y ? -1 : (x > y ? 1 : 0)
        case let (.double(x), .double(y)):
            if x.isNaN || y.isNaN { return nil }
            return x < y ? -1 : (x > y ? 1 : 0)
        case let (.int(x), .uint(y)):
            if x < 0 { return -1 }
            return compareNumbers(.uint(UInt64(x)), .uint(y))
        case (.uint, .int):
            return compareNumbers(b, a).map { -$0 }
        case let (.int(x), .double(y)):
            if y.isNaN { return nil }
            if y >= 9.223372036854775807e18 { return -1 }
            if y < -9.223372036854775808e18 { return 1 }
            let whole = Int64(y.rounded(.down))
            if x != whole { return x < whole ? -1 : 1 }
            return Double(whole) == y ? 0 : -1
        case (.double, .int):
            return compareNumbers(b, a).map { -$0 }
        case let (.uint(x), .double(y)):
            if y.isNaN { return nil }
            if y < 0 { return 1 }
            if y >= 1.8446744073709551615e19 { return -1 }
            let whole = UInt64(y.rounded(.down))
            if x != whole { return x < whole ? -1 : 1 }
            return Double(whole) == y ? 0 : -1
        case (.double, .uint):
            return compareNumbers(b, a).map { -$0 }
        default:
            return nil
        }
    }

    /// CEL ordering for `<`, `<=`, `>`, `>=`; `nil` when the two values cannot be ordered.
    static func compare(_ a: CELValue, _ b: CELValue) -> Int? {
        func order<T: Comparable>(_ x: T, _ y: T) -> Int { x < y ? -1 : (x > y ? 1 : 0) }
        switch (a, b) {
        case let (.string(x), .string(y)):
            // Code-point order, as Go compares strings (Swift's `<` uses canonical equivalence).
            if x.unicodeScalars.elementsEqual(y.unicodeScalars) { return 0 }
            return x.unicodeScalars.lexicographicallyPrecedes(y.unicodeScalars, by: { $0.value < $1.value }) ? -1 : 1
        case let (.bytes(x), .bytes(y)):
            if x == y { return 0 }
            return x.lexicographicallyPrecedes(y) ? -1 : 1
        case let (.bool(x), .bool(y)): return x == y ? 0 : (x ? 1 : -1)
        case let (.duration(x), .duration(y)): return order(x, y)
        case let (.timestamp(x), .timestamp(y)): return order(x, y)
        default: return compareNumbers(a, b)
        }
    }
}
