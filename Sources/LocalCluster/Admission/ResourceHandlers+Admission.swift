import HTTPServing
import Foundation
import KubeCore

/// Where writes meet validating admission: ``validatingAdmission(_:)`` reads the policies,
/// bindings, RBAC and namespace a request needs (before the store lock is taken; nil when no
/// policy could apply), and ``admit(_:_:operation:object:oldObject:)`` runs them on the object
/// a write is about to store. Writes to admissionregistration.k8s.io itself are exempt, as in
/// kube-apiserver, so a broken policy can always be fixed.
extension ResourceHandlers {
    static let policiesKey = ResourceKey(group: "admissionregistration.k8s.io", resource: "validatingadmissionpolicies")
    static let policyBindingsKey = ResourceKey(group: "admissionregistration.k8s.io", resource: "validatingadmissionpolicybindings")

    func validatingAdmission(_ request: APIRequest) -> ValidatingAdmission? {
        let definition = request.definition
        guard definition.group != "admissionregistration.k8s.io" else { return nil }
        let bindings = store.list(Self.policyBindingsKey, namespace: nil).objects
        guard !bindings.isEmpty else { return nil }
        var byPolicy: [String: [AdmissionPolicyBinding]] = [:]
        for stored in bindings {
            let binding = AdmissionPolicyBinding(stored.value())
            byPolicy[binding.policyName, default: []].append(binding)
        }
        var hooks: [ValidatingAdmission.Hook] = []
        for (policyName, policyBindings) in byPolicy.sorted(by: { $0.key < $1.key }) {
            guard let stored = store.get(Self.policiesKey, namespace: "", name: policyName) else { continue }
            let policy = server.admissionPolicies.policy(stored)
            guard policy.matchConstraints.couldMatch(group: definition.group, resource: definition.resource) else { continue }
            hooks.append(.init(policy: policy, bindings: policyBindings.sorted { $0.name < $1.name }))
        }
        guard !hooks.isEmpty else { return nil }
        let namespace = request.info.namespace
        let namespaceObject = namespace.isEmpty ? nil
            : store.get(ResourceKey(group: "", resource: "namespaces"), namespace: "", name: namespace)?.value()
        let rbac = RBACAuthorizer(APIServer.rbacSnapshot(of: store),
                                  includesBootstrapPolicy: server.authorizer?.includesBootstrapPolicy ?? true)
        return ValidatingAdmission(hooks: hooks, authorizer: rbac, namespaceObject: namespaceObject)
    }

    /// The request as admission sees it, about to store `object` over `oldObject`.
    func admissionAttributes(_ request: APIRequest, operation: String, object: JSONValue?, oldObject: JSONValue?) -> AdmissionAttributes {
        let definition = request.definition
        var name = request.info.name
        if name.isEmpty { name = object?[path: ["metadata", "name"]]?.stringValue ?? "" }
        return AdmissionAttributes(operation: operation, group: definition.group, version: definition.version,
                                   resource: definition.resource, subresource: request.info.subresource, kind: definition.kind,
                                   namespace: definition.namespaced ? request.info.namespace : "", name: name,
                                   object: object, oldObject: oldObject, namespaceObject: nil, user: request.user,
                                   dryRun: request.isDryRun, fieldManager: request.fieldManager)
    }

    /// Refuses with the policy's Status, or returns the `Warning` headers to send.
    func admit(_ admission: ValidatingAdmission?, _ request: APIRequest, operation: String,
               object: JSONValue?, oldObject: JSONValue?) throws -> [(String, String)] {
        guard let admission else { return [] }
        let warnings = try admission.admit(admissionAttributes(request, operation: operation, object: object, oldObject: oldObject))
        return warnings.map { ("Warning", "299 - \(quoted($0))") }
    }

    /// A policy or binding write is checked as kube-apiserver validates them (422 on error).
    func validateAdmissionConfiguration(_ definition: ResourceDefinition, object: JSONValue) throws {
        let errors: [FieldError]
        switch definition.key {
        case Self.policiesKey: errors = AdmissionPolicy.validate(object)
        case Self.policyBindingsKey: errors = AdmissionPolicyBinding.validate(object)
        default: return
        }
        guard !errors.isEmpty else { return }
        let name = object[path: ["metadata", "name"]]?.stringValue ?? ""
        throw APIError(.invalid(group: definition.group, kind: definition.kind, name: name, errors: errors))
    }
}

/// Compiled policies by name, recompiled when their resourceVersion changes.
final class AdmissionPolicyCache: @unchecked Sendable {
    private let lock = NSLock()
    private var compiled: [String: (resourceVersion: Int64, policy: AdmissionPolicy)] = [:]

    func policy(_ stored: StoredObject) -> AdmissionPolicy {
        if let hit = lock.withLock({ compiled[stored.name] }), hit.resourceVersion == stored.resourceVersion {
            return hit.policy
        }
        let policy = AdmissionPolicy(stored.value())
        lock.withLock { compiled[stored.name] = (stored.resourceVersion, policy) }
        return policy
    }
}

extension HTTPResponse {
    /// The response with `headers` added (admission warnings).
    func adding(_ headers: [(String, String)]) -> HTTPResponse {
        var response = self
        response.headers += headers
        return response
    }
}
