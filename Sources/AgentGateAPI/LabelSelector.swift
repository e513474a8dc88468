/// metav1.LabelSelector: `matchLabels` and `matchExpressions`, ANDed together.
///
/// Semantics follow apimachinery's `LabelSelectorAsSelector`: an empty selector (`{}`) selects
/// everything, while the absence of a selector (a `nil` field holding it) selects nothing.
public struct LabelSelector: Codable, Sendable, Hashable {
    public var matchLabels: [String: String]?
    public var matchExpressions: [LabelSelectorRequirement]?

    public init(matchLabels: [String: String]? = nil, matchExpressions: [LabelSelectorRequirement]? = nil) {
        self.matchLabels = matchLabels
        self.matchExpressions = matchExpressions
    }

    /// Whether an object carrying `labels` is selected.
    public func matches(_ labels: [String: String]) -> Bool {
        for (key, value) in matchLabels ?? [:] where labels[key] != value { return false }
        return (matchExpressions ?? []).allSatisfy { $0.matches(labels) }
    }
}

/// One `matchExpressions` entry.
public struct LabelSelectorRequirement: Codable, Sendable, Hashable {
    public var key: String
    public var `operator`: LabelSelectorOperator
    /// Required (non-empty) for `In`/`NotIn`, empty for `Exists`/`DoesNotExist`; the CRD enforces it.
    public var values: [String]?

    public init(key: String, operator: LabelSelectorOperator, values: [String]? = nil) {
        self.key = key
        self.operator = `operator`
        self.values = values
    }

    public func matches(_ labels: [String: String]) -> Bool {
        let value = labels[key]
        switch self.operator {
        case .in: return value.map { (values ?? []).contains($0) } ?? false
        case .notIn: return value.map { !(values ?? []).contains($0) } ?? true
        case .exists: return value != nil
        case .doesNotExist: return value == nil
        }
    }
}

public enum LabelSelectorOperator: String, Codable, Sendable, Hashable, CaseIterable {
    case `in` = "In"
    case notIn = "NotIn"
    case exists = "Exists"
    case doesNotExist = "DoesNotExist"
}
