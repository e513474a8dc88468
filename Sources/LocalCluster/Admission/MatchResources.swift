import Foundation
import KubeCore

/// `matchConstraints` of a policy and `matchResources` of a binding: which requests they
/// select, as apiserver's `policy/matching` and `webhook/predicates/rules` decide.
///
/// - A request matches when one `resourceRules` entry matches and no `excludeResourceRules`
///   entry does. An entry matches when `operations`, `apiGroups`, `apiVersions` contain the
///   request's (or `*`), `resources` names it (`r`, `r/sub`, `*` for every resource without
///   subresource, `*/*`, `r/*`, `*/sub`), `scope` fits (`*`, `Namespaced`, `Cluster`) and
///   `resourceNames`, when set, holds its name.
/// - `namespaceSelector` applies to namespaced requests (and to Namespace objects
///   themselves); `objectSelector` matches the object's labels or the old object's.
/// - `resourceRules` empty (a binding's `matchResources`): no constraint on resources.
struct MatchResources: Sendable {
    struct Rule: Sendable {
        var operations: [String]
        var apiGroups: [String]
        var apiVersions: [String]
        var resources: [String]
        var scope: String
        var resourceNames: [String]

        init(_ json: JSONValue) {
            func strings(_ key: String) -> [String] { json[key]?.arrayValue?.compactMap(\.stringValue) ?? [] }
            operations = strings("operations")
            apiGroups = strings("apiGroups")
            apiVersions = strings("apiVersions")
            resources = strings("resources")
            scope = json["scope"]?.stringValue ?? "*"
            resourceNames = strings("resourceNames")
        }

        func matches(_ attributes: AdmissionAttributes) -> Bool {
            func includes(_ list: [String], _ value: String) -> Bool { list.contains("*") || list.contains(value) }
            guard includes(operations, attributes.operation), includes(apiGroups, attributes.group),
                  includes(apiVersions, attributes.version) else { return false }
            let resourceMatches = resources.contains { pattern in
                let parts = pattern.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                let resource = parts[0], subresource = parts.count == 2 ? parts[1] : ""
                guard resource == "*" || resource == attributes.resource else { return false }
                return subresource == "*" || subresource == attributes.subresource
            }
            guard resourceMatches else { return false }
            switch scope {
            case "Namespaced": if attributes.namespace.isEmpty { return false }
            case "Cluster": if !attributes.namespace.isEmpty { return false }
            default: break
            }
            return resourceNames.isEmpty || resourceNames.contains(attributes.name)
        }

        /// Whether a request on `group`/`resource` could ever match (a cheap prefilter).
        func couldMatch(group: String, resource: String) -> Bool {
            (apiGroups.contains("*") || apiGroups.contains(group))
                && resources.contains { $0.hasPrefix("*") || $0 == resource || $0.hasPrefix(resource + "/") }
        }
    }

    let resourceRules: [Rule]
    let excludeResourceRules: [Rule]
    let namespaceSelector: LabelSelector?
    let objectSelector: LabelSelector?
    private let selectorJSON: (namespace: JSONValue?, object: JSONValue?)

    init(_ json: JSONValue) {
        resourceRules = (json["resourceRules"]?.arrayValue ?? []).map(Rule.init)
        excludeResourceRules = (json["excludeResourceRules"]?.arrayValue ?? []).map(Rule.init)
        selectorJSON = (json["namespaceSelector"], json["objectSelector"])
        namespaceSelector = json["namespaceSelector"].flatMap { try? $0.decode(LabelSelector.self) }
        objectSelector = json["objectSelector"].flatMap { try? $0.decode(LabelSelector.self) }
    }

    /// Field errors under `fieldPath` (bad selectors, rules without operations or resources).
    func problems(fieldPath: String) -> [FieldError] {
        var errors: [FieldError] = []
        for (key, json) in [("namespaceSelector", selectorJSON.namespace), ("objectSelector", selectorJSON.object)] {
            guard let json else { continue }
            guard let selector = try? json.decode(LabelSelector.self) else {
                errors.append(FieldError(.invalid, field: "\(fieldPath).\(key)", value: json.serializedString(), detail: "not a label selector"))
                continue
            }
            errors += selector.validate(fieldPath: "\(fieldPath).\(key)")
        }
        for (index, rule) in resourceRules.enumerated() {
            let field = "\(fieldPath).resourceRules[\(index)]"
            if rule.operations.isEmpty { errors.append(FieldError(.required, field: "\(field).operations", detail: "")) }
            if rule.resources.isEmpty { errors.append(FieldError(.required, field: "\(field).resources", detail: "")) }
            for (position, operation) in rule.operations.enumerated()
            where !["*", "CREATE", "UPDATE", "DELETE", "CONNECT"].contains(operation) {
                errors.append(FieldError(.notSupported, field: "\(field).operations[\(position)]", value: quoted(operation),
                                         detail: "supported values: \"*\", \"CONNECT\", \"CREATE\", \"DELETE\", \"UPDATE\""))
            }
        }
        return errors
    }

    func matches(_ attributes: AdmissionAttributes) -> Bool {
        if !resourceRules.isEmpty && !resourceRules.contains(where: { $0.matches(attributes) }) { return false }
        if excludeResourceRules.contains(where: { $0.matches(attributes) }) { return false }
        if let namespaceSelector, !namespaceSelector.isEmpty {
            let isNamespace = attributes.group.isEmpty && attributes.resource == "namespaces"
            if isNamespace {
                let labels = attributes.labels(of: attributes.object ?? attributes.oldObject)
                if !namespaceSelector.matches(labels) { return false }
            } else if !attributes.namespace.isEmpty {
                if !namespaceSelector.matches(attributes.labels(of: attributes.namespaceObject)) { return false }
            }
        }
        if let objectSelector, !objectSelector.isEmpty {
            let matchesNew = attributes.object.map { objectSelector.matches(attributes.labels(of: $0)) } ?? false
            let matchesOld = attributes.oldObject.map { objectSelector.matches(attributes.labels(of: $0)) } ?? false
            if !matchesNew && !matchesOld { return false }
        }
        return true
    }

    func couldMatch(group: String, resource: String) -> Bool {
        resourceRules.contains { $0.couldMatch(group: group, resource: resource) }
    }
}
