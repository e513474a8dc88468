import Foundation

/// Compiles the custom regexes of MaskingRules, rejecting the ones that do not compile or could
/// backtrack catastrophically, with a reason that MaskingRule status shows as `InvalidSpec`.
///
/// Patterns use ICU syntax (NSRegularExpression). The whole match is masked, whatever groups
/// the pattern has (`ik_(live|test)_\w{24,}` hides the whole key), unless the pattern names a
/// group ``CompiledPattern/maskedGroupName``: then only that group is masked
/// (`api_key=(?<secret>\w+)` keeps `api_key=` visible).
/// The longest literal every match must contain becomes the pattern's prefilter keyword, so text
/// without it is never handed to the regex engine; a pattern with no such literal runs on every
/// string value and line, which is slower (see ``CompiledPattern/keyword``).
public enum PatternCompiler {
    /// Longest pattern accepted, in bytes.
    public static let maxPatternLength = 1024

    public static func compile(
        name: String, pattern: String, replacement: Replacement = .mask
    ) throws(PatternError) -> CompiledPattern {
        func fail(_ kind: PatternError.Kind, _ reason: String) -> PatternError {
            PatternError(name: name, pattern: pattern, kind: kind, reason: reason)
        }
        guard !pattern.isEmpty else { throw fail(.invalidSyntax, "pattern is empty") }
        guard pattern.utf8.count <= maxPatternLength else {
            throw fail(.invalidSyntax, "pattern is \(pattern.utf8.count) bytes long, more than \(maxPatternLength)")
        }
        let shape: RegexShape
        do {
            shape = try RegexShape(pattern)
        } catch let error as RegexShape.SyntaxError {
            throw fail(.invalidSyntax, "does not compile: \(error.message) at offset \(error.offset)")
        } catch {
            throw fail(.invalidSyntax, "does not compile: \(error)")
        }
        let regex: NSRegularExpression
        do {
            regex = try NSRegularExpression(pattern: pattern, options: [])
        } catch {
            throw fail(.invalidSyntax, "does not compile: ICU rejected the pattern (\(error.localizedDescription))")
        }
        if let reason = shape.catastrophicReason() {
            throw fail(.catastrophic, reason)
        }
        if regex.firstMatch(in: "", options: [], range: NSRange(location: 0, length: 0)) != nil {
            throw fail(.matchesEmpty, "matches the empty string, so it would mask between every character; require at least one character")
        }
        let literal = shape.requiredLiteral()
        return CompiledPattern(
            name: name, pattern: pattern, replacement: replacement,
            keyword: literal.count >= 3 ? literal : [], keywordCaseInsensitive: shape.caseInsensitive,
            masksNamedGroupOnly: shape.groupNames.contains(CompiledPattern.maskedGroupName), regex: RegexBox(regex)
        )
    }
}

/// A custom pattern that passed ``PatternCompiler``.
public struct CompiledPattern: Sendable {
    public let name: String
    public let pattern: String
    public let replacement: Replacement
    /// Literal text every match contains (at least 3 bytes), used as the prefilter keyword;
    /// empty when the pattern has none.
    public let keyword: [UInt8]
    let keywordCaseInsensitive: Bool
    /// The pattern has a group named ``maskedGroupName``: only that group of a match is masked.
    let masksNamedGroupOnly: Bool
    let regex: RegexBox

    /// The capture group a pattern names to have only that part of a match masked.
    public static let maskedGroupName = "secret"

    /// Ranges (within `text`) to mask: each match whole, or its `secret` group when the pattern
    /// names one (a match where that group took no part is masked whole).
    func matches(in text: String) -> [Range<String.Index>] {
        let ns = NSRange(text.startIndex..., in: text)
        var out: [Range<String.Index>] = []
        for result in regex.value.matches(in: text, options: [], range: ns) {
            var target = result.range
            if masksNamedGroupOnly {
                let group = result.range(withName: CompiledPattern.maskedGroupName)
                if group.location != NSNotFound { target = group }
            }
            if target.length > 0, let range = Range(target, in: text) { out.append(range) }
        }
        return out
    }
}

/// NSRegularExpression is immutable and documented thread-safe once built.
final class RegexBox: @unchecked Sendable {
    let value: NSRegularExpression
    init(_ value: NSRegularExpression) { self.value = value }
}

/// Why a custom pattern was rejected; `description` names the pattern and the reason.
public struct PatternError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable { case invalidSyntax, catastrophic, matchesEmpty }
    public var name: String
    public var pattern: String
    public var kind: Kind
    public var reason: String
    public var description: String { "pattern \"\(name)\" (\(pattern)): \(reason)" }
}
