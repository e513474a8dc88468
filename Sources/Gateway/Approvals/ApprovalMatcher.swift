import AgentGateAPI
import Foundation
import KubeCore

/// Which `spec.approval` rule, if any, holds a request for a human.
///
/// Contract (AgentGateAPI `ApprovalRule`): the first rule, in spec order, whose matchers all
/// match holds the request. Matchers work as in access rules (``RequestMatcher``), plus
/// `names` (the object name: from the path, or for a create from the body's
/// `metadata.name`; a deletecollection has none, so a rule with names never holds it), plus
/// `scaleToZero`: the rule then matches only writes that set a workload's replicas
/// to 0 — an update or patch of `deployments|statefulsets|replicasets` (or their `scale`
/// subresource) whose body sets `spec.replicas` to 0, in any body format kubectl sends
/// (JSON, merge / strategic-merge patch, JSON patch, server-side apply YAML).
/// Non-resource requests are never held.
public enum ApprovalMatcher {
    public static func match(_ policy: ApprovalPolicy?, _ info: RequestInfo, body: [UInt8], contentType: String?) -> ApprovalRule? {
        guard let rules = policy?.rules, !rules.isEmpty, info.isResourceRequest else { return nil }
        return rules.first { rule in
            // A scale-to-zero rule naming `deployments` covers `deployments/scale` too.
            let subresources = rule.scaleToZero == true ? (rule.subresources ?? ["", "scale"]) : rule.subresources
            guard RequestMatcher.matches(verbs: rule.verbs, apiGroups: rule.apiGroups, resources: rule.resources,
                                         subresources: subresources, namespaces: rule.namespaces, info) else { return false }
            if let names = rule.names, !names.isEmpty, !names.contains("*"),
               !names.contains(objectName(info, body: body, contentType: contentType)) { return false }
            if rule.scaleToZero == true { return setsReplicasToZero(info, body: body, contentType: contentType) }
            return true
        }
    }

    static let scalableResources: Set<String> = ["deployments", "statefulsets", "replicasets"]

    /// The name of the object a request addresses; a create names it in its body.
    static func objectName(_ info: RequestInfo, body: [UInt8], contentType: String?) -> String {
        guard info.verb == "create", info.name.isEmpty, info.subresource.isEmpty else { return info.name }
        return document(body, contentType: contentType)?[path: ["metadata", "name"]]?.stringValue ?? ""
    }

    /// The body as JSON, or the first YAML document of a YAML body.
    static func document(_ body: [UInt8], contentType: String?) -> JSONValue? {
        if (contentType ?? "").lowercased().contains("yaml") {
            return (try? JSONValue.parseYAMLDocuments(String(decoding: body, as: UTF8.self)))?.first
        }
        return try? JSONValue(parsing: body)
    }

    /// Whether a write sets `spec.replicas` to 0.
    public static func setsReplicasToZero(_ info: RequestInfo, body: [UInt8], contentType: String?) -> Bool {
        guard ["update", "patch"].contains(info.verb), scalableResources.contains(info.resource),
              info.subresource.isEmpty || info.subresource == "scale" else { return false }
        let type = (contentType ?? "").lowercased()
        if type.contains("json-patch") {
            guard case .array(let operations)? = try? JSONValue(parsing: body) else { return false }
            return operations.contains { operation in
                ["add", "replace"].contains(operation["op"]?.stringValue ?? "")
                    && operation["path"]?.stringValue == "/spec/replicas" && operation["value"]?.intValue == 0
            }
        }
        return document(body, contentType: contentType)?[path: ["spec", "replicas"]]?.intValue == 0
    }
}

/// The request matchers shared by access and approval rules: an absent or empty list, or one
/// holding `*`, matches anything; `resources` may name `resource/subresource`; `""` is the
/// core group, as in RBAC.
public enum RequestMatcher {
    public static func matches(verbs: [RequestVerb]?, apiGroups: [String]?, resources: [String]?, subresources: [String]?,
                               namespaces: [String]?, _ info: RequestInfo) -> Bool {
        if let verbs, !verbs.isEmpty, !verbs.contains(.all), !verbs.contains(where: { $0.rawValue == info.verb }) { return false }
        if !list(apiGroups, contains: info.apiGroup) { return false }
        if let resources, !resources.isEmpty, !resources.contains("*") {
            let full = info.subresource.isEmpty ? info.resource : "\(info.resource)/\(info.subresource)"
            if !resources.contains(full) && !(info.subresource.isEmpty && resources.contains(info.resource))
                && !(!info.subresource.isEmpty && subresources != nil && resources.contains(info.resource)) {
                return false
            }
        }
        if let subresources, !subresources.isEmpty, !subresources.contains("*"), !subresources.contains(info.subresource) { return false }
        if !list(namespaces, contains: info.namespace) { return false }
        return true
    }

    static func list(_ values: [String]?, contains value: String) -> Bool {
        guard let values, !values.isEmpty else { return true }
        return values.contains("*") || values.contains(value)
    }
}
