/// The built-in detectors' matchers. Each is called at a keyword hit found by ``TextScanner``'s
/// prefilter and returns the byte range to mask, confined to `lo..<hi` (one JSON string value
/// or one text buffer), or nil when the surroundings show it is not a secret.
///
/// Masked ranges never include a backslash or a double quote, so masking raw JSON text or a
/// log line that embeds JSON keeps it well-formed.
enum DetectorMatchers {
    typealias Buffer = UnsafeBufferPointer<UInt8>

    @inline(__always) static func isAlnum(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
    }
    @inline(__always) static func isBase64URL(_ c: UInt8) -> Bool { isAlnum(c) || c == 0x2d || c == 0x5f }
    @inline(__always) static func isBase64(_ c: UInt8) -> Bool { isAlnum(c) || c == 0x2b || c == 0x2f || c == 0x3d }
    @inline(__always) static func isTokenChar(_ c: UInt8) -> Bool {
        isAlnum(c) || c == 0x2d || c == 0x2e || c == 0x5f || c == 0x7e || c == 0x2b || c == 0x2f || c == 0x3d
    }

    static func run(_ b: Buffer, from start: Int, to hi: Int, while predicate: (UInt8) -> Bool) -> Int {
        var i = start
        while i < hi, predicate(b[i]) { i += 1 }
        return i
    }

    static func hasPrefix(_ b: Buffer, at p: Int, _ hi: Int, _ literal: StaticString, caseInsensitive: Bool = false) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard p + n <= hi else { return false }
        let s = literal.utf8Start
        for k in 0..<n {
            var c = b[p + k]
            if caseInsensitive, c >= 0x41, c <= 0x5a { c |= 0x20 }
            if c != s[k] { return false }
        }
        return true
    }

    /// `eyJ` header `.` payload `.` signature, all base64url, header and payload ≥ 10 chars.
    /// No left boundary is required: `xeyJ...` still masks from `eyJ` on.
    static func jwt(_ b: Buffer, _ p: Int, _ lo: Int, _ hi: Int) -> Range<Int>? {
        let e1 = run(b, from: p, to: hi, while: isBase64URL)
        guard e1 - p >= 10, e1 < hi, b[e1] == UInt8(ascii: ".") else { return nil }
        let e2 = run(b, from: e1 + 1, to: hi, while: isBase64URL)
        guard e2 - e1 - 1 >= 10, e2 < hi, b[e2] == UInt8(ascii: ".") else { return nil }
        let e3 = run(b, from: e2 + 1, to: hi, while: isBase64URL)
        return p..<e3
    }

    /// The body of `-----BEGIN <...> PRIVATE KEY[ BLOCK]-----` up to `-----END`, or to `hi`
    /// when the block is cut off (the caller learns so from `range.upperBound == hi`).
    static func pemPrivateKey(_ b: Buffer, _ p: Int, _ lo: Int, _ hi: Int) -> Range<Int>? {
        let labelStart = p + 11   // "-----BEGIN "
        var i = labelStart
        while i < hi, i - labelStart < 64, b[i] != UInt8(ascii: "-"), b[i] != 0x0a, b[i] != 0x5c { i += 1 }
        guard i + 5 <= hi, hasPrefix(b, at: i, hi, "-----") else { return nil }
        let label = i - labelStart
        let endsWithKey = label >= 11 && hasPrefix(b, at: i - 11, hi, "PRIVATE KEY")
        let endsWithBlock = label >= 17 && hasPrefix(b, at: i - 17, hi, "PRIVATE KEY BLOCK")
        guard endsWithKey || endsWithBlock else { return nil }
        let bodyStart = i + 5
        var j = bodyStart
        while j < hi {
            if b[j] == UInt8(ascii: "-"), hasPrefix(b, at: j, hi, "-----END") { break }
            j += 1
        }
        // Leave the line break after the BEGIN line visible: it keeps escapes (`\n`) intact.
        var start = bodyStart
        if start < j, b[start] == 0x0a { start += 1 }
        if start + 1 < j, b[start] == 0x5c, b[start + 1] == UInt8(ascii: "n") { start += 2 }
        var end = j
        if end < hi { // trim the line break before END for the same reason
            if end - 1 > start, b[end - 1] == 0x0a { end -= 1 }
            if end - 2 >= start, b[end - 2] == 0x5c, b[end - 1] == UInt8(ascii: "n") { end -= 2 }
        }
        // An open block is reported even when empty so far: a stream masks what follows.
        if j == hi { return min(start, hi)..<hi }
        return start < end ? start..<end : nil
    }

    static let awsPrefixes: [StaticString] = ["AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "ABIA", "ACCA"]

    /// An AWS key id prefix followed by exactly 16 upper-case letters or digits.
    static func awsAccessKey(_ b: Buffer, _ p: Int, _ lo: Int, _ hi: Int) -> Range<Int>? {
        if p > lo, isAlnum(b[p - 1]) { return nil }
        guard awsPrefixes.contains(where: { hasPrefix(b, at: p, hi, $0) }) else { return nil }
        let e = run(b, from: p + 4, to: hi) { ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x30 && $0 <= 0x39) }
        guard e - p == 20, e == hi || !isAlnum(b[e]) else { return nil }
        return p..<e
    }

    /// 40 base64 characters after the keyword (`aws_secret_access_key = ...`, `"SecretAccessKey": "..."`).
    static func awsSecretKey(_ b: Buffer, _ p: Int, _ keywordLength: Int, _ lo: Int, _ hi: Int) -> Range<Int>? {
        guard let valueStart = afterSeparator(b, p + keywordLength, hi) else { return nil }
        let e = run(b, from: valueStart, to: hi, while: isBase64)
        guard e - valueStart == 40 else { return nil }
        return valueStart..<e
    }

    /// The string value of `"private_key"` in service-account JSON, up to its closing quote.
    static func gcpPrivateKey(_ b: Buffer, _ p: Int, _ lo: Int, _ hi: Int) -> Range<Int>? {
        guard p > lo, b[p - 1] == UInt8(ascii: "\""), p + 11 < hi, b[p + 11] == UInt8(ascii: "\"") else { return nil }
        var i = p + 12   // private_key"
        while i < hi, b[i] == 0x20 || b[i] == 0x09 { i += 1 }
        guard i < hi, b[i] == UInt8(ascii: ":") else { return nil }
        i += 1
        while i < hi, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0a { i += 1 }
        guard i < hi, b[i] == UInt8(ascii: "\"") else { return nil }
        let start = i + 1
        var j = start
        while j < hi, b[j] != UInt8(ascii: "\"") {
            j += b[j] == 0x5c ? 2 : 1
        }
        j = min(j, hi)
        // Keep whole escape sequences out of the boundary: end on a non-escaped position.
        var end = j
        if end > start, b[end - 1] == 0x5c { end -= 1 }
        return start < end ? start..<end : nil
    }

    /// A known token prefix followed by at least `minimum` token characters.
    static func prefixedToken(_ b: Buffer, _ p: Int, prefixLength: Int, minimum: Int, _ lo: Int, _ hi: Int,
                              allowed: (UInt8) -> Bool) -> Range<Int>? {
        if p > lo, isAlnum(b[p - 1]) || b[p - 1] == 0x5f { return nil }
        let e = run(b, from: p + prefixLength, to: hi, while: allowed)
        guard e - p - prefixLength >= minimum else { return nil }
        return p..<e
    }

    /// The token after `Bearer` and at least one space.
    static func bearer(_ b: Buffer, _ p: Int, _ lo: Int, _ hi: Int) -> Range<Int>? {
        if p > lo, isAlnum(b[p - 1]) { return nil }
        var i = p + 6
        let spaces = i
        while i < hi, b[i] == 0x20 || b[i] == 0x09 { i += 1 }
        guard i > spaces else { return nil }
        let e = run(b, from: i, to: hi, while: isTokenChar)
        guard e - i >= 8 else { return nil }
        return i..<e
    }

    /// Position of the value after `keyword` + optional closing quote + `=`/`:` + optional
    /// opening quote; nil when no assignment follows the keyword.
    static func afterSeparator(_ b: Buffer, _ start: Int, _ hi: Int) -> Int? {
        var i = start
        if i < hi, b[i] == 0x22 || b[i] == 0x27 { i += 1 }
        var budget = 4
        while i < hi, budget > 0, b[i] == 0x20 || b[i] == 0x09 { i += 1; budget -= 1 }
        guard i < hi, b[i] == UInt8(ascii: "=") || b[i] == UInt8(ascii: ":") else { return nil }
        if i + 2 < hi, b[i] == UInt8(ascii: ":"), b[i + 1] == UInt8(ascii: "/"), b[i + 2] == UInt8(ascii: "/") { return nil }
        i += 1
        budget = 4
        while i < hi, budget > 0, b[i] == 0x20 || b[i] == 0x09 { i += 1; budget -= 1 }
        if i < hi, b[i] == 0x22 || b[i] == 0x27 { i += 1 }
        return i
    }

    /// `password=value`, `passwd: "value"`, `"secret":"value"`...: the value, when
    /// ``PasswordHeuristics`` finds it credential-like.
    static func passwordAssignment(_ b: Buffer, _ p: Int, _ keywordLength: Int, _ lo: Int, _ hi: Int) -> Range<Int>? {
        guard let valueStart = afterSeparator(b, p + keywordLength, hi) else { return nil }
        let quote: UInt8? = valueStart > p + keywordLength && (b[valueStart - 1] == 0x22 || b[valueStart - 1] == 0x27)
            ? b[valueStart - 1] : nil
        var e = valueStart
        while e < hi, e - valueStart < 256 {
            let c = b[e]
            if c == 0x5c || c == 0x22 || c == 0x27 || c < 0x20 { break }
            if quote == nil, c == 0x20 || c == 0x2c || c == 0x3b || c == 0x26 || c == 0x29 || c == 0x7d || c == 0x5d || c == 0x3c || c == 0x3e { break }
            e += 1
        }
        let value = UnsafeBufferPointer(rebasing: b[valueStart..<e])
        return PasswordHeuristics.looksLikeSecret(value) ? valueStart..<e : nil
    }
}

/// The check that keeps `passwordAssignment` from masking things that are not passwords.
///
/// Decision: a real password that is a dictionary word (`password=changeme`) is still a
/// password, so short words ARE masked. What is skipped: values under 6 bytes (`secret=true`),
/// placeholders and references (`${DB_PASSWORD}`, `$(cat f)`, `<password>`, `{{ .Values.x }}`,
/// `***`, `[REDACTED]`), values that start an object or list, and values with a Shannon entropy
/// under 2.0 bits per byte (`xxxxxxxx`, `aaaabbbb`).
public enum PasswordHeuristics {
    public static let minimumLength = 6
    public static let minimumEntropy = 2.0

    public static func looksLikeSecret(_ value: UnsafeBufferPointer<UInt8>) -> Bool {
        guard value.count >= minimumLength, let first = value.first else { return false }
        if [UInt8(ascii: "$"), UInt8(ascii: "<"), UInt8(ascii: "{"), UInt8(ascii: "["), UInt8(ascii: "*"), UInt8(ascii: "%")].contains(first) {
            return false
        }
        return entropy(value) >= minimumEntropy
    }

    public static func looksLikeSecret(_ value: [UInt8]) -> Bool {
        value.withUnsafeBufferPointer { looksLikeSecret($0) }
    }

    /// Shannon entropy in bits per byte.
    public static func entropy(_ value: UnsafeBufferPointer<UInt8>) -> Double {
        guard !value.isEmpty else { return 0 }
        var counts = [Int](repeating: 0, count: 256)
        for b in value { counts[Int(b)] += 1 }
        let n = Double(value.count)
        var h = 0.0
        for c in counts where c > 0 {
            let p = Double(c) / n
            h -= p * log2(p)
        }
        return h
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
