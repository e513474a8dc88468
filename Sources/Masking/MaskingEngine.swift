import Foundation

/// The shared, immutable state behind a ``Masker``: the policy's rules, the text scanner's
/// prefilter tables and the env-name matchers. Safe to use from many threads at once.
final class MaskingEngine: @unchecked Sendable {   // immutable after init
    let policy: MaskingPolicy
    let scanner: TextScanner
    private let envSubstrings: [[UInt8]]
    private let envRegexes: [RegexBox]
    // Rule lookups hoisted out of the dictionaries: RawRepresentable enums hash their String
    // raw value, which showed up as a tenth of the time on ConfigMap lists.
    private let structural: [Replacement?]
    let gcpRule: Replacement?, awsSecretRule: Replacement?, passwordRule: Replacement?
    /// By byte: can a member name ending in it have a ``KeyCategory``? Built from the suffixes
    /// `keyCategory` knows (their last letters, either case) and the separators it skips, so
    /// the JSON walk can turn most names away on one load without calling it.
    private let categoryLastBytes: [Bool]

    init(policy: MaskingPolicy) {
        self.policy = policy
        self.structural = StructuralRule.allCases.map { policy.structuralRules[$0] }
        self.gcpRule = policy.detectors[.gcpServiceAccountKey]
        self.awsSecretRule = policy.detectors[.awsSecretKey]
        self.passwordRule = policy.detectors[.passwordAssignment]
        var lastBytes = [Bool](repeating: false, count: 256)
        for suffix in MaskingEngine.passwordSuffixes + [MaskingEngine.awsSuffix, MaskingEngine.privateKey] {
            let c = suffix[suffix.count - 1]
            lastBytes[Int(c)] = true
            if c >= 0x61, c <= 0x7a { lastBytes[Int(c - 0x20)] = true }
        }
        for separator: UInt8 in [0x5f, 0x2d, 0x2e] { lastBytes[Int(separator)] = true }
        self.categoryLastBytes = lastBytes
        self.scanner = TextScanner(policy: policy)
        var substrings: [[UInt8]] = []
        var regexes: [RegexBox] = []
        for pattern in policy.envNamePatterns where !pattern.isEmpty {
            let plain = pattern.utf8.allSatisfy { DetectorMatchers.isAlnum($0) || $0 == 0x5f || $0 == 0x2d }
            if plain {
                substrings.append(Array(pattern.uppercased().utf8))
            } else if let regex = try? NSRegularExpression(pattern: MaskingEngine.globToRegex(pattern), options: [.caseInsensitive]) {
                regexes.append(RegexBox(regex))
            } else {
                substrings.append(Array(pattern.uppercased().utf8))   // not a regex: match it literally
            }
        }
        envSubstrings = substrings
        envRegexes = regexes
    }

    static func envNamePatternProblem(_ pattern: String) -> String? {
        if pattern.isEmpty { return "is empty" }
        if pattern.utf8.allSatisfy({ DetectorMatchers.isAlnum($0) || $0 == 0x5f || $0 == 0x2d }) { return nil }
        do {
            _ = try NSRegularExpression(pattern: globToRegex(pattern), options: [.caseInsensitive])
            return nil
        } catch {
            return "\"\(pattern)\" is neither a name, a *-glob nor a regular expression that compiles"
        }
    }

    /// `*_PASS` style globs become anchored regexes; anything else is used as a regex as is.
    static func globToRegex(_ pattern: String) -> String {
        let isGlob = pattern.contains("*") && !pattern.contains(".*") && !pattern.contains("\\")
        guard isGlob else { return pattern }
        return "^" + pattern.split(separator: "*", omittingEmptySubsequences: false)
            .map { NSRegularExpression.escapedPattern(for: String($0)) }.joined(separator: ".*") + "$"
    }

    @inline(__always) func rule(_ rule: StructuralRule) -> Replacement? { structural[rule.ordinal] }

    func envNameMatches(_ name: [UInt8]) -> Bool {
        let upper = name.map { $0 >= 0x61 && $0 <= 0x7a ? $0 - 0x20 : $0 }
        for needle in envSubstrings where MaskingEngine.contains(upper, needle) { return true }
        guard !envRegexes.isEmpty else { return false }
        let text = String(decoding: name, as: UTF8.self)
        let range = NSRange(text.startIndex..., in: text)
        return envRegexes.contains { $0.value.firstMatch(in: text, options: [], range: range) != nil }
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return needle.isEmpty }
        outer: for i in 0...(haystack.count - needle.count) {
            for k in 0..<needle.count where haystack[i + k] != needle[k] { continue outer }
            return true
        }
        return false
    }

    // MARK: - Member names

    enum KeyCategory { case password, gcpPrivateKey, awsSecretKey }

    private static let passwordSuffixes: [[UInt8]] = ["password", "passwd", "passphrase", "secret", "apikey", "token", "secretkey"].map { Array($0.utf8) }
    private static let awsSuffix = Array("secretaccesskey".utf8)
    private static let privateKey = Array("private_key".utf8)

    /// Classifies a member name by its suffix, ignoring case and `_`, `-`, `.` separators:
    /// `DB_PASSWORD`, `clientSecret`, `api-key`, `aws_secret_access_key`, `private_key`.
    func keyCategory(_ key: UnsafeBufferPointer<UInt8>) -> KeyCategory? {
        guard key.count >= 3, key.count <= 128 else { return nil }
        // Cheap first test on the last two letters (separators skipped), which rejects most
        // names: every suffix below ends in rd, wd, se, et, ey or en.
        guard let pair = MaskingEngine.lastTwoLetters(key) else { return nil }
        switch pair {
        case (UInt8(ascii: "r"), UInt8(ascii: "d")), (UInt8(ascii: "w"), UInt8(ascii: "d")),
             (UInt8(ascii: "s"), UInt8(ascii: "e")), (UInt8(ascii: "e"), UInt8(ascii: "t")),
             (UInt8(ascii: "e"), UInt8(ascii: "y")), (UInt8(ascii: "e"), UInt8(ascii: "n")):
            break
        default:
            return nil
        }
        if gcpRule != nil, key.count == 11, memcmp(key.baseAddress!, MaskingEngine.privateKey, 11) == 0 { return .gcpPrivateKey }
        if awsSecretRule != nil, MaskingEngine.hasNormalizedSuffix(key, MaskingEngine.awsSuffix) { return .awsSecretKey }
        if passwordRule != nil,
           MaskingEngine.passwordSuffixes.contains(where: { MaskingEngine.hasNormalizedSuffix(key, $0) }) { return .password }
        return nil
    }

    /// False when no member name ending in `last` has a category: ``keyCategory(_:)`` would
    /// return nil for it.
    @inline(__always) func nameMayHaveCategory(endingIn last: UInt8) -> Bool { categoryLastBytes[Int(last)] }

    /// The last two letters of a member name, lower-cased, `_`, `-` and `.` skipped.
    @inline(__always) private static func lastTwoLetters(_ key: UnsafeBufferPointer<UInt8>) -> (UInt8, UInt8)? {
        var i = key.count - 1
        var found: (UInt8, UInt8) = (0, 0)
        var n = 0
        while i >= 0, n < 2 {
            var c = key[i]
            i -= 1
            if c == 0x5f || c == 0x2d || c == 0x2e { continue }
            if c >= 0x41, c <= 0x5a { c |= 0x20 }
            if n == 0 { found.1 = c } else { found.0 = c }
            n += 1
        }
        return n == 2 ? found : nil
    }

    private static func hasNormalizedSuffix(_ key: UnsafeBufferPointer<UInt8>, _ suffix: [UInt8]) -> Bool {
        var i = key.count - 1, k = suffix.count - 1
        while k >= 0 {
            guard i >= 0 else { return false }
            var c = key[i]
            if c == 0x5f || c == 0x2d || c == 0x2e { i -= 1; continue }
            if c >= 0x41, c <= 0x5a { c |= 0x20 }
            guard c == suffix[k] else { return false }
            i -= 1; k -= 1
        }
        // The suffix must start a word: `tokens` and `notoken` are fine, `mytoken` too — but
        // `kubernetesToken`-like names are what we want, so any boundary is accepted.
        return true
    }

    /// The replacement for a string value under a member of this category, or nil to leave it.
    func keyRule(_ category: KeyCategory, value: [UInt8]) -> Replacement? {
        switch category {
        case .gcpPrivateKey:
            return value.isEmpty ? nil : gcpRule
        case .awsSecretKey:
            guard value.count == 40, value.allSatisfy(DetectorMatchers.isBase64) else { return nil }
            return awsSecretRule
        case .password:
            guard PasswordHeuristics.looksLikeSecret(value) else { return nil }
            // A JWT or other token under `token` is masked by its own detector as well; either way
            // the whole value goes.
            return passwordRule
        }
    }

    /// Docker configs (`"auths"`) and kubeconfigs (`"clusters"` with `"users"`) held as JSON.
    func credentialDocumentMarkers(_ content: [UInt8]) -> Bool {
        if rule(.dockerConfig) != nil, MaskingEngine.contains(content, Array("\"auths\"".utf8)) { return true }
        if rule(.kubeconfig) != nil, MaskingEngine.contains(content, Array("\"users\"".utf8)),
           MaskingEngine.contains(content, Array("\"clusters\"".utf8)) { return true }
        return false
    }

    // MARK: - Documents

    /// The field rules for the objects of `resource` (nil: unknown, only rules naming none).
    func fieldRules(for resource: MaskedResource?) -> [FieldRule] {
        policy.fieldRules.isEmpty ? [] : policy.fieldRules.filter { $0.applies(to: resource) }
    }

    /// Masks a JSON text; nil when it is not JSON.
    /// `fieldRules`: those for the body's resource objects (a document held in a string value
    /// gets none, but the last-applied annotation of such an object gets its rules);
    /// `depthLimit`: how deep the run may recurse before it postpones (see ``JSONMaskRun``).
    func maskDocument(_ bytes: [UInt8], kindHint: String?, credentialDocument: Bool, forcedSecret: Replacement?, nesting: Int,
                      fieldRules: [FieldRule] = [], depthLimit: Int = JSONMaskRun.maxWalkDepth) -> [UInt8]? {
        bytes.withUnsafeBufferPointer { buffer in
            guard let tape = JSONTape(buffer) else { return nil }
            var run = JSONMaskRun(engine: self, bytes: buffer, tape: tape, credentialDocument: credentialDocument,
                                  forcedSecret: forcedSecret, nesting: nesting, fieldRules: fieldRules, depthLimit: depthLimit)
            return run.run(kindHint: kindHint)
        }
    }

    func maskText(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        _ = scanner.maskText(bytes, into: &out)
        return out
    }
}

extension StructuralRule {
    var ordinal: Int {
        switch self {
        case .secretData: return 0
        case .lastAppliedConfiguration: return 1
        case .envValue: return 2
        case .tokenRequestToken: return 3
        case .kubeconfig: return 4
        case .dockerConfig: return 5
        }
    }
}
