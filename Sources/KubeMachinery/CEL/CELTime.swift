import Foundation
import KubeCore

/// Parsing and printing of CEL durations and timestamps.
///
/// `duration()` accepts Go's `time.ParseDuration` syntax, which is what Kubernetes users write
/// (`"1h30m"`, `"1.5s"`, `"-300ms"`, `"2h45m10.5s"`, units `ns us µs ms s m h`). Durations are
/// accumulated in whole nanoseconds, so equal spellings (`"1000ms"`, `"1s"`) give equal values.
/// `timestamp()` accepts RFC 3339 (`2024-05-01T12:00:00Z`, fractional seconds, numeric offsets).
/// Printing follows cel-go: durations as seconds (`"5400s"`, `"1.5s"`), timestamps as RFC 3339
/// in UTC.
enum CELTime {
    private static let unitNanoseconds: [String: Int64] = [
        "ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
        "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
    ]

    /// Parses Go duration syntax into seconds; nil if `text` is not a valid duration.
    static func parseDuration(_ text: String) -> Double? {
        let s = Array(text.unicodeScalars)
        var i = 0
        func isDigit(_ c: Unicode.Scalar) -> Bool { c >= "0" && c <= "9" }
        var negative = false
        if let sign = s.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            i = 1
        }
        if s.count == i + 1 && s[i] == "0" { return 0 }
        guard i < s.count else { return nil }
        var total: Int64 = 0
        while i < s.count {
            var whole: Int64 = 0
            var wholeDigits = 0
            while i < s.count, isDigit(s[i]) {
                let (shifted, o1) = whole.multipliedReportingOverflow(by: 10)
                let (sum, o2) = shifted.addingReportingOverflow(Int64(s[i].value - 48))
                if o1 || o2 { return nil }
                whole = sum
                wholeDigits += 1
                i += 1
            }
            // Fractional digits beyond 18 cannot change the nanoseconds; they are read and dropped.
            var fraction: Int64 = 0
            var divisor: Int64 = 1
            var fractionDigits = 0
            if i < s.count, s[i] == "." {
                i += 1
                while i < s.count, isDigit(s[i]) {
                    if fractionDigits < 18 {
                        fraction = fraction * 10 + Int64(s[i].value - 48)
                        divisor *= 10
                    }
                    fractionDigits += 1
                    i += 1
                }
            }
            guard wholeDigits > 0 || fractionDigits > 0 else { return nil }
            var unit = ""
            while i < s.count, !isDigit(s[i]), s[i] != "." {
                unit.unicodeScalars.append(s[i])
                i += 1
            }
            guard let scale = unitNanoseconds[unit] else { return nil }
            var (value, overflow) = whole.multipliedReportingOverflow(by: scale)
            if overflow { return nil }
            // Same arithmetic as Go, so the same spelling yields the same nanoseconds.
            let fractionPart = Int64((Double(fraction) * (Double(scale) / Double(divisor))).rounded(.towardZero))
            (value, overflow) = value.addingReportingOverflow(fractionPart)
            if overflow { return nil }
            (total, overflow) = total.addingReportingOverflow(value)
            if overflow { return nil }
        }
        return Double(negative ? -total : total) / 1e9
    }

    /// cel-go's `string(duration)`: seconds with up to nine fractional digits and an `s`.
    static func formatDuration(_ seconds: Double) -> String {
        // Clamp: the largest durations round up to 2^63 ns in Double, which Int64 cannot hold.
        let scaled = (seconds * 1e9).rounded()
        let nanos = scaled >= 9.223372036854775807e18 ? Int64.max : (scaled <= -9.223372036854775808e18 ? Int64.min : Int64(scaled))
        let sign = nanos < 0 ? "-" : ""
        let magnitude = nanos.magnitude
        let whole = magnitude / 1_000_000_000
        let fraction = magnitude % 1_000_000_000
        guard fraction != 0 else { return "\(sign)\(whole)s" }
        var digits = String(fraction)
        digits = String(repeating: "0", count: 9 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(sign)\(whole).\(digits)s"
    }

    /// Parses an RFC 3339 timestamp; nil if malformed or out of range.
    static func parseTimestamp(_ text: String) -> Date? {
        let c = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= c.count else { return nil }
            var value = 0
            for byte in c[from..<from + count] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        func byte(_ i: Int) -> UInt8? { i < c.count ? c[i] : nil }
        guard let year = number(0, 4), byte(4) == UInt8(ascii: "-"), let month = number(5, 2),
              byte(7) == UInt8(ascii: "-"), let day = number(8, 2),
              let t = byte(10), t == UInt8(ascii: "T") || t == UInt8(ascii: "t"),
              let hour = number(11, 2), byte(13) == UInt8(ascii: ":"), let minute = number(14, 2),
              byte(16) == UInt8(ascii: ":"), let second = number(17, 2)
        else { return nil }
        guard year >= 1, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour < 24, minute < 60, second < 60
        else { return nil }
        var i = 19
        var fraction = 0.0
        if byte(i) == UInt8(ascii: ".") {
            i += 1
            var scale = 0.1
            let start = i
            while let b = byte(i), b >= 48 && b <= 57 {
                fraction += Double(b - 48) * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        var offsetSeconds = 0
        guard let zone = byte(i) else { return nil }
        if zone == UInt8(ascii: "Z") || zone == UInt8(ascii: "z") {
            i += 1
        } else if zone == UInt8(ascii: "+") || zone == UInt8(ascii: "-") {
            guard let oh = number(i + 1, 2), byte(i + 3) == UInt8(ascii: ":"), let om = number(i + 4, 2),
                  oh < 24, om < 60
            else { return nil }
            offsetSeconds = (oh * 3600 + om * 60) * (zone == UInt8(ascii: "-") ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == c.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Double(days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds) + fraction
        return Date(timeIntervalSince1970: seconds)
    }

    /// RFC 3339 in UTC, with fractional seconds only when present (Go's `RFC3339Nano`).
    static func formatTimestamp(_ date: Date) -> String {
        let parts = utcComponents(date)
        func pad(_ v: Int, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        var text = "\(pad(parts.year, 4))-\(pad(parts.month, 2))-\(pad(parts.day, 2))T"
            + "\(pad(parts.hour, 2)):\(pad(parts.minute, 2)):\(pad(parts.second, 2))"
        if parts.nanosecond > 0 {
            var digits = pad(parts.nanosecond, 9)
            while digits.hasSuffix("0") { digits.removeLast() }
            text += "." + digits
        }
        return text + "Z"
    }

    struct UTCComponents {
        var year, month, day, hour, minute, second, nanosecond, dayOfWeek, dayOfYear: Int
    }

    /// Calendar fields of `date` in UTC (proleptic Gregorian, as Go computes them).
    static func utcComponents(_ date: Date) -> UTCComponents {
        let interval = date.timeIntervalSince1970
        let secondsTotal = Int64(interval.rounded(.down))
        var nanos = Int(((interval - Double(secondsTotal)) * 1e9).rounded())
        var secs = secondsTotal
        if nanos >= 1_000_000_000 { nanos -= 1_000_000_000; secs += 1 }
        var days = secs / 86_400
        var rem = secs % 86_400
        if rem < 0 { rem += 86_400; days -= 1 }
        let (y, m, d) = civilFromDays(Int(days))
        let dayOfWeek = Int((days % 7 + 11) % 7) // 1970-01-01 was a Thursday (4).
        let dayOfYear = Int(days) - daysFromCivil(year: y, month: 1, day: 1)
        return UTCComponents(
            year: y, month: m, day: d, hour: Int(rem / 3600), minute: Int(rem % 3600 / 60),
            second: Int(rem % 60), nanosecond: nanos, dayOfWeek: dayOfWeek, dayOfYear: dayOfYear)
    }

    private static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
