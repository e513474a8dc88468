import Foundation

/// Go's `time.ParseDuration` syntax (`300ms`, `1h30m`, `-1.5h`), used by the CRDs' duration
/// fields and by CEL's `duration()`.
public enum GoDuration {
    /// Seconds, or `nil` when `text` is not a valid duration.
    public static func parse(_ text: String) -> Double? {
        var chars = Substring(text)
        var sign = 1.0
        if chars.first == "-" || chars.first == "+" {
            if chars.first == "-" { sign = -1 }
            chars = chars.dropFirst()
        }
        if chars == "0" { return 0 }
        if chars.isEmpty { return nil }
        var total = 0.0
        while !chars.isEmpty {
            let number = chars.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, number != ".", let value = Double(number) else { return nil }
            chars = chars.dropFirst(number.count)
            let unit = chars.prefix { !$0.isNumber && $0 != "." }
            chars = chars.dropFirst(unit.count)
            let scale: Double
            switch unit {
            case "ns": scale = 1e-9
            case "us", "µs", "μs": scale = 1e-6
            case "ms": scale = 1e-3
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            default: return nil
            }
            total += value * scale
        }
        return sign * total
    }

    /// Formats seconds as Go's `Duration.String()` does (`1h30m0s`, `1.5s`, `0s`).
    public static func format(_ seconds: Double) -> String {
        if seconds == 0 { return "0s" }
        var out = seconds < 0 ? "-" : ""
        var remaining = abs(seconds)
        if remaining < 1 {
            if remaining >= 1e-3 { return out + trim(remaining * 1e3) + "ms" }
            if remaining >= 1e-6 { return out + trim(remaining * 1e6) + "µs" }
            return out + trim(remaining * 1e9) + "ns"
        }
        let hours = Int(remaining / 3600)
        remaining -= Double(hours) * 3600
        let minutes = Int(remaining / 60)
        remaining -= Double(minutes) * 60
        if hours > 0 { out += "\(hours)h" }
        if hours > 0 || minutes > 0 { out += "\(minutes)m" }
        return out + trim(remaining) + "s"
    }

    private static func trim(_ value: Double) -> String {
        let rounded = (value * 1e9).rounded() / 1e9
        return rounded.rounded() == rounded ? String(Int64(rounded)) : String(rounded)
    }
}
