import Foundation
import KubeCore

/// The built-in resources the local cluster serves (API-SEMANTICS.md, "Resources it serves").
/// Built-ins have no schema: their bodies are stored as sent, after metadata checks.
enum BuiltinResources {
    static var all: [ResourceDefinition] {
        [
            ResourceDefinition(group: "", version: "v1", resource: "namespaces", singular: "namespace", kind: "Namespace",
                               namespaced: false, shortNames: ["ns"],
                               verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
                               subresources: ["status"]),
            ResourceDefinition(group: "", version: "v1", resource: "serviceaccounts", singular: "serviceaccount",
                               kind: "ServiceAccount", namespaced: true, shortNames: ["sa"], subresources: ["token"]),
            ResourceDefinition(group: "", version: "v1", resource: "secrets", singular: "secret", kind: "Secret",
                               namespaced: true),
            ResourceDefinition(group: "", version: "v1", resource: "configmaps", singular: "configmap", kind: "ConfigMap",
                               namespaced: true, shortNames: ["cm"]),
            ResourceDefinition(group: "", version: "v1", resource: "services", singular: "service", kind: "Service",
                               namespaced: true, shortNames: ["svc"], categories: ["all"], subresources: ["status"]),
            ResourceDefinition(group: "", version: "v1", resource: "pods", singular: "pod", kind: "Pod",
                               namespaced: true, shortNames: ["po"], categories: ["all"],
                               subresources: ["status", "log", "exec", "attach", "portforward", "eviction", "ephemeralcontainers"]),
            ResourceDefinition(group: "", version: "v1", resource: "persistentvolumeclaims", singular: "persistentvolumeclaim",
                               kind: "PersistentVolumeClaim", namespaced: true, shortNames: ["pvc"],
                               subresources: ["status"]),
            ResourceDefinition(group: "", version: "v1", resource: "events", singular: "event", kind: "Event",
                               namespaced: true, shortNames: ["ev"]),
            ResourceDefinition(group: "events.k8s.io", version: "v1", resource: "events", singular: "event", kind: "Event",
                               namespaced: true, shortNames: ["ev"]),
            ResourceDefinition(group: "coordination.k8s.io", version: "v1", resource: "leases", singular: "lease",
                               kind: "Lease", namespaced: true),
            ResourceDefinition(group: "policy", version: "v1", resource: "poddisruptionbudgets",
                               singular: "poddisruptionbudget", kind: "PodDisruptionBudget", namespaced: true,
                               shortNames: ["pdb"], subresources: ["status"]),
            scalable(ResourceDefinition(group: "apps", version: "v1", resource: "deployments", singular: "deployment",
                                        kind: "Deployment", namespaced: true, shortNames: ["deploy"],
                                        categories: ["all"], subresources: ["status", "scale"])),
            scalable(ResourceDefinition(group: "apps", version: "v1", resource: "statefulsets", singular: "statefulset",
                                        kind: "StatefulSet", namespaced: true, shortNames: ["sts"],
                                        categories: ["all"], subresources: ["status", "scale"])),
            // Workloads that run (Controllers/): ReplicaSets, Jobs, the Node, EndpointSlices.
            scalable(ResourceDefinition(group: "apps", version: "v1", resource: "replicasets", singular: "replicaset",
                                        kind: "ReplicaSet", namespaced: true, shortNames: ["rs"],
                                        categories: ["all"], subresources: ["status", "scale"])),
            ResourceDefinition(group: "batch", version: "v1", resource: "jobs", singular: "job", kind: "Job",
                               namespaced: true, categories: ["all"], subresources: ["status"]),
            ResourceDefinition(group: "", version: "v1", resource: "nodes", singular: "node", kind: "Node",
                               namespaced: false, shortNames: ["no"], subresources: ["status"]),
            ResourceDefinition(group: "discovery.k8s.io", version: "v1", resource: "endpointslices",
                               singular: "endpointslice", kind: "EndpointSlice", namespaced: true),
            ResourceDefinition(group: "apiextensions.k8s.io", version: "v1", resource: "customresourcedefinitions",
                               singular: "customresourcedefinition", kind: "CustomResourceDefinition",
                               namespaced: false, shortNames: ["crd", "crds"], categories: ["api-extensions"],
                               subresources: ["status"]),
            ResourceDefinition(group: "admissionregistration.k8s.io", version: "v1", resource: "validatingadmissionpolicies",
                               singular: "validatingadmissionpolicy", kind: "ValidatingAdmissionPolicy", namespaced: false,
                               categories: ["api-extensions"], subresources: ["status"]),
            withColumns(ResourceDefinition(group: "admissionregistration.k8s.io", version: "v1",
                                           resource: "validatingadmissionpolicybindings",
                                           singular: "validatingadmissionpolicybinding", kind: "ValidatingAdmissionPolicyBinding",
                                           namespaced: false, categories: ["api-extensions"]),
                        [PrinterColumn(name: "PolicyName", type: "string", jsonPath: ".spec.policyName"),
                         PrinterColumn(name: "ParamRef", type: "string", jsonPath: ".spec.paramRef")]),
            // Create-only reviews, answered and never stored (AccessReviews.swift).
            review("authorization.k8s.io", "selfsubjectaccessreviews", "SelfSubjectAccessReview"),
            review("authorization.k8s.io", "selfsubjectrulesreviews", "SelfSubjectRulesReview"),
            review("authorization.k8s.io", "subjectaccessreviews", "SubjectAccessReview"),
            review("authorization.k8s.io", "localsubjectaccessreviews", "LocalSubjectAccessReview", namespaced: true),
            review("authentication.k8s.io", "selfsubjectreviews", "SelfSubjectReview"),
            review("authentication.k8s.io", "tokenreviews", "TokenReview"),
            ResourceDefinition(group: "rbac.authorization.k8s.io", version: "v1", resource: "roles", singular: "role",
                               kind: "Role", namespaced: true),
            ResourceDefinition(group: "rbac.authorization.k8s.io", version: "v1", resource: "rolebindings",
                               singular: "rolebinding", kind: "RoleBinding", namespaced: true),
            ResourceDefinition(group: "rbac.authorization.k8s.io", version: "v1", resource: "clusterroles",
                               singular: "clusterrole", kind: "ClusterRole", namespaced: false),
            ResourceDefinition(group: "rbac.authorization.k8s.io", version: "v1", resource: "clusterrolebindings",
                               singular: "clusterrolebinding", kind: "ClusterRoleBinding", namespaced: false),
        ]
    }

    private static func review(_ group: String, _ resource: String, _ kind: String, namespaced: Bool = false) -> ResourceDefinition {
        ResourceDefinition(group: group, version: "v1", resource: resource, singular: kind.lowercased(), kind: kind,
                           namespaced: namespaced, verbs: ["create"])
    }

    private static func withColumns(_ definition: ResourceDefinition, _ columns: [PrinterColumn]) -> ResourceDefinition {
        var described = definition
        described.printerColumns = columns
        return described
    }

    private static func scalable(_ definition: ResourceDefinition) -> ResourceDefinition {
        var scaled = definition
        scaled.scaleSpecReplicasPath = ["spec", "replicas"]
        scaled.scaleStatusReplicasPath = ["status", "replicas"]
        return scaled
    }
}
