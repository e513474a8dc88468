/// Masks a text stream that arrives in chunks (`kubectl logs -f`, exec output), so that a
/// secret split across two chunks is still caught.
///
/// Contract: `feed` returns the masked text up to the last line break of what it has seen and
/// holds the unfinished line back, up to `maxHeldBytes`; a longer line is cut at its last space
/// or tab inside the window (tokens have no spaces), else hard at the window. Inside a PEM
/// private key whose END line has not arrived yet, everything is masked until it does.
/// `flush()` releases the held tail (call it at end of stream, or after an idle pause so an
/// interactive shell's prompt shows). Secrets longer than `maxHeldBytes` with no line break
/// can be split, which is the bound of the guarantee.
public struct TextStreamMasker: Sendable {
    public static let defaultMaxHeldBytes = 64 * 1024

    let engine: MaskingEngine
    public let maxHeldBytes: Int
    private var held: [UInt8] = []
    private var inPrivateKey = false

    init(engine: MaskingEngine, maxHeldBytes: Int) {
        self.engine = engine
        self.maxHeldBytes = max(256, maxHeldBytes)
    }

    /// Masked text that is ready to send; may be empty while a line is incomplete.
    public mutating func feed(_ chunk: [UInt8]) -> [UInt8] {
        held.append(contentsOf: chunk)
        guard let cut = cutPoint() else { return [] }
        let ready = Array(held[..<cut])
        held.removeFirst(cut)
        return mask(ready)
    }

    /// Everything still held, masked.
    public mutating func flush() -> [UInt8] {
        let ready = held
        held = []
        return mask(ready)
    }

    private func cutPoint() -> Int? {
        if let newline = held.lastIndex(of: 0x0a) {
            let cut = newline + 1
            if held.count - cut <= maxHeldBytes { return cut }
        }
        guard held.count > maxHeldBytes else { return nil }
        let hard = held.count - maxHeldBytes
        // Cut after a space or tab in the window's first half, else hard.
        var i = hard
        let floor = max(0, hard - maxHeldBytes / 2)
        while i > floor, held[i - 1] != 0x20, held[i - 1] != 0x09, held[i - 1] != 0x0a { i -= 1 }
        return i > floor ? i : hard
    }

    private mutating func mask(_ text: [UInt8]) -> [UInt8] {
        guard !text.isEmpty else { return [] }
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var start = 0
        if inPrivateKey {
            // Mask up to the END line, keep it and what follows for normal masking.
            if let end = TextStreamMasker.find(Array("-----END".utf8), in: text) {
                if end > 0 { out.append(contentsOf: engine.scanner.replacer.render(.mask, value: [])) }
                start = end
                inPrivateKey = false
            } else {
                return engine.scanner.replacer.render(.mask, value: []) + (text.last == 0x0a ? [0x0a] : [])
            }
        }
        let rest = Array(text[start...])
        let found = rest.withUnsafeBufferPointer { engine.scanner.maskText($0, into: &out) }
        if found.last?.openEnded == true { inPrivateKey = true }
        return out
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        outer: for i in 0...(haystack.count - needle.count) {
            for k in 0..<needle.count where haystack[i + k] != needle[k] { continue outer }
            return i
        }
        return nil
    }
}
