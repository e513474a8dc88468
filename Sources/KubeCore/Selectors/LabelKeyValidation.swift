import Foundation

/// Name and label syntax checks of apimachinery's `util/validation`, with its error wording.
///
/// Each check returns the list of problems (empty when the value is valid), each worded as
/// kube-apiserver words it, so callers can wrap them in a `FieldError` (`.invalid`) or in a
/// selector parse error and the user sees the message kubectl users already know.
/// The character classes are checked by hand (ASCII only, like Go's byte-wise regexps);
/// the regex strings appear only in messages.
public enum NameValidation {
    public static let qualifiedNameMaxLength = 63
    public static let labelValueMaxLength = 63
    public static let dns1123LabelMaxLength = 63
    public static let dns1123SubdomainMaxLength = 253

    static let qualifiedNameFormat = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
    static let qualifiedNameErrorMessage =
        "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
    static let labelValueFormat = "(" + qualifiedNameFormat + ")?"
    static let labelValueErrorMessage =
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
    static let dns1123LabelFormat = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
    static let dns1123LabelErrorMessage =
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
    static let dns1123SubdomainFormat = dns1123LabelFormat + "(\\." + dns1123LabelFormat + ")*"
    static let dns1123SubdomainErrorMessage =
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"

    /// `must be no more than N characters`.
    public static func maxLengthError(_ length: Int) -> String {
        "must be no more than \(length) characters"
    }

    /// `must be non-empty`.
    public static let emptyError = "must be non-empty"

    /// apimachinery's `RegexError`: the rule, examples, then the regex.
    public static func regexError(_ message: String, format: String, examples: [String]) -> String {
        guard !examples.isEmpty else { return message + " (regex used for validation is '\(format)')" }
        let shown = examples.map { "'\($0)', " }.joined(separator: " or ")
        return message + " (e.g. " + shown + "regex used for validation is '\(format)')"
    }

    /// A label key or annotation key: `[prefix/]name`, the prefix a DNS-1123 subdomain
    /// (≤ 253) and the name ≤ 63 characters of `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
    public static func isQualifiedName(_ value: String) -> [String] {
        var errors: [String] = []
        let parts = value.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let name: String
        switch parts.count {
        case 1:
            name = parts[0]
        case 2:
            let prefix = parts[0]
            name = parts[1]
            if prefix.isEmpty {
                errors.append("prefix part " + emptyError)
            } else {
                errors += isDNS1123Subdomain(prefix).map { "prefix part " + $0 }
            }
        default:
            return ["a qualified name "
                + regexError(qualifiedNameErrorMessage, format: qualifiedNameFormat,
                             examples: ["MyName", "my.name", "123-abc"])
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
        }
        if name.isEmpty {
            errors.append("name part " + emptyError)
        } else if name.utf8.count > qualifiedNameMaxLength {
            errors.append("name part " + maxLengthError(qualifiedNameMaxLength))
        }
        if !matchesQualifiedName(name) {
            errors.append("name part " + regexError(qualifiedNameErrorMessage, format: qualifiedNameFormat,
                                                    examples: ["MyName", "my.name", "123-abc"]))
        }
        return errors
    }

    /// A label value: empty, or ≤ 63 characters of the qualified-name charset.
    public static func isValidLabelValue(_ value: String) -> [String] {
        var errors: [String] = []
        if value.utf8.count > labelValueMaxLength {
            errors.append(maxLengthError(labelValueMaxLength))
        }
        if !value.isEmpty && !matchesQualifiedName(value) {
            errors.append(regexError(labelValueErrorMessage, format: labelValueFormat,
                                     examples: ["MyValue", "my_value", "12345"]))
        }
        return errors
    }

    /// An RFC 1123 label (namespace names, most `metadata.name`s of DNS-label kinds).
    public static func isDNS1123Label(_ value: String) -> [String] {
        var errors: [String] = []
        if value.utf8.count > dns1123LabelMaxLength {
            errors.append(maxLengthError(dns1123LabelMaxLength))
        }
        if !matchesDNS1123Label(Array(value.utf8)[...]) {
            if matchesDNS1123Subdomain(value) {
                // A valid subdomain that is not a valid label can only be failing on dots.
                errors.append("must not contain dots")
            } else {
                errors.append(regexError(dns1123LabelErrorMessage, format: dns1123LabelFormat,
                                         examples: ["my-name", "123-abc"]))
            }
        }
        return errors
    }

    /// An RFC 1123 subdomain (most `metadata.name`s, label key prefixes).
    public static func isDNS1123Subdomain(_ value: String) -> [String] {
        var errors: [String] = []
        if value.utf8.count > dns1123SubdomainMaxLength {
            errors.append(maxLengthError(dns1123SubdomainMaxLength))
        }
        if !matchesDNS1123Subdomain(value) {
            errors.append(regexError(dns1123SubdomainErrorMessage, format: dns1123SubdomainFormat,
                                     examples: ["example.com"]))
        }
        return errors
    }

    // MARK: - Character-class matchers

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
    }

    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x7A)
    }

    /// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, whole string.
    static func matchesQualifiedName(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        guard let first = bytes.first, let last = bytes.last else { return false }
        guard isAlphanumeric(first), isAlphanumeric(last) else { return false }
        return bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
    }

    /// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, whole slice.
    static func matchesDNS1123Label(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard let first = bytes.first, let last = bytes.last else { return false }
        guard isLowerAlphanumeric(first), isLowerAlphanumeric(last) else { return false }
        return bytes.allSatisfy { isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") }
    }

    /// Dot-separated DNS-1123 labels, whole string.
    static func matchesDNS1123Subdomain(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        return bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
            .allSatisfy { matchesDNS1123Label($0) }
    }
}
