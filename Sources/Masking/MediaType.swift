/// Questions about a `Content-Type` value, asked on every answer.
///
/// Byte-wise and ASCII case-insensitive: with Foundation imported, `String.contains` resolves to
/// `NSString.range(of:)`, which was 2% of a small GET's CPU time in the gateway.
public enum MediaType {
    /// Whether `type` contains `word` (lowercase ASCII), ignoring ASCII case.
    public static func mentions(_ type: String?, _ word: StaticString) -> Bool {
        guard let type, word.utf8CodeUnitCount > 0 else { return false }
        let needle = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        var haystack = type
        return haystack.withUTF8 { bytes in
            guard bytes.count >= needle.count else { return false }
            outer: for start in 0...(bytes.count - needle.count) {
                for offset in 0..<needle.count {
                    var byte = bytes[start + offset]
                    if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte += 32 }
                    if byte != needle[offset] { continue outer }
                }
                return true
            }
            return false
        }
    }
}
