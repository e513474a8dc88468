import Foundation
import KubeCore
import KubeMachinery

/// What the API server knows about one served resource: its names, scope, verbs,
/// subresources and, for custom resources, its schema and printer columns.
public struct ResourceDefinition: Sendable {
    public var group: String
    public var version: String
    /// Plural, lower case: `agentconnections`.
    public var resource: String
    public var singular: String
    public var kind: String
    public var listKind: String
    public var namespaced: Bool
    public var shortNames: [String]
    public var categories: [String]
    public var verbs: [String]
    /// Subresources served: `status`, `scale`, `token`, `log`, `exec`, `attach`, `portforward`.
    public var subresources: Set<String>
    /// Custom resources: the structural schema (validation, defaulting, pruning).
    public var validator: SchemaValidator?
    public var printerColumns: [PrinterColumn]
    public var isCustomResource: Bool
    /// For `scale`: JSON paths of spec/status replicas (CRD `scale` subresource or apps/v1).
    public var scaleSpecReplicasPath: [String]?
    public var scaleStatusReplicasPath: [String]?

    public init(group: String, version: String, resource: String, singular: String, kind: String,
                namespaced: Bool, shortNames: [String] = [], categories: [String] = [],
                verbs: [String] = ResourceDefinition.allVerbs, subresources: Set<String> = [],
                validator: SchemaValidator? = nil, printerColumns: [PrinterColumn] = [],
                isCustomResource: Bool = false) {
        self.group = group
        self.version = version
        self.resource = resource
        self.singular = singular
        self.kind = kind
        self.listKind = kind + "List"
        self.namespaced = namespaced
        self.shortNames = shortNames
        self.categories = categories
        self.verbs = verbs
        self.subresources = subresources
        self.validator = validator
        self.printerColumns = printerColumns
        self.isCustomResource = isCustomResource
    }

    public static let allVerbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

    public var groupVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    public var key: ResourceKey { ResourceKey(group: group, resource: resource) }
    /// `agentconnections.agentgate.io`, or `pods` for the core group.
    public var qualifiedResource: String { group.isEmpty ? resource : "\(resource).\(group)" }
    public var hasStatus: Bool { subresources.contains("status") }

    /// Whether the server keeps `metadata.generation` (1 on create, +1 on spec changes): custom
    /// resources, CRDs and the built-ins whose kube-apiserver strategies set it (kinds with
    /// spec/status semantics: workloads, Pods since 1.34, PodDisruptionBudgets,
    /// EndpointSlices, Ingresses, NetworkPolicies, admission policies). ConfigMaps, Secrets,
    /// Namespaces, Services, RBAC objects and the like have none.
    public var tracksGeneration: Bool {
        if isCustomResource { return true }
        switch (group, resource) {
        case ("apps", _), ("batch", _), ("", "pods"), ("", "podtemplates"), ("policy", "poddisruptionbudgets"),
             ("discovery.k8s.io", "endpointslices"), ("networking.k8s.io", "ingresses"),
             ("networking.k8s.io", "networkpolicies"), ("apiextensions.k8s.io", "customresourcedefinitions"),
             ("admissionregistration.k8s.io", _):
            return true
        default:
            return false
        }
    }

    /// Whether PUT of a missing object creates it (the registry strategy's AllowCreateOnUpdate):
    /// never for custom resources (apiextensions' strategy), and for the built-ins whose
    /// kube-apiserver strategies allow it; the others answer 404.
    public var allowsCreateOnUpdate: Bool {
        if isCustomResource { return false }
        switch (group, resource) {
        case ("", "services"), ("", "events"), ("events.k8s.io", "events"), ("coordination.k8s.io", "leases"),
             ("rbac.authorization.k8s.io", _):
            return true
        default:
            return false
        }
    }
}

/// Identifies a resource independent of version.
public struct ResourceKey: Hashable, Sendable, CustomStringConvertible {
    public var group: String
    public var resource: String
    public init(group: String, resource: String) {
        self.group = group
        self.resource = resource
    }
    public var description: String { group.isEmpty ? resource : "\(resource).\(group)" }
}

/// A CRD `additionalPrinterColumns` entry (or a built-in column).
public struct PrinterColumn: Sendable, Codable, Hashable {
    public var name: String
    public var type: String
    public var format: String?
    public var description: String?
    public var priority: Int?
    public var jsonPath: String

    public init(name: String, type: String, format: String? = nil, description: String? = nil,
                priority: Int? = nil, jsonPath: String) {
        self.name = name
        self.type = type
        self.format = format
        self.description = description
        self.priority = priority
        self.jsonPath = jsonPath
    }
}
