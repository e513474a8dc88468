import Foundation

/// Label selectors as apimachinery's `labels` package models them: a selector is the AND of
/// requirements, each a key, an operator and a set of values.
///
/// Build one by parsing the query-string form (`Labels.Selector(parsing: "app=web,tier in (a,b)")`)
/// or from a `metav1.LabelSelector` (`LabelSelector.asSelector()`). Both paths validate keys
/// and values with the rules of `NameValidation` and fail with a `SelectorError` worded as
/// kube-apiserver's, so the API server can answer a 400 with the same text.
///
/// Matching semantics (same as kube-apiserver):
/// - `=`, `==`, `in`: the label must be present and its value one of the values.
/// - `!=`, `notin`: true when the label is absent or its value is none of the values.
/// - `exists` (`key`) / `!` (`!key`): presence / absence.
/// - `gt` / `lt` (`key>3`, `key<3`): the label must be present and parse as a 64-bit integer.
/// - The empty selector matches everything; `Selector.nothing` matches nothing.
public enum Labels {
    /// `selection.Operator`; raw values are apimachinery's.
    public enum Operator: String, Sendable, Hashable, CaseIterable {
        case doesNotExist = "!"
        case equals = "="
        case doubleEquals = "=="
        case `in` = "in"
        case notEquals = "!="
        case notIn = "notin"
        case exists = "exists"
        case greaterThan = "gt"
        case lessThan = "lt"
    }

    /// One term of a selector. Values are kept sorted and de-duplicated.
    public struct Requirement: Sendable, Hashable, CustomStringConvertible {
        public let key: String
        public let `operator`: Operator
        public let values: [String]

        /// Validates as `labels.NewRequirement` does: a qualified-name key, the value count
        /// the operator needs, integer values for `gt`/`lt`, valid label values.
        public init(key: String, operator op: Operator, values: [String]) throws {
            var errors: [FieldError] = []
            let keyErrors = NameValidation.isQualifiedName(key)
            if !keyErrors.isEmpty {
                errors.append(FieldError(.invalid, field: "key", value: goQuoted(key),
                                         detail: keyErrors.joined(separator: "; ")))
            }
            switch op {
            case .in, .notIn:
                if values.isEmpty {
                    errors.append(FieldError(.invalid, field: "values", value: goStringSliceLiteral(values),
                                             detail: "for 'in', 'notin' operators, values set can't be empty"))
                }
            case .equals, .doubleEquals, .notEquals:
                if values.count != 1 {
                    errors.append(FieldError(.invalid, field: "values", value: goStringSliceLiteral(values),
                                             detail: "exact-match compatibility requires one single value"))
                }
            case .exists, .doesNotExist:
                if !values.isEmpty {
                    errors.append(FieldError(.invalid, field: "values", value: goStringSliceLiteral(values),
                                             detail: "values set must be empty for exists and does not exist"))
                }
            case .greaterThan, .lessThan:
                if values.count != 1 {
                    errors.append(FieldError(.invalid, field: "values", value: goStringSliceLiteral(values),
                                             detail: "for 'Gt', 'Lt' operators, exactly one value is required"))
                }
                for (index, value) in values.enumerated() where Int64(value) == nil {
                    errors.append(FieldError(.invalid, field: "values[\(index)]", value: goQuoted(value),
                                             detail: "for 'Gt', 'Lt' operators, the value must be an integer"))
                }
            }
            for (index, value) in values.enumerated() {
                let valueErrors = NameValidation.isValidLabelValue(value)
                if !valueErrors.isEmpty {
                    errors.append(FieldError(.invalid, field: "values[\(index)][\(key)]", value: goQuoted(value),
                                             detail: valueErrors.joined(separator: "; ")))
                }
            }
            if let error = SelectorError.aggregate(errors) { throw error }
            self.key = key
            self.operator = op
            self.values = Array(Set(values)).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        }

        public func matches(_ labels: [String: String]) -> Bool {
            let present = labels[key]
            switch self.operator {
            case .in, .equals, .doubleEquals:
                guard let present else { return false }
                return values.contains(present)
            case .notIn, .notEquals:
                guard let present else { return true }
                return !values.contains(present)
            case .exists:
                return present != nil
            case .doesNotExist:
                return present == nil
            case .greaterThan, .lessThan:
                guard let present, let actual = Int64(present),
                      values.count == 1, let bound = Int64(values[0]) else { return false }
                return self.operator == .greaterThan ? actual > bound : actual < bound
            }
        }

        /// The canonical string form (`!a`, `a`, `a=b`, `a in (x,y)`, `a>3`).
        public var description: String {
            switch self.operator {
            case .doesNotExist: return "!" + key
            case .exists: return key
            case .equals: return key + "=" + joinedValues
            case .doubleEquals: return key + "==" + joinedValues
            case .notEquals: return key + "!=" + joinedValues
            case .greaterThan: return key + ">" + joinedValues
            case .lessThan: return key + "<" + joinedValues
            case .in: return key + " in (" + joinedValues + ")"
            case .notIn: return key + " notin (" + joinedValues + ")"
            }
        }

        private var joinedValues: String { values.joined(separator: ",") }
    }

    /// The AND of its requirements, sorted by key. See `Labels` for the semantics.
    public struct Selector: Sendable, Hashable, CustomStringConvertible {
        /// Requirements sorted by key; empty for `everything` and `nothing`.
        public let requirements: [Requirement]
        /// True only for `nothing` (a nil `metav1.LabelSelector`).
        public let isNothing: Bool

        /// Matches every label set.
        public static let everything = Selector(requirements: [])
        /// Matches no label set: what a nil `metav1.LabelSelector` converts to.
        public static let nothing = Selector(requirements: [], isNothing: true)

        /// A selector from already-validated requirements (sorted by key, stable).
        public init(requirements: [Requirement]) {
            self.init(requirements: requirements, isNothing: false)
        }

        private init(requirements: [Requirement], isNothing: Bool) {
            self.requirements = requirements.enumerated()
                .sorted { lhs, rhs in
                    if lhs.element.key != rhs.element.key {
                        return lhs.element.key.utf8.lexicographicallyPrecedes(rhs.element.key.utf8)
                    }
                    return lhs.offset < rhs.offset
                }
                .map(\.element)
            self.isNothing = isNothing
        }

        /// Parses the string form as `labels.Parse` does; the empty string (or only
        /// whitespace) is `everything`.
        public init(parsing text: String) throws {
            var parser = LabelSelectorParser(text)
            self.init(requirements: try parser.parse())
        }

        /// True when the selector places no constraint (matches everything).
        public var isEmpty: Bool { !isNothing && requirements.isEmpty }

        public func matches(_ labels: [String: String]) -> Bool {
            if isNothing { return false }
            return requirements.allSatisfy { $0.matches(labels) }
        }

        /// The value a label must have exactly (`key=v`, `key==v`, `key in (v)`), if any.
        /// As upstream, only the first requirement on `key` is consulted.
        public func requiresExactMatch(_ key: String) -> String? {
            guard let requirement = requirements.first(where: { $0.key == key }) else { return nil }
            let exact: Set<Operator> = [.equals, .doubleEquals, .in]
            guard exact.contains(requirement.operator), requirement.values.count == 1 else { return nil }
            return requirement.values[0]
        }

        /// The canonical string form; parsing it again yields an equal selector.
        public var description: String {
            requirements.map(\.description).joined(separator: ",")
        }
    }
}
