import Foundation
import KubeCore

/// The functions a CEL rule can call: CEL's standard `size`, string tests and conversions, plus
/// the Kubernetes string and list extensions CRD authors use (`lowerAscii`, `trim`, `split`,
/// `join`, `indexOf`, `isSorted`, `sum`, ...) and the duration/timestamp getters (UTC only).
///
/// Calls are resolved at run time by name, receiver kind and argument count; a call no overload
/// fits fails with "no such overload" naming the types involved.
enum CELFunctions {
    /// Identifiers that evaluate to a type value, so `type(x) == int` works.
    static let typeNames: Set<String> = ["int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"]

    static func call(
        _ name: String, target: CELValue?, args: [CELValue], at position: Int, interpreter: inout CELInterpreter
    ) throws -> CELValue {
        guard let target else {
            if args.count == 1, let converted = try CELConversions.convert(name, args[0], at: position) {
                return converted
            }
            switch (name, args.count) {
            case ("size", 1): return try size(args[0], at: position)
            case ("matches", 2): return try method("matches", target: args[0], args: [args[1]], at: position, interpreter: &interpreter)
            default:
                if isKnown(name) { throw noOverload(name, target: nil, args: args, at: position) }
                throw CELError(message: "undeclared reference to function '\(name)'", position: position)
            }
        }
        return try method(name, target: target, args: args, at: position, interpreter: &interpreter)
    }

    private static func isKnown(_ name: String) -> Bool {
        ["size", "matches", "int", "uint", "double", "string", "bool", "bytes", "duration", "timestamp", "type", "dyn"].contains(name)
    }

    /// Runs a ``CELObject`` member, reporting what it throws at `position` as a CEL error.
    static func repositioned<T>(at position: Int, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch var error as CELError {
            error.position = position
            throw error
        } catch {
            throw CELError(message: "\(error)", position: position)
        }
    }

    static func noOverload(_ name: String, target: CELValue?, args: [CELValue], at position: Int) -> CELError {
        let argTypes = args.map(\.typeName).joined(separator: ", ")
        let receiver = target.map { "\($0.typeName)." } ?? ""
        return CELError(message: "no such overload: \(receiver)\(name)(\(argTypes))", position: position)
    }

    /// A value as it would appear in a rule, for error messages.
    static func display(_ value: CELValue) -> String {
        switch value {
        case .string(let s): return "'\(s)'"
        default: return (try? CELConversions.string(value, at: 0)) ?? value.typeName
        }
    }

    static func size(_ value: CELValue, at position: Int) throws -> CELValue {
        switch value {
        case .string(let s): return .int(Int64(s.unicodeScalars.count))
        case .bytes(let b): return .int(Int64(b.count))
        case .list(let l): return .int(Int64(l.count))
        case .map(let m): return .int(Int64(m.count))
        default: throw noOverload("size", target: nil, args: [value], at: position)
        }
    }

    private static func method(
        _ name: String, target: CELValue, args: [CELValue], at position: Int, interpreter: inout CELInterpreter
    ) throws -> CELValue {
        if name == "size", args.isEmpty { return try size(target, at: position) }
        switch target {
        case .string(let s):
            try interpreter.charge(CELOperators.cost(target), at: position)
            if let result = try stringMethod(name, s, args, at: position) { return result }
        case .list(let items):
            try interpreter.charge(items.count, at: position)
            if let result = try listMethod(name, items, args, at: position) { return result }
        case .duration, .timestamp:
            if let result = try CELConversions.timeGetter(name, target, args, at: position) { return result }
        case .object(let box):
            try interpreter.charge(1, at: position)
            if let result = try repositioned(at: position, { try box.object.call(name, args: args) }) { return result }
        default:
            break
        }
        throw noOverload(name, target: target, args: args, at: position)
    }

    private static func stringMethod(_ name: String, _ s: String, _ args: [CELValue], at position: Int) throws -> CELValue? {
        var strings: [String] = []
        var ints: [Int64] = []
        for arg in args {
            switch arg {
            case .string(let a): strings.append(a)
            case .int(let i): ints.append(i)
            default: return nil
            }
        }
        let scalars = Array(s.unicodeScalars)
        switch (name, strings.count, ints.count) {
        case ("startsWith", 1, 0): return .bool(s.utf8.starts(with: strings[0].utf8))
        case ("endsWith", 1, 0): return .bool(s.utf8.reversed().starts(with: strings[0].utf8.reversed()))
        case ("contains", 1, 0): return .bool(strings[0].isEmpty || s.range(of: strings[0], options: .literal) != nil)
        case ("matches", 1, 0):
            guard let regex = try? CELRegex(strings[0]) else {
                throw CELError(message: "invalid regular expression '\(strings[0])'", position: position)
            }
            return .bool(regex.matches(s))
        case ("lowerAscii", 0, 0):
            return .string(String(String.UnicodeScalarView(scalars.map { ("A"..."Z").contains($0) ? Unicode.Scalar(UInt8($0.value + 32)) : $0 })))
        case ("upperAscii", 0, 0):
            return .string(String(String.UnicodeScalarView(scalars.map { ("a"..."z").contains($0) ? Unicode.Scalar(UInt8($0.value - 32)) : $0 })))
        case ("trim", 0, 0):
            let trimmed = scalars.drop(while: \.properties.isWhitespace).reversed().drop(while: \.properties.isWhitespace).reversed()
            return .string(String(String.UnicodeScalarView(trimmed)))
        case ("split", 1, 0), ("split", 1, 1):
            let limit = ints.first ?? -1
            if limit == 0 { return .list([]) }
            var parts: [String]
            if strings[0].isEmpty {
                parts = scalars.map { String($0) }
            } else {
                parts = s.components(separatedBy: strings[0])
            }
            if limit > 0, parts.count > Int(limit) {
                let head = parts.prefix(Int(limit) - 1)
                parts = Array(head) + [parts.dropFirst(Int(limit) - 1).joined(separator: strings[0])]
            }
            return .list(parts.map(CELValue.string))
        case ("replace", 2, 0): return .string(s.replacingOccurrences(of: strings[0], with: strings[1], options: .literal))
        case ("indexOf", 1, 0), ("indexOf", 1, 1), ("lastIndexOf", 1, 0):
            let needle = Array(strings[0].unicodeScalars)
            let offset = Int(ints.first ?? 0)
            guard offset >= 0, offset <= scalars.count else {
                throw CELError(message: "index out of range: \(offset)", position: position)
            }
            let last = scalars.count - needle.count
            let candidates = last >= offset ? Array(offset...last) : []
            let ordered = name == "indexOf" ? candidates : candidates.reversed()
            let hit = ordered.first { scalars[$0..<$0 + needle.count].elementsEqual(needle) }
            return .int(Int64(hit ?? -1))
        case ("substring", 0, 1), ("substring", 0, 2):
            let start = Int(clamping: ints[0]), end = ints.count == 2 ? Int(clamping: ints[1]) : scalars.count
            guard start >= 0, end <= scalars.count, start <= end else {
                throw CELError(message: "substring(\(ints.map(String.init).joined(separator: ", "))) out of range for a string of \(scalars.count) characters", position: position)
            }
            return .string(String(String.UnicodeScalarView(scalars[start..<end])))
        case ("charAt", 0, 1):
            let i = Int(clamping: ints[0])
            guard i >= 0, i <= scalars.count else { throw CELError(message: "index out of range: \(i)", position: position) }
            return .string(i == scalars.count ? "" : String(scalars[i]))
        default:
            return nil
        }
    }

    private static func listMethod(_ name: String, _ items: [CELValue], _ args: [CELValue], at position: Int) throws -> CELValue? {
        switch (name, args.count) {
        case ("join", 0), ("join", 1):
            var separator = ""
            if let arg = args.first {
                guard case .string(let sep) = arg else { return nil }
                separator = sep
            }
            var parts: [String] = []
            for item in items {
                guard case .string(let part) = item else {
                    throw CELError(message: "join() requires a list of strings, found \(item.typeName)", position: position)
                }
                parts.append(part)
            }
            return .string(parts.joined(separator: separator))
        case ("indexOf", 1):
            return .int(Int64(items.firstIndex { $0.celEquals(args[0]) } ?? -1))
        case ("lastIndexOf", 1):
            return .int(Int64(items.lastIndex { $0.celEquals(args[0]) } ?? -1))
        case ("isSorted", 0):
            for (a, b) in zip(items, items.dropFirst()) {
                guard let order = CELValue.compare(a, b) else {
                    throw CELError(message: "isSorted() cannot compare \(a.typeName) with \(b.typeName)", position: position)
                }
                if order > 0 { return .bool(false) }
            }
            return .bool(true)
        case ("min", 0), ("max", 0):
            guard var best = items.first else { throw CELError(message: "\(name)() of an empty list", position: position) }
            for item in items.dropFirst() {
                guard let order = CELValue.compare(item, best) else {
                    throw CELError(message: "\(name)() cannot compare \(item.typeName) with \(best.typeName)", position: position)
                }
                if (name == "min" && order < 0) || (name == "max" && order > 0) { best = item }
            }
            return best
        case ("sum", 0):
            var interpreter = CELInterpreter(selfValue: .null, oldSelf: nil, maxSteps: Int.max)
            var total: CELValue = .int(0)
            if let first = items.first, case .double = first { total = .double(0) }
            if let first = items.first, case .uint = first { total = .uint(0) }
            if let first = items.first, case .duration = first { total = .duration(0) }
            for item in items { total = try CELOperators.apply(.add, total, item, at: position, interpreter: &interpreter) }
            return total
        default:
            return nil
        }
    }
}
