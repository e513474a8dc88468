import Foundation
import KubeCore

/// The validation walk of ``SchemaValidator``: types, required, enum, pattern, bounds, list
/// types, then CEL rules bottom-up. Messages follow kube-openapi's wording
/// (`spec.x in body should match '^[a-z]+$'`).
extension SchemaValidator {
    /// Validates an already pruned and defaulted object. `oldObject` enables transition rules.
    public func validate(_ object: JSONValue, oldObject: JSONValue? = nil) -> [FieldError] {
        var walker = ValidationWalk(ruleEvaluator: ruleEvaluator)
        guard case .object(let members) = object else {
            return [FieldError(.typeInvalid, field: "<root>", value: quote(object),
                               detail: "must be of type object")]
        }
        // The root: skip metadata/apiVersion/kind, which the API server validates itself.
        var root = members
        root["metadata"] = nil
        root["apiVersion"] = nil
        root["kind"] = nil
        var oldRoot = oldObject?.objectValue
        oldRoot?["metadata"] = nil
        oldRoot?["apiVersion"] = nil
        oldRoot?["kind"] = nil
        walker.validateObjectMembers(root, schema: schema, path: [], old: oldRoot.map { .object($0) })
        walker.validateRules(.object(root), schema: schema, path: [], old: oldRoot.map { .object($0) })
        return walker.errors
    }
}

/// A rendered value the way apimachinery prints it in messages.
func quote(_ value: JSONValue) -> String {
    switch value {
    case .string(let s): return "\"\(s)\""
    case .int(let i): return String(i)
    case .double(let d): return d.rounded() == d && abs(d) < 1e15 ? String(Int64(d)) : String(d)
    case .bool(let b): return b ? "true" : "false"
    case .null: return "null"
    case .array: return "\"array\""
    case .object: return "\"object\""
    }
}

struct ValidationWalk {
    let ruleEvaluator: ValidationRuleEvaluator?
    var errors: [FieldError] = []

    static func render(_ path: [String]) -> String {
        var out = ""
        for component in path {
            if component.hasPrefix("[") {
                out += component
            } else {
                out += out.isEmpty ? component : ".\(component)"
            }
        }
        return out.isEmpty ? "<root>" : out
    }

    mutating func fail(_ kind: FieldError.Kind, _ path: [String], value: String? = nil, _ detail: String) {
        errors.append(FieldError(kind, field: Self.render(path), value: value, detail: detail))
    }

    mutating func validate(_ value: JSONValue, schema: JSONSchemaProps, path: [String], old: JSONValue?) {
        let field = Self.render(path)
        if value.isNull {
            if schema.nullable == true { return }
            if schema.type != nil {
                fail(.typeInvalid, path, value: "\"null\"", "\(field) in body must be of type \(schema.type!): \"null\"")
                return
            }
        }
        if !typeMatches(value, schema: schema) {
            let expected = schema.intOrString == true ? "integer,string" : (schema.type ?? "")
            fail(.typeInvalid, path, value: "\"\(value.typeName)\"",
                 "\(field) in body must be of type \(expected): \"\(value.typeName)\"")
            return
        }
        if let allowed = schema.enum, !allowed.isEmpty, !allowed.contains(where: { equalJSON($0, value) }) {
            let list = allowed.map { quote($0) }.joined(separator: ", ")
            fail(.notSupported, path, value: quote(value), "supported values: \(list)")
        }
        switch value {
        case .string(let s):
            validateString(s, schema: schema, path: path)
        case .int, .double:
            validateNumber(value.doubleValue ?? 0, rendered: quote(value), schema: schema, path: path)
        case .array(let elements):
            validateArray(elements, schema: schema, path: path, old: old?.arrayValue)
        case .object(let members):
            validateObjectMembers(members, schema: schema, path: path, old: old)
        default:
            break
        }
        for (index, sub) in (schema.allOf ?? []).enumerated() {
            var nested = ValidationWalk(ruleEvaluator: nil)
            nested.validate(value, schema: sub, path: path, old: nil)
            if !nested.errors.isEmpty { errors += nested.errors; _ = index }
        }
        if let anyOf = schema.anyOf, !anyOf.isEmpty {
            let matched = anyOf.contains { sub in
                var nested = ValidationWalk(ruleEvaluator: nil)
                nested.validate(value, schema: sub, path: path, old: nil)
                return nested.errors.isEmpty
            }
            if !matched { fail(.invalid, path, value: quote(value), "\(field) in body must match at least one schema in anyOf") }
        }
        if let oneOf = schema.oneOf, !oneOf.isEmpty {
            let count = oneOf.filter { sub in
                var nested = ValidationWalk(ruleEvaluator: nil)
                nested.validate(value, schema: sub, path: path, old: nil)
                return nested.errors.isEmpty
            }.count
            if count != 1 { fail(.invalid, path, value: quote(value), "\(field) in body must match exactly one schema in oneOf") }
        }
        if let not = schema.not {
            var nested = ValidationWalk(ruleEvaluator: nil)
            nested.validate(value, schema: not, path: path, old: nil)
            if nested.errors.isEmpty { fail(.invalid, path, value: quote(value), "\(field) in body should not match the schema in not") }
        }
        validateRules(value, schema: schema, path: path, old: old)
    }

    func typeMatches(_ value: JSONValue, schema: JSONSchemaProps) -> Bool {
        if schema.intOrString == true {
            switch value {
            case .int, .string: return true
            case .double(let d): return d.rounded() == d
            default: return false
            }
        }
        guard let type = schema.type else { return true }
        switch (type, value) {
        case ("string", .string), ("boolean", .bool), ("array", .array), ("object", .object): return true
        case ("integer", .int), ("number", .int), ("number", .double): return true
        case ("integer", .double(let d)): return d.rounded() == d
        default: return false
        }
    }

    mutating func validateString(_ s: String, schema: JSONSchemaProps, path: [String]) {
        let field = Self.render(path)
        let length = s.unicodeScalars.count
        if let maxLength = schema.maxLength, length > maxLength {
            fail(.tooLong, path, value: "\"\(s)\"", "may not be more than \(maxLength) bytes")
        }
        if let minLength = schema.minLength, length < minLength {
            fail(.invalid, path, value: "\"\(s)\"", "\(field) in body should be at least \(minLength) chars long")
        }
        if let pattern = schema.pattern {
            if let regex = PatternCache.shared.regex(pattern) {
                let range = NSRange(s.startIndex..., in: s)
                if regex.firstMatch(in: s, options: [], range: range) == nil {
                    fail(.invalid, path, value: "\"\(s)\"", "\(field) in body should match '\(pattern)'")
                }
            }
        }
        if let format = schema.format, !FormatChecker.check(s, format: format) {
            fail(.invalid, path, value: "\"\(s)\"", "\(field) in body must be of type \(format): \"\(s)\"")
        }
    }

    mutating func validateNumber(_ n: Double, rendered: String, schema: JSONSchemaProps, path: [String]) {
        let field = Self.render(path)
        func show(_ d: Double) -> String { d.rounded() == d && abs(d) < 1e15 ? String(Int64(d)) : String(d) }
        if let minimum = schema.minimum {
            if schema.exclusiveMinimum == true ? n <= minimum : n < minimum {
                let op = schema.exclusiveMinimum == true ? "greater than" : "greater than or equal to"
                fail(.invalid, path, value: rendered, "\(field) in body should be \(op) \(show(minimum))")
            }
        }
        if let maximum = schema.maximum {
            if schema.exclusiveMaximum == true ? n >= maximum : n > maximum {
                let op = schema.exclusiveMaximum == true ? "less than" : "less than or equal to"
                fail(.invalid, path, value: rendered, "\(field) in body should be \(op) \(show(maximum))")
            }
        }
    }

    mutating func validateArray(_ elements: [JSONValue], schema: JSONSchemaProps, path: [String], old: [JSONValue]?) {
        let field = Self.render(path)
        if let maxItems = schema.maxItems, elements.count > maxItems {
            fail(.tooMany, path, value: String(elements.count), "must have at most \(maxItems) items")
        }
        if let minItems = schema.minItems, elements.count < minItems {
            fail(.invalid, path, value: String(elements.count), "\(field) in body should have at least \(minItems) items")
        }
        let mapKeys = schema.listMapKeys ?? []
        if let items = schema.items {
            for (index, element) in elements.enumerated() {
                let oldElement = correlatedOldElement(element, at: index, old: old, schema: schema)
                validate(element, schema: items, path: path + ["[\(index)]"], old: oldElement)
            }
        }
        switch schema.listType {
        case "set":
            var seen: [JSONValue] = []
            for (index, element) in elements.enumerated() {
                if seen.contains(where: { equalJSON($0, element) }) {
                    fail(.duplicate, path + ["[\(index)]"], value: quote(element), "")
                }
                seen.append(element)
            }
        case "map":
            var seenKeys: [[JSONValue?]] = []
            for (index, element) in elements.enumerated() {
                let key = mapKeys.map { element[$0] }
                if seenKeys.contains(key) {
                    let rendered = zip(mapKeys, key).map { "\"\($0)\":\($1.map(quote) ?? "null")" }.joined(separator: ",")
                    fail(.duplicate, path + ["[\(index)]"], value: "map[string]interface {}{\(rendered)}", "")
                }
                seenKeys.append(key)
            }
        default:
            break
        }
    }

    func correlatedOldElement(_ element: JSONValue, at index: Int, old: [JSONValue]?, schema: JSONSchemaProps) -> JSONValue? {
        guard let old else { return nil }
        if schema.listType == "map", let keys = schema.listMapKeys, !keys.isEmpty {
            return old.first { candidate in keys.allSatisfy { candidate[$0] == element[$0] } }
        }
        if schema.listType == "set" { return old.contains(element) ? element : nil }
        return nil
    }

    mutating func validateObjectMembers(_ members: [String: JSONValue], schema: JSONSchemaProps, path: [String], old: JSONValue?) {
        for name in schema.required ?? [] where members[name] == nil {
            fail(.required, path + [name], "")
        }
        if let maxProperties = schema.maxProperties, members.count > maxProperties {
            fail(.tooMany, path, value: String(members.count), "must have at most \(maxProperties) items")
        }
        if let minProperties = schema.minProperties, members.count < minProperties {
            fail(.invalid, path, value: String(members.count), "\(Self.render(path)) in body should have at least \(minProperties) properties")
        }
        for key in members.keys.sorted() {
            let value = members[key]!
            if let child = schema.properties?[key] {
                validate(value, schema: child, path: path + [key], old: old?[key])
            } else if let additional = schema.additionalProperties?.schema {
                validate(value, schema: additional, path: path + ["[\(key)]"], old: old?[key])
            }
        }
    }

    mutating func validateRules(_ value: JSONValue, schema: JSONSchemaProps, path: [String], old: JSONValue?) {
        guard let rules = schema.validations, !rules.isEmpty, let evaluator = ruleEvaluator else { return }
        for rule in rules {
            let isTransition = rule.rule.contains("oldSelf")
            if isTransition && old == nil && rule.optionalOldSelf != true { continue }
            if let failure = evaluator.evaluate(rule, value: value, oldValue: old) {
                var target = path
                if let fieldPath = rule.fieldPath, !fieldPath.isEmpty {
                    target += fieldPath.split(separator: ".").map(String.init).filter { !$0.isEmpty }
                }
                let kind: FieldError.Kind
                switch rule.reason {
                case "FieldValueRequired": kind = .required
                case "FieldValueForbidden": kind = .forbidden
                case "FieldValueDuplicate": kind = .duplicate
                default: kind = failure.reason
                }
                fail(kind, target, value: "\"\(value.typeName == "integer" || value.typeName == "number" ? "number" : value.typeName)\"", failure.message)
            }
        }
    }
}

/// JSON equality where 1 and 1.0 are the same number.
func equalJSON(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.int, .double), (.double, .int): return a.doubleValue == b.doubleValue
    default: return a == b
    }
}

/// Compiled `pattern`s, shared: CRD patterns repeat on every request.
final class PatternCache: @unchecked Sendable {
    static let shared = PatternCache()
    private let lock = NSLock()
    private var cache: [String: NSRegularExpression] = [:]

    func regex(_ pattern: String) -> NSRegularExpression? {
        lock.lock()
        defer { lock.unlock() }
        if let cached = cache[pattern] { return cached }
        guard let compiled = try? NSRegularExpression(pattern: pattern) else { return nil }
        cache[pattern] = compiled
        return compiled
    }
}

/// The OpenAPI `format`s kube-apiserver checks on custom resources.
enum FormatChecker {
    static func check(_ s: String, format: String) -> Bool {
        switch format {
        case "date-time": return KubeTime.parse(s) != nil
        case "int32": return Int32(s) != nil
        case "int64": return Int64(s) != nil
        case "uri", "url": return URL(string: s) != nil && s.contains(":")
        case "hostname": return s.count <= 253 && s.range(of: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", options: .regularExpression) != nil
        case "duration": return GoDuration.parse(s) != nil
        default: return true
        }
    }
}
