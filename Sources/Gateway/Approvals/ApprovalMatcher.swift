import AgentGateAPI
import Foundation
import KubeCore

/// Which `spec.approval` rule, if any, holds a request for a human.
///
/// Contract (AgentGateAPI `ApprovalRule`): the first rule, in spec order, whose matchers all
/// match holds the request. Matchers work as in access rules (``RequestMatcher``, which also
/// reads an eviction as the delete it performs and an ephemeral container as the exec it
/// runs), plus
/// - `names`: the object's name. A path names it; a create names it in its body, which the
///   gateway does not read for this: it asks the API server (the dry run of the create) and
///   takes `metadata.name` of the object that would be created. A deletecollection has no
///   name, so a rule with names never holds it.
/// - `scaleToZero`: the rule matches only an update or patch of `deployments|statefulsets|
///   replicasets` (or their `scale` subresource) whose *resulting* object has `spec.replicas`
///   0, as the dry run of the same request reports it. No reading of the body is trusted for
///   this: patch types, duplicate keys, protobuf or a JSON patch of `/spec` all come out as
///   the object the API server would write.
///
/// A rule that needs the resulting object is decided in two steps: ``match(_:_:dryRun:)``
/// without a dry run answers ``Decision/needsDryRun``; the caller runs the dry run and asks
/// again with its ``DryRunResult``. A dry run that cannot tell (unreachable, 5xx, 429, an
/// answer that is not an object) holds the request: what cannot be read is held, never let
/// through. A dry run the API server refuses (any other 4xx) means the write itself would
/// fail, so the rule does not hold it. Non-resource requests are never held.
public enum ApprovalMatcher {
    /// What the dry run of a write said.
    public enum DryRunResult: Sendable, Equatable {
        /// 2xx with an object: what the write would produce.
        case object(JSONValue)
        /// A 4xx other than 429: the write itself would be refused.
        case refused
        /// Anything else: no answer, an error the request may not meet, an unreadable body.
        case unknown
    }

    public enum Decision: Sendable, Equatable {
        case none
        case held(ApprovalRule)
        /// A rule can be decided only on the resulting object: dry-run the request and ask again.
        case needsDryRun
    }

    public static func match(_ policy: ApprovalPolicy?, _ info: RequestInfo, dryRun: DryRunResult? = nil) -> Decision {
        guard let rules = policy?.rules, !rules.isEmpty, info.isResourceRequest else { return .none }
        for rule in rules {
            // A scale-to-zero rule naming `deployments` covers `deployments/scale` too.
            let subresources = rule.scaleToZero == true ? (rule.subresources ?? ["", "scale"]) : rule.subresources
            guard RequestMatcher.matches(verbs: rule.verbs, apiGroups: rule.apiGroups, resources: rule.resources,
                                         subresources: subresources, namespaces: rule.namespaces, info) else { continue }
            if let names = rule.names, !names.isEmpty, !names.contains("*") {
                if namedInBody(info) {
                    switch dryRun {
                    case nil: return .needsDryRun
                    case .object(let object)?:
                        guard let name = object[path: ["metadata", "name"]]?.stringValue,
                              names.contains(where: { $0.hasSameBytes(as: name) }) else { continue }
                    case .refused?: continue
                    case .unknown?: break
                    }
                } else if !names.contains(where: { $0.hasSameBytes(as: info.name) }) {
                    continue
                }
            }
            if rule.scaleToZero == true {
                guard isScaleCandidate(info) else { continue }
                switch dryRun {
                case nil: return .needsDryRun
                case .object(let object)?: guard object[path: ["spec", "replicas"]]?.intValue == 0 else { continue }
                case .refused?: continue
                case .unknown?: break
                }
            }
            return .held(rule)
        }
        return .none
    }

    static let scalableResources: Set<String> = ["deployments", "statefulsets", "replicasets"]

    /// A create whose path does not name the object: its name is in the body.
    static func namedInBody(_ info: RequestInfo) -> Bool {
        info.verb == "create" && info.name.isEmpty && info.subresource.isEmpty
    }

    /// An update or patch that can change a workload's replicas.
    static func isScaleCandidate(_ info: RequestInfo) -> Bool {
        ["update", "patch"].contains(info.verb) && scalableResources.contains(info.resource)
            && (info.subresource.isEmpty || info.subresource == "scale")
    }
}

/// The request matchers shared by access and approval rules: an absent or empty list, or one
/// holding `*`, matches anything; `resources` may name `resource/subresource`; `""` is the
/// core group, as in RBAC. Values are compared byte for byte, as the API server compares them.
///
/// Two subresources do what another request does, and rules written for that request cover
/// them too: `create pods/eviction` deletes the pod (it matches as `delete pods`), and an
/// update or patch of `pods/ephemeralcontainers` starts a container in the pod, a command
/// run in it (it matches as `create pods/exec`). Each also matches as itself.
public enum RequestMatcher {
    /// The verbs that change something: what a dry run can preview, and what `agentgate.io`
    /// resources refuse through an agent endpoint.
    public static let writeVerbs: Set<String> = ["create", "update", "patch", "delete", "deletecollection"]

    public static func matches(verbs: [RequestVerb]?, apiGroups: [String]?, resources: [String]?, subresources: [String]?,
                               namespaces: [String]?, _ info: RequestInfo) -> Bool {
        if matchesExactly(verbs: verbs, apiGroups: apiGroups, resources: resources, subresources: subresources,
                          namespaces: namespaces, info) { return true }
        guard let equivalent = equivalentRequest(info) else { return false }
        return matchesExactly(verbs: verbs, apiGroups: apiGroups, resources: resources, subresources: subresources,
                              namespaces: namespaces, equivalent)
    }

    /// The request a subresource amounts to, for rules written against that request.
    static func equivalentRequest(_ info: RequestInfo) -> RequestInfo? {
        guard info.isResourceRequest, info.apiGroup.isEmpty, info.resource == "pods" else { return nil }
        var equivalent = info
        switch (info.subresource, info.verb) {
        case ("eviction", "create"):
            equivalent.verb = "delete"
            equivalent.subresource = ""
        case ("ephemeralcontainers", "update"), ("ephemeralcontainers", "patch"):
            equivalent.verb = "create"
            equivalent.subresource = "exec"
        default:
            return nil
        }
        return equivalent
    }

    static func matchesExactly(verbs: [RequestVerb]?, apiGroups: [String]?, resources: [String]?, subresources: [String]?,
                               namespaces: [String]?, _ info: RequestInfo) -> Bool {
        if let verbs, !verbs.isEmpty, !verbs.contains(.all), !verbs.contains(where: { $0.rawValue.hasSameBytes(as: info.verb) }) { return false }
        if !list(apiGroups, contains: info.apiGroup) { return false }
        if let resources, !resources.isEmpty, !resources.contains("*") {
            let full = info.subresource.isEmpty ? info.resource : "\(info.resource)/\(info.subresource)"
            let named = { (value: String) in resources.contains { $0.hasSameBytes(as: value) } }
            if !named(full) && !(info.subresource.isEmpty && named(info.resource))
                && !(!info.subresource.isEmpty && subresources != nil && named(info.resource)) {
                return false
            }
        }
        if let subresources, !subresources.isEmpty, !subresources.contains("*"),
           !subresources.contains(where: { $0.hasSameBytes(as: info.subresource) }) { return false }
        if !list(namespaces, contains: info.namespace) { return false }
        return true
    }

    static func list(_ values: [String]?, contains value: String) -> Bool {
        guard let values, !values.isEmpty else { return true }
        return values.contains("*") || values.contains { $0.hasSameBytes(as: value) }
    }
}
