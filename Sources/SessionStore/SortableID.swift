import Foundation

/// Time-ordered identifiers (the ULID layout): 48 bits of Unix milliseconds then 80 random
/// bits, in Crockford base32, 26 characters. Lexical order is creation order to the
/// millisecond, so session lists sort by id without a join, and ids are safe in URLs,
/// User-Agent strings and file names.
public enum SortableID {
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    public static func make(at date: Date) -> String {
        let (random0, random1) = pool.draw()
        let millis = UInt64(max(0, date.timeIntervalSince1970 * 1000)) & 0xFFFF_FFFF_FFFF
        var chars = [UInt8](repeating: 0, count: 26)
        var t = millis
        for i in stride(from: 9, through: 0, by: -1) {
            chars[i] = alphabet[Int(t & 31)]
            t >>= 5
        }
        // 80 random bits = 16 base32 digits; draw 5 bits per digit.
        var random = random0
        var randomHigh = random1
        for i in 10..<26 {
            if i == 22 { random = randomHigh; randomHigh = 0 }
            chars[i] = alphabet[Int(random & 31)]
            random >>= 5
        }
        return String(decoding: chars, as: UTF8.self)
    }

    private static let pool = RandomPool()
}

/// Random bytes from the kernel's generator, fetched 4 KiB at a time: two `getrandom` calls
/// per id (`SystemRandomNumberGenerator.next()` makes one per 8 bytes) were two system calls
/// per recorded request; now one serves about 250 ids. The bytes are the kernel's CSPRNG
/// output, each handed out once. (Not fork-safe: a forked child would repeat the parent's
/// remaining bytes; the gateway forks only to exec.)
private final class RandomPool: @unchecked Sendable {   // state behind `lock`
    private let lock = NSLock()
    private var bytes = [UInt8](repeating: 0, count: 4096)
    private var next = 4096

    /// 128 random bits.
    func draw() -> (UInt64, UInt64) {
        lock.withLock {
            if next + 16 > bytes.count {
                bytes.withUnsafeMutableBytes { arc4random_buf($0.baseAddress!, $0.count) }
                next = 0
            }
            defer { next += 16 }
            return bytes.withUnsafeBytes { raw in
                (raw.loadUnaligned(fromByteOffset: next, as: UInt64.self),
                 raw.loadUnaligned(fromByteOffset: next + 8, as: UInt64.self))
            }
        }
    }
}
