#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A flat index of a JSON text: one token per value and per object key, in document order,
/// each with its byte range and the index of the token after its subtree.
///
/// The masker never builds a value tree: it looks up members by walking sibling tokens (a
/// Secret's `kind` may come after its `data`) and copies every byte it does not rewrite. One
/// pass finds string ends with `memchr`, so long base64 values cost little. The tape accepts a
/// sequence of whitespace-separated values (a watch stream) and rejects anything that is not
/// JSON, in which case the caller falls back to text masking.
struct JSONTape {
    enum Kind: UInt8 { case object, array, string, scalar }

    struct Token {
        var start: Int32      // first byte (`{`, `[`, `"`, or the scalar's first byte)
        var end: Int32        // one past the last byte
        var next: Int32       // index of the token after this value's subtree
        var kind: Kind
        var escaped: Bool     // string holding at least one backslash escape
        var unicodeEscaped = false   // string holding at least one `\u` escape
    }

    /// Appended once per value and key, and patched when a container closes: an array's
    /// uniqueness and capacity checks on each of those showed up in profiles, this storage has
    /// none but a capacity test on append.
    final class TokenStorage {
        private(set) var base: UnsafeMutablePointer<Token>
        private(set) var count = 0
        private var capacity: Int

        init(capacity: Int) {
            self.capacity = max(capacity, 16)
            base = .allocate(capacity: self.capacity)
        }

        deinit { base.deallocate() }

        @inline(__always) subscript(index: Int) -> Token {
            get {
                precondition(index >= 0 && index < count, "token index out of range")
                return base[index]
            }
        }

        @inline(__always) func append(_ token: Token) {
            if count == capacity { grow() }
            (base + count).initialize(to: token)
            count += 1
        }

        /// Records where the container at `index` ends and the index of the token after it.
        @inline(__always) func close(_ index: Int, end: Int32) {
            precondition(index >= 0 && index < count, "token index out of range")
            base[index].end = end
            base[index].next = Int32(count)
        }

        private func grow() {
            let bigger = UnsafeMutablePointer<Token>.allocate(capacity: capacity * 2)
            bigger.moveInitialize(from: base, count: count)
            base.deallocate()
            base = bigger
            capacity *= 2
        }
    }

    let tokens: TokenStorage
    /// Indices of the top-level values.
    private(set) var roots: [Int] = []

    /// Nil when `b` is not a sequence of JSON values or is larger than 2 GiB. Any depth is
    /// accepted, so that a deep object cannot turn a whole body over to text masking: the
    /// parse keeps its own stack, and the masker's walk postpones what is too deep to recurse
    /// into (see `PostponedSubtrees.swift`).
    init?(_ b: UnsafeBufferPointer<UInt8>) {
        guard b.count < Int(Int32.max) else { return nil }
        tokens = TokenStorage(capacity: b.count / 12)
        var i = JSONTape.skipSpace(b, 0)
        while i < b.count {
            roots.append(tokens.count)
            guard let end = parseValue(b, i) else { return nil }
            i = JSONTape.skipSpace(b, end)
        }
        if roots.isEmpty { return nil }
    }

    @inline(__always) static func skipSpace(_ b: UnsafeBufferPointer<UInt8>, _ from: Int) -> Int {
        var i = from
        while i < b.count, b[i] == 0x20 || b[i] == 0x0a || b[i] == 0x0d || b[i] == 0x09 { i += 1 }
        return i
    }

    private enum State { case value, valueOrClose, keyOrClose, key, afterValue }

    /// Parses one value starting at `start`; returns the index after it.
    private mutating func parseValue(_ b: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        var stack: [Int] = []
        var state = State.value
        var i = start
        while true {
            i = JSONTape.skipSpace(b, i)
            if state == .afterValue && stack.isEmpty { return i }
            guard i < b.count else { return nil }
            let c = b[i]
            switch state {
            case .afterValue:
                let top = stack[stack.count - 1]
                let isObject = tokens[top].kind == .object
                if c == UInt8(ascii: ",") { i += 1; state = isObject ? .key : .value; continue }
                guard c == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) else { return nil }
                i += 1
                close(top, i)
                stack.removeLast()
            case .keyOrClose, .key:
                if c == UInt8(ascii: "}"), state == .keyOrClose {
                    i += 1; close(stack[stack.count - 1], i); stack.removeLast(); state = .afterValue; continue
                }
                guard c == UInt8(ascii: "\"") else { return nil }
                guard let end = string(b, i) else { return nil }
                // The colon is read here rather than in a state of its own: one turn of the
                // loop less per member.
                i = JSONTape.skipSpace(b, end)
                guard i < b.count, b[i] == UInt8(ascii: ":") else { return nil }
                i += 1; state = .value
            case .value, .valueOrClose:
                if c == UInt8(ascii: "]"), state == .valueOrClose {
                    i += 1; close(stack[stack.count - 1], i); stack.removeLast(); state = .afterValue; continue
                }
                switch c {
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    stack.append(tokens.count)
                    tokens.append(Token(start: Int32(i), end: 0, next: 0, kind: c == UInt8(ascii: "{") ? .object : .array, escaped: false))
                    i += 1
                    state = c == UInt8(ascii: "{") ? .keyOrClose : .valueOrClose
                    continue
                case UInt8(ascii: "\""):
                    guard let end = string(b, i) else { return nil }
                    i = end
                default:
                    guard let end = JSONTape.scalarEnd(b, i) else { return nil }
                    tokens.append(Token(start: Int32(i), end: Int32(end), next: Int32(tokens.count + 1), kind: .scalar, escaped: false))
                    i = end
                }
                state = .afterValue
            }
        }
    }

    private func close(_ index: Int, _ end: Int) {
        tokens.close(index, end: Int32(end))
    }

    /// Appends a string token starting at the quote at `q`; returns the index after it.
    private mutating func string(_ b: UnsafeBufferPointer<UInt8>, _ q: Int) -> Int? {
        guard let base = b.baseAddress else { return nil }
        let from = q + 1
        // Short strings (most keys and values) end within a few dozen bytes: the word-at-a-time
        // scan beats two memchr calls there; longer ones switch to memchr.
        let shortLimit = min(b.count, from + 64)
        var k = JSONTape.quoteOrBackslash(b, from: from, to: shortLimit)
        if k == shortLimit {
            guard let hit = memchr(base + k, 0x22, b.count - k) else { return nil }
            let quote = UnsafeRawPointer(hit).assumingMemoryBound(to: UInt8.self) - base
            k = memchr(base + k, 0x5c, quote - k).map { UnsafeRawPointer($0).assumingMemoryBound(to: UInt8.self) - base } ?? quote
        }
        // `k` is at the first quote or backslash: validate each escape, then skip to the next.
        var escaped = false
        var unicodeEscaped = false
        while true {
            guard k < b.count else { return nil }
            if b[k] == 0x22 { break }
            escaped = true
            guard k + 1 < b.count else { return nil }
            switch b[k + 1] {
            case 0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74: k += 2
            case 0x75:
                guard k + 6 <= b.count, (2..<6).allSatisfy({ JSONEscaper.hexValue(b[k + $0]) != nil }) else { return nil }
                unicodeEscaped = true
                k += 6
            default: return nil
            }
            k = JSONTape.quoteOrBackslash(b, from: k, to: b.count)
        }
        tokens.append(Token(start: Int32(q), end: Int32(k + 1), next: Int32(tokens.count + 1), kind: .string, escaped: escaped,
                            unicodeEscaped: unicodeEscaped))
        return k + 1
    }

    /// The index of the first quote or backslash in `from..<end`, or `end`. Eight bytes at a
    /// time: a word holds a quote or a backslash when, xor-ed with that byte repeated, it has a
    /// zero byte, and the lowest flagged byte is the first such byte.
    @inline(__always) static func quoteOrBackslash(_ b: UnsafeBufferPointer<UInt8>, from: Int, to end: Int) -> Int {
        var k = from
        if let base = b.baseAddress {
            while k + 8 <= end {
                let word = UInt64(littleEndian: UnsafeRawPointer(base).loadUnaligned(fromByteOffset: k, as: UInt64.self))
                let flagged = zeroBytes(word ^ 0x2222_2222_2222_2222) | zeroBytes(word ^ 0x5c5c_5c5c_5c5c_5c5c)
                if flagged != 0 { return k + flagged.trailingZeroBitCount >> 3 }
                k += 8
            }
        }
        while k < end, b[k] != 0x22, b[k] != 0x5c { k += 1 }
        return k
    }

    /// The high bit of every zero byte of `x` set, and possibly of bytes above the lowest zero
    /// byte (a borrow); the lowest set bit is exact.
    @inline(__always) static func zeroBytes(_ x: UInt64) -> UInt64 {
        (x &- 0x0101_0101_0101_0101) & ~x & 0x8080_8080_8080_8080
    }

    /// End of a number or literal at `i`, validated against the JSON grammar.
    static func scalarEnd(_ b: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        func literal(_ s: StaticString) -> Int? {
            let n = s.utf8CodeUnitCount
            guard start + n <= b.count else { return nil }
            for k in 0..<n where b[start + k] != s.utf8Start[k] { return nil }
            return start + n
        }
        switch b[start] {
        case UInt8(ascii: "t"): return literal("true")
        case UInt8(ascii: "f"): return literal("false")
        case UInt8(ascii: "n"): return literal("null")
        default: break
        }
        var i = start
        @inline(__always) func digits() -> Int {
            let s = i
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
            return i - s
        }
        if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
        guard i < b.count else { return nil }
        if b[i] == UInt8(ascii: "0") { i += 1 } else if digits() == 0 { return nil }
        if i < b.count, b[i] == UInt8(ascii: ".") { i += 1; guard digits() > 0 else { return nil } }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { return nil }
        }
        return i
    }
}

/// JSON string escaping and unescaping, Go-compatible (`<`, `>`, `&` written as `\u00XX`).
enum JSONEscaper {
    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }

    private static let hex = Array("0123456789abcdef".utf8)

    static func appendEscaped<S: Sequence>(_ bytes: S, into out: inout [UInt8]) where S.Element == UInt8 {
        for c in bytes {
            switch c {
            case 0x22: out.append(0x5c); out.append(0x22)
            case 0x5c: out.append(0x5c); out.append(0x5c)
            case 0x0a: out.append(0x5c); out.append(UInt8(ascii: "n"))
            case 0x0d: out.append(0x5c); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(0x5c); out.append(UInt8(ascii: "t"))
            case 0..<0x20, 0x3c, 0x3e, 0x26:
                out.append(contentsOf: [0x5c, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 0xf)]])
            default: out.append(c)
            }
        }
    }

    /// Decodes the content of a string (between the quotes) already validated by the tape.
    /// Lone surrogates become U+FFFD, as Go does.
    static func unescape(_ b: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(hi - lo)
        var i = lo
        func u16(_ at: Int) -> UInt32? {
            guard at + 4 <= hi else { return nil }
            var v: UInt32 = 0
            for k in 0..<4 { guard let h = hexValue(b[at + k]) else { return nil }; v = v << 4 | UInt32(h) }
            return v
        }
        while i < hi {
            // Runs without a backslash are found with memchr and copied in one go.
            var run = hi
            if let base = b.baseAddress, let hit = memchr(base + i, 0x5c, hi - i) {
                run = UnsafeRawPointer(hit).assumingMemoryBound(to: UInt8.self) - base
            }
            if run > i {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: b[i..<run]))
                i = run
                continue
            }
            guard i + 1 < hi else { out.append(b[i]); i += 1; continue }
            let e = b[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0c)
            case UInt8(ascii: "n"): out.append(0x0a)
            case UInt8(ascii: "r"): out.append(0x0d)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                guard var scalar = u16(i) else { continue }
                i += 4
                if scalar >= 0xd800, scalar < 0xdc00, i + 1 < hi, b[i] == 0x5c, b[i + 1] == UInt8(ascii: "u"),
                   let low = u16(i + 2), low >= 0xdc00, low < 0xe000 {
                    scalar = 0x10000 + ((scalar - 0xd800) << 10) + (low - 0xdc00)
                    i += 6
                }
                let us = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(Character(us)).utf8))
            default: out.append(e)
            }
        }
        return out
    }
}
