import Foundation

/// `metav1.LabelSelector`: the structured selector objects carry (`spec.selector`,
/// `namespaceSelector`, CRD fields of our own).
///
/// Contract (as `metav1.LabelSelectorAsSelector` and `ValidateLabelSelector`):
/// - An empty selector (`{}`, no `matchLabels`, no `matchExpressions`) matches everything.
/// - A nil selector matches nothing: `LabelSelector.asSelector(nil)` is `Labels.Selector.nothing`.
///   A field typed `LabelSelector?` that is absent therefore selects no object; say so in the
///   field's documentation when a different default is wanted.
/// - `matchLabels` and `matchExpressions` are ANDed.
/// - `validate(fieldPath:)` reports every problem with the field path the user must fix
///   (`spec.selector.matchExpressions[0].values`); `asSelector()` fails on the first.
/// - Absent optionals are omitted when encoded, never written as `null`.
public struct LabelSelector: Codable, Sendable, Hashable {
    public var matchLabels: [String: String]?
    public var matchExpressions: [LabelSelectorRequirement]?

    public init(matchLabels: [String: String]? = nil, matchExpressions: [LabelSelectorRequirement]? = nil) {
        self.matchLabels = matchLabels
        self.matchExpressions = matchExpressions
    }

    /// True when nothing constrains the selector, so it matches everything.
    public var isEmpty: Bool {
        (matchLabels?.isEmpty ?? true) && (matchExpressions?.isEmpty ?? true)
    }

    /// Every validation problem, each at `fieldPath` + `.matchLabels` / `.matchExpressions[i].…`.
    public func validate(fieldPath: String = "") -> [FieldError] {
        func path(_ child: String) -> String { fieldPath.isEmpty ? child : fieldPath + "." + child }
        var errors: [FieldError] = []
        let labelsPath = path("matchLabels")
        for key in (matchLabels ?? [:]).keys.sorted() {
            for message in NameValidation.isQualifiedName(key) {
                errors.append(FieldError(.invalid, field: labelsPath, value: goQuoted(key), detail: message))
            }
            for message in NameValidation.isValidLabelValue(matchLabels?[key] ?? "") {
                errors.append(FieldError(.invalid, field: labelsPath, value: goQuoted(matchLabels?[key] ?? ""),
                                         detail: message))
            }
        }
        for (index, requirement) in (matchExpressions ?? []).enumerated() {
            errors += requirement.validate(fieldPath: path("matchExpressions[\(index)]"))
        }
        return errors
    }

    /// The selector to match with; fails with the first problem `validate` would report,
    /// worded as `labels.NewRequirement` words it.
    public func asSelector() throws -> Labels.Selector {
        if isEmpty { return .everything }
        var requirements: [Labels.Requirement] = []
        for key in (matchLabels ?? [:]).keys.sorted() {
            requirements.append(try Labels.Requirement(key: key, operator: .equals, values: [matchLabels?[key] ?? ""]))
        }
        for requirement in matchExpressions ?? [] {
            let op: Labels.Operator
            switch requirement.operator {
            case LabelSelectorRequirement.opIn: op = .in
            case LabelSelectorRequirement.opNotIn: op = .notIn
            case LabelSelectorRequirement.opExists: op = .exists
            case LabelSelectorRequirement.opDoesNotExist: op = .doesNotExist
            default:
                throw SelectorError("\(goQuoted(requirement.operator)) is not a valid label selector operator")
            }
            requirements.append(try Labels.Requirement(key: requirement.key, operator: op,
                                                       values: requirement.values ?? []))
        }
        return Labels.Selector(requirements: requirements)
    }

    /// `LabelSelectorAsSelector`: nil converts to `nothing`, empty to `everything`.
    public static func asSelector(_ selector: LabelSelector?) throws -> Labels.Selector {
        guard let selector else { return .nothing }
        return try selector.asSelector()
    }

    /// Convenience for one-off checks; an invalid selector matches nothing.
    public func matches(_ labels: [String: String]) -> Bool {
        (try? asSelector())?.matches(labels) ?? false
    }
}

/// `metav1.LabelSelectorRequirement`. `operator` is `In`, `NotIn`, `Exists` or `DoesNotExist`.
public struct LabelSelectorRequirement: Codable, Sendable, Hashable {
    public static let opIn = "In"
    public static let opNotIn = "NotIn"
    public static let opExists = "Exists"
    public static let opDoesNotExist = "DoesNotExist"

    public var key: String
    public var `operator`: String
    public var values: [String]?

    public init(key: String, operator op: String, values: [String]? = nil) {
        self.key = key
        self.operator = op
        self.values = values
    }

    /// As `ValidateLabelSelectorRequirement`: In/NotIn need values, Exists/DoesNotExist
    /// must have none, the operator must be known, the key a qualified name and each value
    /// a valid label value.
    public func validate(fieldPath: String) -> [FieldError] {
        var errors: [FieldError] = []
        let valuesPath = fieldPath.isEmpty ? "values" : fieldPath + ".values"
        let count = values?.count ?? 0
        switch self.operator {
        case Self.opIn, Self.opNotIn:
            if count == 0 {
                errors.append(FieldError(.required, field: valuesPath,
                                         detail: "must be specified when `operator` is 'In' or 'NotIn'"))
            }
        case Self.opExists, Self.opDoesNotExist:
            if count > 0 {
                errors.append(FieldError(.forbidden, field: valuesPath,
                                         detail: "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
            }
        default:
            errors.append(FieldError(.invalid, field: fieldPath.isEmpty ? "operator" : fieldPath + ".operator",
                                     value: goQuoted(self.operator), detail: "not a valid selector operator"))
        }
        let keyPath = fieldPath.isEmpty ? "key" : fieldPath + ".key"
        for message in NameValidation.isQualifiedName(key) {
            errors.append(FieldError(.invalid, field: keyPath, value: goQuoted(key), detail: message))
        }
        for (index, value) in (values ?? []).enumerated() {
            for message in NameValidation.isValidLabelValue(value) {
                errors.append(FieldError(.invalid, field: "\(valuesPath)[\(index)]", value: goQuoted(value),
                                         detail: message))
            }
        }
        return errors
    }
}
