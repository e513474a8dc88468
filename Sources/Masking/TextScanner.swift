/// Finds secrets in text: one JSON string value, a log chunk, an error message.
///
/// The prefilter is a 64 KiB table of the first two bytes of every keyword (detector
/// keywords such as `eyJ`, `-----BEGIN`, `AKIA`, `ghp_`, `xox`; custom-pattern literals;
/// always-scrub literals). A byte pair not in the table costs one load, and eight of them one
/// test, so ordinary text streams through; a pair in the table is verified against the few
/// keywords that start with it, and only a verified keyword calls its detector.
final class TextScanner: @unchecked Sendable {   // immutable after init
    enum Target {
        case detector(Detector)
        case literal
        case custom(Int)
        case kubeconfig
    }

    struct Anchor {
        let bytes: [UInt8]
        let caseInsensitive: Bool
        let target: Target
        let replacement: Replacement
    }

    struct Hit { var position: Int; var anchor: Int }

    struct Match {
        var range: Range<Int>
        var replacement: Replacement
        var base64 = false
        /// The match runs to the end of the text because its end marker is not there yet
        /// (a PEM block cut by a chunk boundary).
        var openEnded = false
    }

    let anchors: [Anchor]
    /// Anchor indices by first byte: `candidates[candidateStart[c]..<candidateStart[c + 1]]`.
    private let candidateStart: [Int32]
    private let candidates: [Int32]
    /// One byte per byte pair (first byte in the low half): nonzero when a keyword starts with it.
    private let bigrams: [UInt8]
    /// A 32 Ki-bit set of hashed first three bytes of every keyword: a second cheap test before
    /// the candidates are compared (ordinary text is full of `gh`, `se`, `to`, `pa`...). Empty
    /// when some keyword has only two bytes.
    private let trigrams: [UInt64]
    /// Every anchor's bytes, concatenated (`keywordStart[i]..<keywordStart[i + 1]`), so the hot
    /// loop verifies without touching the anchors' arrays.
    private let keywordBytes: [UInt8]
    private let keywordStart: [Int32]
    let customPatterns: [CompiledPattern]
    /// Custom patterns with no literal keyword: they run on every segment.
    let unanchoredCustom: [Int]
    let replacer: Replacer
    /// No keyword holds a byte JSON escapes (`"`, `\\`, `/`, control bytes): then a JSON string
    /// without `\\u` escapes whose raw bytes have no keyword hit has none once decoded either,
    /// and need not be decoded.
    let keywordsSurviveEscaping: Bool

    static let kubeconfigKeys: [String] = ["token", "client-key-data", "password", "id-token", "refresh-token", "access-token", "client-secret"]

    init(policy: MaskingPolicy) {
        var anchors: [Anchor] = []
        func add(_ text: String, _ target: Target, _ replacement: Replacement, ci: Bool = false) {
            anchors.append(Anchor(bytes: Array(ci ? text.lowercased().utf8 : text.utf8), caseInsensitive: ci, target: target, replacement: replacement))
        }
        for (detector, replacement) in policy.detectors {
            switch detector {
            case .jwt: add("eyJ", .detector(.jwt), replacement)
            case .pemPrivateKey: add("-----BEGIN ", .detector(.pemPrivateKey), replacement)
            case .awsAccessKey: for p in DetectorMatchers.awsPrefixes { add(p.description, .detector(.awsAccessKey), replacement) }
            case .awsSecretKey:
                add("secret_access_key", .detector(.awsSecretKey), replacement, ci: true)
                add("secretaccesskey", .detector(.awsSecretKey), replacement, ci: true)
            case .gcpServiceAccountKey: add("private_key", .detector(.gcpServiceAccountKey), replacement)
            case .githubToken: for p in ["ghp_", "gho_", "ghs_", "ghu_", "ghr_", "github_pat_"] { add(p, .detector(.githubToken), replacement) }
            case .gitlabToken: add("glpat-", .detector(.gitlabToken), replacement)
            case .slackToken: for p in ["xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-"] { add(p, .detector(.slackToken), replacement) }
            case .bearerToken: add("bearer", .detector(.bearerToken), replacement, ci: true)
            case .passwordAssignment:
                for k in ["password", "passwd", "passphrase", "secret", "apikey", "api_key", "api-key", "token"] {
                    add(k, .detector(.passwordAssignment), replacement, ci: true)
                }
            }
        }
        if let replacement = policy.structuralRules[.kubeconfig] { add("users:", .kubeconfig, replacement) }
        for (index, pattern) in policy.customPatterns.enumerated() where !pattern.keyword.isEmpty {
            let text = String(decoding: pattern.keyword, as: UTF8.self)
            add(text, .custom(index), pattern.replacement, ci: pattern.keywordCaseInsensitive)
        }
        for literal in policy.alwaysScrub where literal.utf8.count >= 8 {
            add(literal, .literal, .mask)
            add(String(decoding: Replacer.base64(Array(literal.utf8)), as: UTF8.self), .literal, .mask)
        }
        var byFirst = [[Int]](repeating: [], count: 256)
        var bigrams = [UInt8](repeating: 0, count: 65536)
        for (index, anchor) in anchors.enumerated() where anchor.bytes.count >= 2 {
            let firsts = anchor.caseInsensitive ? TextScanner.caseVariants(anchor.bytes[0]) : [anchor.bytes[0]]
            let seconds = anchor.caseInsensitive ? TextScanner.caseVariants(anchor.bytes[1]) : [anchor.bytes[1]]
            for f in firsts {
                byFirst[Int(f)].append(index)
                for s in seconds { bigrams[Int(f) | Int(s) << 8] = 1 }
            }
        }
        var trigrams = [UInt64](repeating: 0, count: 512)
        for anchor in anchors where anchor.bytes.count >= 3 {
            let variants = anchor.bytes.prefix(3).map { anchor.caseInsensitive ? TextScanner.caseVariants($0) : [$0] }
            for a in variants[0] {
                for b in variants[1] {
                    for c in variants[2] {
                        let h = TextScanner.trigramHash(a, b, c)
                        trigrams[h >> 6] |= 1 << UInt64(h & 63)
                    }
                }
            }
        }
        self.trigrams = anchors.contains { $0.bytes.count == 2 } ? [] : trigrams
        var candidateStart: [Int32] = [0]
        var candidates: [Int32] = []
        for list in byFirst {
            candidates += list.map(Int32.init)
            candidateStart.append(Int32(candidates.count))
        }
        var keywordBytes: [UInt8] = []
        var keywordStart: [Int32] = [0]
        for anchor in anchors {
            keywordBytes += anchor.bytes
            keywordStart.append(Int32(keywordBytes.count))
        }
        self.candidateStart = candidateStart
        self.candidates = candidates
        self.keywordBytes = keywordBytes
        self.keywordStart = keywordStart
        self.keywordsSurviveEscaping = anchors.allSatisfy { $0.bytes.allSatisfy { $0 >= 0x20 && $0 != 0x22 && $0 != 0x5c && $0 != 0x2f } }
        self.anchors = anchors
        self.bigrams = bigrams
        self.customPatterns = policy.customPatterns
        self.unanchoredCustom = policy.customPatterns.indices.filter { policy.customPatterns[$0].keyword.isEmpty }
        self.replacer = Replacer(key: policy.hashKey)
    }

    @inline(__always) static func trigramHash(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> Int {
        Int(a) ^ Int(b) << 3 ^ Int(c) << 7   // < 32 Ki
    }

    private static func caseVariants(_ c: UInt8) -> [UInt8] {
        if c >= 0x61, c <= 0x7a { return [c, c - 0x20] }
        return [c]
    }

    // MARK: - Prefilter

    /// Keyword hits in `lo..<hi`, in position order.
    func collectHits(_ b: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int, into hits: inout [Hit]) {
        collectHits(b, lo, hi, keywordsEndBy: hi, into: &hits)
    }

    /// Keyword hits starting in `lo..<hi` whose keyword ends by `limit` (`limit >= hi`), in
    /// position order. The JSON masker scans each string value on its own with `limit` the
    /// document's end: the hits are then exactly those a scan of the whole document finds in
    /// that value, while keys and structure are not scanned at all.
    func collectHits(_ b: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int, keywordsEndBy limit: Int, into hits: inout [Hit]) {
        guard hi > lo, limit - lo >= 2, let base = b.baseAddress else { return }
        bigrams.withUnsafeBufferPointer { table in
            trigrams.withUnsafeBufferPointer { tri in
                let raw = UnsafeRawPointer(base)
                var i = lo
                // Eight positions per step, with one branch: the table holds 0 or 1 for each
                // byte pair, read as one 16-bit load (little-endian: a pair's first byte is the
                // low half of its key), and the eight entries are or-ed together. Ordinary text
                // rarely has a pair in the table: most steps end after sixteen loads and one
                // test; a step that has one makes a bit mask of its positions to look at.
                // The step may read past `hi` (never past `limit`): positions from `hi` on are
                // cleared from the mask, so a short string costs one step, not a byte loop.
                @inline(__always) func entry(_ p: Int) -> UInt8 {
                    table[Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: p, as: UInt16.self)))]
                }
                while i < hi, i + 9 <= limit {
                    var any: UInt8 = 0
                    for k in 0..<8 { any |= entry(i + k) }
                    if any != 0 {
                        var candidates: UInt32 = 0   // bit k: position i + k
                        for k in 0..<8 { candidates |= UInt32(entry(i + k)) << UInt32(k) }
                        if hi - i < 8 { candidates &= (1 << UInt32(hi - i)) - 1 }
                        while candidates != 0 {   // lowest bit first: hits stay in position order
                            checkPosition(b, i + candidates.trailingZeroBitCount, limit, table, tri, into: &hits)
                            candidates &= candidates - 1
                        }
                    }
                    i += 8
                }
                while i < hi, i < limit - 1 {
                    checkPosition(b, i, limit, table, tri, into: &hits)
                    i += 1
                }
            }
        }
    }

    /// Appends the hits at `p` when its byte pair, then its hashed first three bytes, are in
    /// the tables.
    @inline(__always) private func checkPosition(_ b: UnsafeBufferPointer<UInt8>, _ p: Int, _ hi: Int,
                                                 _ table: UnsafeBufferPointer<UInt8>, _ tri: UnsafeBufferPointer<UInt64>,
                                                 into hits: inout [Hit]) {
        guard table[Int(b[p]) | Int(b[p + 1]) << 8] != 0 else { return }
        if !tri.isEmpty, p + 2 < hi {
            let h = TextScanner.trigramHash(b[p], b[p + 1], b[p + 2])
            guard tri[h >> 6] & (1 << UInt64(h & 63)) != 0 else { return }
        }
        verifyCandidates(b, p, hi, into: &hits)
    }

    /// Appends a hit for every keyword starting at `p`.
    private func verifyCandidates(_ b: UnsafeBufferPointer<UInt8>, _ p: Int, _ hi: Int, into hits: inout [Hit]) {
        candidates.withUnsafeBufferPointer { candidates in
            keywordBytes.withUnsafeBufferPointer { keywords in
                let first = Int(b[p])
                for slot in Int(candidateStart[first])..<Int(candidateStart[first + 1]) {
                    let index = Int(candidates[slot])
                    let start = Int(keywordStart[index]), n = Int(keywordStart[index + 1]) - start
                    guard p + n <= hi else { continue }
                    var matched = true
                    if anchors[index].caseInsensitive {
                        for k in 0..<n {
                            var c = b[p + k]
                            if c >= 0x41, c <= 0x5a { c |= 0x20 }
                            if c != keywords[start + k] { matched = false; break }
                        }
                    } else {
                        for k in 0..<n where b[p + k] != keywords[start + k] { matched = false; break }
                    }
                    if matched { hits.append(Hit(position: p, anchor: index)) }
                }
            }
        }
    }

    /// True when a segment with no keyword hit still has to be examined (by an unanchored
    /// custom pattern).
    var needsEverySegment: Bool { !unanchoredCustom.isEmpty }

    // MARK: - Matching

    /// All matches in `lo..<hi` (merged, in order). `hits` are this segment's keyword hits.
    /// `lineScoped` runs keyword-anchored custom patterns on the hit's line instead of the whole
    /// segment (plain text can be megabytes long).
    func matches(_ b: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int, hits: ArraySlice<Hit>, lineScoped: Bool) -> [Match] {
        var found: [Match] = []
        var customDone = Set<Int>()
        var kubeconfigDone = false
        for hit in hits {
            let anchor = anchors[hit.anchor]
            let p = hit.position
            if let last = found.last, last.range.contains(p), !(anchor.target.isLiteral) { continue }
            switch anchor.target {
            case .literal:
                // A literal may hold any byte; one holding a '"' can only line up with a JSON
                // document across the string's end. Mask up to the end, never past it.
                found.append(Match(range: p..<min(p + anchor.bytes.count, hi), replacement: anchor.replacement))
            case .detector(let detector):
                if var match = detect(detector, b, p, anchor.bytes.count, lo, hi) {
                    match.replacement = anchor.replacement
                    found.append(match)
                }
            case .custom(let index):
                var segLo = lo, segHi = hi
                if lineScoped {
                    segLo = p; while segLo > lo, b[segLo - 1] != 0x0a, p - segLo < 4096 { segLo -= 1 }
                    segHi = p; while segHi < hi, b[segHi] != 0x0a, segHi - p < 4096 { segHi += 1 }
                }
                guard customDone.insert(index &* 1_000_003 &+ segLo).inserted else { continue }
                found += customMatches(index, b, segLo, segHi)
            case .kubeconfig:
                guard !kubeconfigDone else { continue }
                kubeconfigDone = true
                found += kubeconfigMatches(b, lo, hi, anchor.replacement)
            }
        }
        for index in unanchoredCustom { found += customMatches(index, b, lo, hi) }
        return TextScanner.merge(found)
    }

    private func detect(_ detector: Detector, _ b: UnsafeBufferPointer<UInt8>, _ p: Int, _ n: Int, _ lo: Int, _ hi: Int) -> Match? {
        typealias M = DetectorMatchers
        let range: Range<Int>?
        switch detector {
        case .jwt: range = M.jwt(b, p, lo, hi)
        case .pemPrivateKey:
            guard let r = M.pemPrivateKey(b, p, lo, hi) else { return nil }
            return Match(range: r, replacement: .mask, openEnded: r.upperBound == hi)
        case .awsAccessKey: range = M.awsAccessKey(b, p, lo, hi)
        case .awsSecretKey: range = M.awsSecretKey(b, p, n, lo, hi)
        case .gcpServiceAccountKey: range = M.gcpPrivateKey(b, p, lo, hi)
        case .githubToken: range = M.prefixedToken(b, p, prefixLength: n, minimum: 20, lo, hi) { M.isAlnum($0) || $0 == 0x5f }
        case .gitlabToken: range = M.prefixedToken(b, p, prefixLength: n, minimum: 20, lo, hi, allowed: M.isBase64URL)
        case .slackToken: range = M.prefixedToken(b, p, prefixLength: n, minimum: 10, lo, hi) { M.isAlnum($0) || $0 == 0x2d }
        case .bearerToken: range = M.bearer(b, p, lo, hi)
        case .passwordAssignment: range = M.passwordAssignment(b, p, n, lo, hi)
        }
        return range.map { Match(range: $0, replacement: .mask) }
    }

    private func customMatches(_ index: Int, _ b: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int) -> [Match] {
        let pattern = customPatterns[index]
        let bytes = UnsafeBufferPointer(rebasing: b[lo..<hi])
        guard let text = String(validating: bytes, as: UTF8.self) else {
            // Not UTF-8: offsets would shift after repair, so a hit masks the whole segment.
            let repaired = String(decoding: bytes, as: UTF8.self)
            return pattern.matches(in: repaired).isEmpty ? [] : [Match(range: lo..<hi, replacement: pattern.replacement)]
        }
        return pattern.matches(in: text).map { range in
            let start = lo + text.utf8.distance(from: text.startIndex, to: range.lowerBound)
            let end = lo + text.utf8.distance(from: text.startIndex, to: range.upperBound)
            return Match(range: start..<end, replacement: pattern.replacement)
        }
    }

    /// In YAML kubeconfig text: the value of every credential key line (`token: ...`,
    /// `client-key-data: ...`), to the end of the line, quotes excluded.
    private func kubeconfigMatches(_ b: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int, _ replacement: Replacement) -> [Match] {
        var out: [Match] = []
        var lineStart = lo
        while lineStart < hi {
            var lineEnd = lineStart
            while lineEnd < hi, b[lineEnd] != 0x0a, !(b[lineEnd] == 0x5c && lineEnd + 1 < hi && b[lineEnd + 1] == UInt8(ascii: "n")) { lineEnd += 1 }
            var i = lineStart
            while i < lineEnd, b[i] == 0x20 || b[i] == 0x09 || b[i] == UInt8(ascii: "-") { i += 1 }
            for key in TextScanner.kubeconfigKeys {
                let k = Array(key.utf8)
                guard i + k.count < lineEnd, b[i + k.count] == UInt8(ascii: ":"),
                      k.indices.allSatisfy({ b[i + $0] == k[$0] }) else { continue }
                var v = i + k.count + 1
                while v < lineEnd, b[v] == 0x20 || b[v] == 0x22 || b[v] == 0x27 { v += 1 }
                var e = lineEnd
                while e > v, b[e - 1] == 0x20 || b[e - 1] == 0x22 || b[e - 1] == 0x27 || b[e - 1] == 0x0d || b[e - 1] == 0x5c { e -= 1 }
                if e > v { out.append(Match(range: v..<e, replacement: replacement, base64: key == "client-key-data")) }
                break
            }
            lineEnd = lineEnd < hi && b[lineEnd] == 0x5c ? lineEnd + 2 : lineEnd + 1
            lineStart = lineEnd
        }
        return out
    }

    static func merge(_ matches: [Match]) -> [Match] {
        guard matches.count > 1 else { return matches }
        let sorted = matches.sorted { $0.range.lowerBound < $1.range.lowerBound }
        var out: [Match] = [sorted[0]]
        for m in sorted.dropFirst() {
            if m.range.lowerBound < out[out.count - 1].range.upperBound {
                let last = out[out.count - 1]
                out[out.count - 1].range = last.range.lowerBound..<max(last.range.upperBound, m.range.upperBound)
                out[out.count - 1].openEnded = last.openEnded || m.openEnded
                out[out.count - 1].base64 = last.base64 && m.base64
            } else {
                out.append(m)
            }
        }
        return out
    }

    // MARK: - Rewriting

    /// Appends `lo..<hi` to `out` with every match replaced. `jsonEscape` escapes the rendered
    /// replacement for use inside a JSON string.
    func write(_ b: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int, _ matches: [Match], jsonEscape: Bool, into out: inout [UInt8]) {
        var cursor = lo
        for m in matches {
            out.append(contentsOf: UnsafeBufferPointer(rebasing: b[cursor..<m.range.lowerBound]))
            let rendered = replacer.render(m.replacement, value: UnsafeBufferPointer(rebasing: b[m.range]), base64: m.base64)
            if jsonEscape { JSONEscaper.appendEscaped(rendered, into: &out) } else { out.append(contentsOf: rendered) }
            cursor = m.range.upperBound
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: b[cursor..<hi]))
    }

    /// Scans and rewrites a whole text; returns the matches too (for the streaming masker).
    func maskText(_ b: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) -> [Match] {
        var hits: [Hit] = []
        collectHits(b, 0, b.count, into: &hits)
        guard !hits.isEmpty || needsEverySegment else {
            out.append(contentsOf: b)
            return []
        }
        let found = matches(b, 0, b.count, hits: hits[...], lineScoped: true)
        write(b, 0, b.count, found, jsonEscape: false, into: &out)
        return found
    }
}

extension TextScanner.Target {
    var isLiteral: Bool { if case .literal = self { return true }; return false }
}
