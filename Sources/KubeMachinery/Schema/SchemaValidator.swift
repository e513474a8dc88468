import Foundation
import KubeCore

/// Evaluates `x-kubernetes-validations` rules. KubeMachinery's CEL evaluator (``CELRuleEvaluator``) is the implementation;
/// the seam keeps schema walking independent of the expression language.
public protocol ValidationRuleEvaluator: Sendable {
    /// Evaluates `rule` with `self` (and `oldSelf` on update). Returns `nil` when the rule
    /// holds, otherwise the message to report.
    func evaluate(_ rule: ValidationRule, value: JSONValue, oldValue: JSONValue?) -> RuleFailure?
}

public struct RuleFailure: Sendable, Hashable {
    public var message: String
    public var reason: FieldError.Kind
    public init(message: String, reason: FieldError.Kind = .invalid) {
        self.message = message
        self.reason = reason
    }
}

/// Validates, defaults and prunes custom-resource objects against a structural schema the way
/// apiextensions-apiserver does on create and update: prune unknown fields (and `null`s of
/// non-nullable fields), apply defaults, then validate types, required fields, enums, patterns,
/// bounds, list types and CEL rules. Field errors are worded as kube-apiserver words them.
///
/// The root's `apiVersion`, `kind` and `metadata` are always kept and are not checked here:
/// object metadata is validated by the API server itself.
public struct SchemaValidator: Sendable {
    public let schema: JSONSchemaProps
    public let ruleEvaluator: ValidationRuleEvaluator?

    public init(schema: JSONSchemaProps, ruleEvaluator: ValidationRuleEvaluator? = nil) {
        self.schema = schema
        self.ruleEvaluator = ruleEvaluator
    }

    /// Prunes, defaults and validates `object`; returns the admitted object or the field errors.
    public func admit(_ object: JSONValue, oldObject: JSONValue? = nil) -> Result<JSONValue, ValidationErrors> {
        var admitted = object
        prune(&admitted)
        applyDefaults(&admitted)
        let errors = validate(admitted, oldObject: oldObject)
        return errors.isEmpty ? .success(admitted) : .failure(ValidationErrors(errors: errors))
    }

    // MARK: Pruning

    /// Removes fields the schema does not declare, unless a node preserves unknown fields.
    public func prune(_ object: inout JSONValue) {
        guard case .object(var members) = object else { return }
        for key in members.keys where !["apiVersion", "kind", "metadata"].contains(key) {
            if let child = schema.properties?[key] {
                var value = members[key]!
                if value.isNull && child.nullable != true {
                    members[key] = nil
                    continue
                }
                Self.prune(&value, schema: child)
                members[key] = value
            } else if !schema.keepsUnknownFields {
                members[key] = nil
            }
        }
        object = .object(members)
    }

    static func prune(_ value: inout JSONValue, schema: JSONSchemaProps) {
        switch value {
        case .object(var members):
            if schema.embeddedResource == true {
                // apiVersion/kind/metadata of embedded objects are always kept.
            }
            for key in Array(members.keys) {
                let child: JSONSchemaProps?
                if let property = schema.properties?[key] {
                    child = property
                } else if let additional = schema.additionalProperties?.schema {
                    child = additional
                } else if schema.keepsUnknownFields || (schema.embeddedResource == true
                    && ["apiVersion", "kind", "metadata"].contains(key))
                {
                    continue
                } else if case .allowed(true) = schema.additionalProperties {
                    continue
                } else {
                    members[key] = nil
                    continue
                }
                guard let child, var nested = members[key] else { continue }
                if nested.isNull && child.nullable != true {
                    members[key] = nil
                    continue
                }
                prune(&nested, schema: child)
                members[key] = nested
            }
            value = .object(members)
        case .array(var elements):
            guard let itemSchema = schema.items else { return }
            for index in elements.indices {
                prune(&elements[index], schema: itemSchema)
            }
            value = .array(elements)
        default:
            return
        }
    }

    // MARK: Defaulting

    /// Applies `default`s to absent fields of every object that exists.
    public func applyDefaults(_ object: inout JSONValue) {
        Self.applyDefaults(&object, schema: schema, isRoot: true)
    }

    static func applyDefaults(_ value: inout JSONValue, schema: JSONSchemaProps, isRoot: Bool = false) {
        switch value {
        case .object(var members):
            if let properties = schema.properties {
                for (key, child) in properties {
                    if isRoot && ["apiVersion", "kind", "metadata"].contains(key) { continue }
                    if members[key] == nil, let defaultValue = child.default {
                        members[key] = defaultValue
                    }
                    if var nested = members[key] {
                        applyDefaults(&nested, schema: child)
                        members[key] = nested
                    }
                }
            }
            if let additional = schema.additionalProperties?.schema {
                for key in Array(members.keys) where schema.properties?[key] == nil {
                    var nested = members[key]!
                    applyDefaults(&nested, schema: additional)
                    members[key] = nested
                }
            }
            value = .object(members)
        case .array(var elements):
            guard let itemSchema = schema.items else { return }
            for index in elements.indices {
                applyDefaults(&elements[index], schema: itemSchema)
            }
            value = .array(elements)
        default:
            return
        }
    }
}

/// The field errors of one rejected object.
public struct ValidationErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [FieldError]
    public init(errors: [FieldError]) { self.errors = errors }
    public var description: String { errors.map(\.description).joined(separator: "; ") }
}

extension SchemaValidator {
    /// Paths of fields that pruning would drop (`spec.foo`, `spec.rules[0].bar`), for
    /// `fieldValidation=Strict`, which rejects them instead of dropping them.
    public func unknownFields(in object: JSONValue) -> [String] {
        var found: [String] = []
        guard case .object(let members) = object else { return found }
        for key in members.keys.sorted() where !["apiVersion", "kind", "metadata"].contains(key) {
            if let child = schema.properties?[key] {
                Self.collectUnknown(members[key]!, schema: child, path: key, into: &found)
            } else if !schema.keepsUnknownFields {
                found.append(key)
            }
        }
        return found
    }

    static func collectUnknown(_ value: JSONValue, schema: JSONSchemaProps, path: String, into found: inout [String]) {
        switch value {
        case .object(let members):
            if schema.keepsUnknownFields { return }
            for key in members.keys.sorted() {
                if let property = schema.properties?[key] {
                    collectUnknown(members[key]!, schema: property, path: "\(path).\(key)", into: &found)
                } else if let additional = schema.additionalProperties?.schema {
                    collectUnknown(members[key]!, schema: additional, path: "\(path).\(key)", into: &found)
                } else if case .allowed(true) = schema.additionalProperties {
                    continue
                } else if !(schema.embeddedResource == true && ["apiVersion", "kind", "metadata"].contains(key)) {
                    found.append("\(path).\(key)")
                }
            }
        case .array(let elements):
            guard let items = schema.items else { return }
            for (index, element) in elements.enumerated() {
                collectUnknown(element, schema: items, path: "\(path)[\(index)]", into: &found)
            }
        default:
            return
        }
    }
}
