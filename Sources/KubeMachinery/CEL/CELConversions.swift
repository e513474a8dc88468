import Foundation
import KubeCore

/// CEL's type conversions (`int()`, `uint()`, `double()`, `string()`, `bool()`, `bytes()`,
/// `duration()`, `timestamp()`, `type()`, `dyn()`) and the duration/timestamp getters.
///
/// Conversions fail, rather than wrap or round silently, when the value does not fit the target
/// type (`int(1e19)`, `uint(-1)`, `int('abc')`); the message names the value.
enum CELConversions {
    /// Applies the conversion `name` to `value`; nil when `name` is not a conversion function.
    static func convert(_ name: String, _ value: CELValue, at position: Int) throws -> CELValue? {
        func fail() -> CELError {
            CELError(message: "cannot convert \(CELFunctions.display(value)) of type \(value.typeName) to \(name)", position: position)
        }
        switch name {
        case "int":
            switch value {
            case .int: return value
            case .uint(let u):
                guard u <= UInt64(Int64.max) else { throw fail() }
                return .int(Int64(u))
            case .double(let d):
                guard d.isFinite, d > -9.223372036854775808e18 - 1, d < 9.223372036854775807e18 else { throw fail() }
                return .int(Int64(d.rounded(.towardZero)))
            case .string(let s):
                guard let i = Int64(s) else { throw fail() }
                return .int(i)
            case .timestamp(let t): return .int(Int64(t.timeIntervalSince1970.rounded(.down)))
            default: throw fail()
            }
        case "uint":
            switch value {
            case .uint: return value
            case .int(let i):
                guard i >= 0 else { throw fail() }
                return .uint(UInt64(i))
            case .double(let d):
                guard d.isFinite, d > -1, d < 1.8446744073709551615e19 else { throw fail() }
                return .uint(UInt64(d.rounded(.towardZero)))
            case .string(let s):
                guard let u = UInt64(s) else { throw fail() }
                return .uint(u)
            default: throw fail()
            }
        case "double":
            switch value {
            case .double: return value
            case .int(let i): return .double(Double(i))
            case .uint(let u): return .double(Double(u))
            case .string(let s):
                guard let d = Double(s) else { throw fail() }
                return .double(d)
            default: throw fail()
            }
        case "string":
            return .string(try string(value, at: position))
        case "bool":
            switch value {
            case .bool: return value
            case .string(let s):
                switch s {
                case "1", "t", "T", "true", "TRUE", "True": return .bool(true)
                case "0", "f", "F", "false", "FALSE", "False": return .bool(false)
                default: throw fail()
                }
            default: throw fail()
            }
        case "bytes":
            switch value {
            case .bytes: return value
            case .string(let s): return .bytes(Array(s.utf8))
            default: throw fail()
            }
        case "duration":
            switch value {
            case .duration: return value
            case .string(let s):
                guard let seconds = CELTime.parseDuration(s) else {
                    throw CELError(message: "invalid duration '\(s)': expected a Go duration such as '30s', '1h30m' or '500ms'", position: position)
                }
                return try CELOperators.checkedDuration(seconds, at: position)
            default: throw fail()
            }
        case "timestamp":
            switch value {
            case .timestamp: return value
            case .string(let s):
                guard let date = CELTime.parseTimestamp(s) else {
                    throw CELError(message: "invalid timestamp '\(s)': expected RFC 3339, e.g. '2024-01-02T15:04:05Z'", position: position)
                }
                return try CELOperators.checkedTimestamp(date, at: position)
            case .int(let i): return try CELOperators.checkedTimestamp(Date(timeIntervalSince1970: Double(i)), at: position)
            default: throw fail()
            }
        case "type":
            return .type(value.typeName)
        case "dyn":
            return value
        default:
            return nil
        }
    }

    /// `string(value)` as cel-go prints it.
    static func string(_ value: CELValue, at position: Int) throws -> String {
        switch value {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .uint(let u): return String(u)
        case .double(let d): return formatDouble(d)
        case .bool(let b): return b ? "true" : "false"
        case .bytes(let b):
            guard let s = String(bytes: b, encoding: .utf8) else {
                throw CELError(message: "cannot convert bytes to string: invalid UTF-8", position: position)
            }
            return s
        case .duration(let d): return CELTime.formatDuration(d)
        case .timestamp(let t): return CELTime.formatTimestamp(t)
        case .type(let t): return t
        case .null, .list, .map, .object:
            throw CELError(message: "cannot convert a value of type \(value.typeName) to string", position: position)
        }
    }

    /// Go's `strconv.FormatFloat(d, 'g', -1, 64)`: shortest digits, exponent form below 1e-4 or
    /// from 1e21 up.
    static func formatDouble(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Inf" : "+Inf" }
        if d == 0 { return d.sign == .minus ? "-0" : "0" }
        // Swift's description gives the shortest round-tripping digits; re-lay them out.
        var text = "\(abs(d))"
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = String(text[..<e])
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let integerPart = String(parts[0])
        let fractionPart = parts.count > 1 ? String(parts[1]) : ""
        var digits = integerPart + fractionPart
        var pointPosition = integerPart.count + exponent
        let leadingZeros = digits.prefix(while: { $0 == "0" }).count
        digits.removeFirst(leadingZeros)
        pointPosition -= leadingZeros
        while digits.hasSuffix("0") { digits.removeLast() }
        if digits.isEmpty { return "0" }
        let sign = d < 0 ? "-" : ""
        let exp = pointPosition - 1
        if exp < -4 || exp >= 21 {
            var mantissa = String(digits.prefix(1))
            if digits.count > 1 { mantissa += "." + digits.dropFirst() }
            let expSign = exp < 0 ? "-" : "+"
            let expDigits = String(abs(exp))
            return "\(sign)\(mantissa)e\(expSign)\(expDigits.count < 2 ? "0" + expDigits : expDigits)"
        }
        if pointPosition <= 0 { return sign + "0." + String(repeating: "0", count: -pointPosition) + digits }
        if pointPosition >= digits.count { return sign + digits + String(repeating: "0", count: pointPosition - digits.count) }
        let index = digits.index(digits.startIndex, offsetBy: pointPosition)
        return sign + digits[..<index] + "." + digits[index...]
    }

    /// Duration and timestamp getters. Timestamps are read in UTC; a time-zone argument other
    /// than UTC is refused rather than silently ignored.
    static func timeGetter(_ name: String, _ value: CELValue, _ args: [CELValue], at position: Int) throws -> CELValue? {
        switch value {
        case .duration(let seconds):
            guard args.isEmpty else { return nil }
            switch name {
            case "getHours": return .int(Int64(seconds / 3600))
            case "getMinutes": return .int(Int64(seconds / 60))
            case "getSeconds": return .int(Int64(seconds))
            case "getMilliseconds": return .int(Int64((seconds * 1000).rounded(.towardZero)))
            default: return nil
            }
        case .timestamp(let date):
            if let zone = args.first {
                guard args.count == 1, case .string(let z) = zone else { return nil }
                guard ["UTC", "Z", "+00:00", "Etc/UTC"].contains(z) else {
                    throw CELError(message: "time zone '\(z)' is not supported; only UTC", position: position)
                }
            }
            let c = CELTime.utcComponents(date)
            switch name {
            case "getFullYear": return .int(Int64(c.year))
            case "getMonth": return .int(Int64(c.month - 1))
            case "getDate": return .int(Int64(c.day))
            case "getDayOfMonth": return .int(Int64(c.day - 1))
            case "getDayOfWeek": return .int(Int64(c.dayOfWeek))
            case "getDayOfYear": return .int(Int64(c.dayOfYear))
            case "getHours": return .int(Int64(c.hour))
            case "getMinutes": return .int(Int64(c.minute))
            case "getSeconds": return .int(Int64(c.second))
            case "getMilliseconds": return .int(Int64(c.nanosecond / 1_000_000))
            default: return nil
            }
        default:
            return nil
        }
    }
}
