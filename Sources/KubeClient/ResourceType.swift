import Foundation
import KubeCore

/// Names a kind of resource on the API server: where its URLs are and what its objects say in
/// `apiVersion`/`kind`. The untyped API takes one; typed resources derive theirs.
public struct ResourceType: Sendable, Hashable, CustomStringConvertible {
    /// `""` for the core group.
    public var group: String
    public var version: String
    /// The URL segment (`configmaps`).
    public var plural: String
    public var kind: String
    public var namespaced: Bool

    public init(group: String, version: String, plural: String, kind: String, namespaced: Bool) {
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
    }

    /// `v1`, `apps/v1`.
    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }

    public var description: String { group.isEmpty ? plural : "\(plural).\(group)" }

    /// `/api/v1` or `/apis/<group>/<version>`.
    var apiPrefix: String { group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)" }

    /// The collection path, in `namespace` (nil: all namespaces, or cluster-scoped).
    func collectionPath(namespace: String?) -> String {
        if namespaced, let namespace { return "\(apiPrefix)/namespaces/\(Self.escape(namespace))/\(plural)" }
        return "\(apiPrefix)/\(plural)"
    }

    func itemPath(name: String, namespace: String?, subresource: String? = nil) -> String {
        var path = "\(collectionPath(namespace: namespace))/\(Self.escape(name))"
        if let subresource, !subresource.isEmpty { path += "/\(subresource)" }
        return path
    }

    static func escape(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? segment
    }

    public static let namespaces = ResourceType(group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false)
    public static let configMaps = ResourceType(group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true)
    public static let secrets = ResourceType(group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true)
    public static let serviceAccounts = ResourceType(group: "", version: "v1", plural: "serviceaccounts", kind: "ServiceAccount", namespaced: true)
    public static let events = ResourceType(group: "", version: "v1", plural: "events", kind: "Event", namespaced: true)
    /// `events.k8s.io/v1` Events (what controllers record; `events` is the core/v1 view).
    public static let eventsV1 = ResourceType(group: "events.k8s.io", version: "v1", plural: "events", kind: "Event", namespaced: true)
    public static let pods = ResourceType(group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true)
    public static let leases = ResourceType(group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true)
    public static let roles = ResourceType(group: "rbac.authorization.k8s.io", version: "v1", plural: "roles", kind: "Role", namespaced: true)
    public static let roleBindings = ResourceType(group: "rbac.authorization.k8s.io", version: "v1", plural: "rolebindings", kind: "RoleBinding", namespaced: true)
    public static let customResourceDefinitions = ResourceType(group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions",
                                                               kind: "CustomResourceDefinition", namespaced: false)
}

extension KubernetesResource {
    public static var resourceType: ResourceType {
        ResourceType(group: group, version: version, plural: plural, kind: kind, namespaced: namespaced)
    }
}

/// One page or a whole list: the items and the resourceVersion the list was read at.
public struct ObjectList<Item: Sendable>: Sendable {
    public var items: [Item]
    /// The list's `metadata.resourceVersion`: start a watch here to miss nothing.
    public var resourceVersion: String
    /// Set on a page that has more after it (``KubernetesClient/listPage(_:namespace:options:continue:)``).
    public var continueToken: String?
    public var remainingItemCount: Int64?

    public init(items: [Item], resourceVersion: String, continueToken: String? = nil, remainingItemCount: Int64? = nil) {
        self.items = items
        self.resourceVersion = resourceVersion
        self.continueToken = continueToken
        self.remainingItemCount = remainingItemCount
    }
}

/// What to select in a list or watch.
public struct ListOptions: Sendable {
    public var labelSelector: String?
    public var fieldSelector: String?
    /// Page size for ``KubernetesClient/list(_:namespace:options:)`` (pages are followed
    /// transparently) and the `limit` of one ``KubernetesClient/listPage(_:namespace:options:continue:)``.
    public var limit: Int?
    public var resourceVersion: String?
    public var resourceVersionMatch: String?

    public init(labelSelector: String? = nil, fieldSelector: String? = nil, limit: Int? = nil,
                resourceVersion: String? = nil, resourceVersionMatch: String? = nil) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.limit = limit
        self.resourceVersion = resourceVersion
        self.resourceVersionMatch = resourceVersionMatch
    }

    var queryItems: [(String, String)] {
        var items: [(String, String)] = []
        if let labelSelector, !labelSelector.isEmpty { items.append(("labelSelector", labelSelector)) }
        if let fieldSelector, !fieldSelector.isEmpty { items.append(("fieldSelector", fieldSelector)) }
        if let resourceVersion { items.append(("resourceVersion", resourceVersion)) }
        if let resourceVersionMatch { items.append(("resourceVersionMatch", resourceVersionMatch)) }
        return items
    }
}

/// How dependents are deleted (`DeleteOptions.propagationPolicy`).
public enum PropagationPolicy: String, Sendable {
    case orphan = "Orphan", background = "Background", foreground = "Foreground"
}

/// `DeleteOptions.preconditions`: the delete fails with 409 unless the object still has these.
public struct Preconditions: Sendable, Hashable {
    public var uid: String?
    public var resourceVersion: String?
    public init(uid: String? = nil, resourceVersion: String? = nil) {
        self.uid = uid
        self.resourceVersion = resourceVersion
    }
}
