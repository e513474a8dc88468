#if canImport(Crypto)
import Crypto
#endif

/// Renders a ``Replacement`` for one masked value.
///
/// `base64` renders the replacement base64-encoded, for fields typed `[]byte` in Go (a Secret's
/// `data`, a kubeconfig's `client-key-data`): clients such as `kubectl describe` decode those
/// and would fail on a plain mask; they now decode to `***MASKED***` or `hmac:...`.
struct Replacer: Sendable {
    let key: [UInt8]
    #if canImport(Crypto)
    /// HMAC-SHA256 keyed once: each value's code starts from a copy of it rather than from the
    /// key (which costs two more SHA-256 blocks and allocations per value).
    private let keyed: HMAC<SHA256>
    #endif

    init(key: [UInt8]) {
        self.key = key
        #if canImport(Crypto)
        keyed = HMAC<SHA256>(key: SymmetricKey(data: key))
        #endif
    }

    func render(_ replacement: Replacement, value: UnsafeBufferPointer<UInt8>, base64: Bool = false) -> [UInt8] {
        let text: [UInt8]
        switch replacement {
        case .fixed(let mask): text = Array(mask.utf8)
        case .keyedHash: text = keyedHashText(value)
        }
        return base64 ? Replacer.base64(text) : text
    }

    func render(_ replacement: Replacement, value: [UInt8], base64: Bool = false) -> [UInt8] {
        value.withUnsafeBufferPointer { render(replacement, value: $0, base64: base64) }
    }

    private static let hashPrefix = Array("hmac:".utf8)

    /// `hmac:` and the first twelve hex digits of the value's keyed digest, built in one array
    /// (this runs once per masked value: a SecretList has four per item).
    private func keyedHashText(_ value: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var text = Replacer.hashPrefix
        text.reserveCapacity(text.count + 12)
        #if canImport(Crypto)
        var hmac = keyed
        hmac.update(data: UnsafeRawBufferPointer(value))
        hmac.finalize().withUnsafeBytes { digest in
            for byte in digest.prefix(6) {
                text.append(Replacer.hexDigits[Int(byte >> 4)])
                text.append(Replacer.hexDigits[Int(byte & 0xf)])
            }
        }
        #else
        text += Replacer.hexPrefix(keyedDigest(value), count: 12)
        #endif
        return text
    }

    #if !canImport(Crypto)
    /// Fuzz builds compile the module without swift-crypto; any stable keyed digest will do
    /// there. Production builds always have Crypto (Package.swift declares it).
    private func keyedDigest(_ value: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key + Array(value) { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return (0..<8).map { UInt8(truncatingIfNeeded: h >> (8 * UInt64($0))) }
    }
    #endif

    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func hexPrefix(_ bytes: [UInt8], count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        for b in bytes where out.count < count {
            out.append(hexDigits[Int(b >> 4)])
            out.append(hexDigits[Int(b & 0xf)])
        }
        return Array(out.prefix(count))
    }

    private static let base64Alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func base64(_ input: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity((input.count + 2) / 3 * 4)
        var i = 0
        while i < input.count {
            let b0 = input[i], b1 = i + 1 < input.count ? input[i + 1] : 0, b2 = i + 2 < input.count ? input[i + 2] : 0
            out.append(base64Alphabet[Int(b0 >> 2)])
            out.append(base64Alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
            out.append(i + 1 < input.count ? base64Alphabet[Int((b1 & 0x0f) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(i + 2 < input.count ? base64Alphabet[Int(b2 & 0x3f)] : UInt8(ascii: "="))
            i += 3
        }
        return out
    }
}
