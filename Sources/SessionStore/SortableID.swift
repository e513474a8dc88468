import Foundation

/// Time-ordered identifiers (the ULID layout): 48 bits of Unix milliseconds then 80 random
/// bits, in Crockford base32, 26 characters. Lexical order is creation order to the
/// millisecond, so session lists sort by id without a join, and ids are safe in URLs,
/// User-Agent strings and file names.
public enum SortableID {
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    public static func make(at date: Date) -> String {
        var generator = SystemRandomNumberGenerator()
        let millis = UInt64(max(0, date.timeIntervalSince1970 * 1000)) & 0xFFFF_FFFF_FFFF
        var chars = [UInt8](repeating: 0, count: 26)
        var t = millis
        for i in stride(from: 9, through: 0, by: -1) {
            chars[i] = alphabet[Int(t & 31)]
            t >>= 5
        }
        // 80 random bits = 16 base32 digits; draw 5 bits per digit.
        var random = generator.next() as UInt64
        var randomHigh = generator.next() as UInt64
        for i in 10..<26 {
            if i == 22 { random = randomHigh; randomHigh = 0 }
            chars[i] = alphabet[Int(random & 31)]
            random >>= 5
        }
        return String(decoding: chars, as: UTF8.self)
    }
}
