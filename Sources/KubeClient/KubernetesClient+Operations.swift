import Foundation
import KubeCore
import NIOHTTP1

/// Untyped operations: objects as ``JSONValue``, the kind named by a ``ResourceType``.
///
/// Namespace rule: for a namespaced type, a nil `namespace` means the object's own
/// `metadata.namespace`, else the client's ``KubernetesClient/defaultNamespace``; for `list`
/// and `watch`, nil means all namespaces. Cluster-scoped types ignore it.
extension KubernetesClient {
    func namespaceFor(_ type: ResourceType, _ namespace: String?, object: JSONValue? = nil) -> String? {
        guard type.namespaced else { return nil }
        return namespace ?? object?[path: ["metadata", "namespace"]]?.stringValue ?? defaultNamespace
    }

    private func objectName(_ object: JSONValue, _ what: String) throws -> String {
        guard let name = object[path: ["metadata", "name"]]?.stringValue, !name.isEmpty else {
            throw KubeError.badRequest(Status(message: "\(what): metadata.name is required", reason: "BadRequest", code: 400))
        }
        return name
    }

    public func get(_ type: ResourceType, name: String, namespace: String? = nil, subresource: String? = nil) async throws -> JSONValue {
        let path = type.itemPath(name: name, namespace: namespaceFor(type, namespace), subresource: subresource)
        return try json(try await send(.GET, path), "get \(type) \(name)")
    }

    /// One page: at most `options.limit` items, and the token for the next page.
    public func listPage(_ type: ResourceType, namespace: String? = nil, options: ListOptions = ListOptions(),
                         continue token: String? = nil) async throws -> ObjectList<JSONValue> {
        var query = options.queryItems
        if let limit = options.limit, limit > 0 { query.append(("limit", String(limit))) }
        if let token, !token.isEmpty {
            // The continue token carries the list's revision; sending both is an error.
            query.removeAll { $0.0 == "resourceVersion" || $0.0 == "resourceVersionMatch" }
            query.append(("continue", token))
        }
        let path = type.collectionPath(namespace: type.namespaced ? namespace : nil)
        let list = try json(try await send(.GET, path, query: query), "list \(type)")
        var items = list["items"]?.arrayValue ?? []
        // Items in a list have no apiVersion/kind on the wire; give them back, so they can be reused as is.
        for index in items.indices {
            if items[index]["apiVersion"] == nil { items[index]["apiVersion"] = .string(type.apiVersion) }
            if items[index]["kind"] == nil { items[index]["kind"] = .string(type.kind) }
        }
        let next = list[path: ["metadata", "continue"]]?.stringValue
        return ObjectList(items: items, resourceVersion: list[path: ["metadata", "resourceVersion"]]?.stringValue ?? "",
                          continueToken: (next?.isEmpty ?? true) ? nil : next,
                          remainingItemCount: list[path: ["metadata", "remainingItemCount"]]?.intValue)
    }

    /// Every matching object: pages of `options.limit` are followed through `continue`
    /// transparently. If a continue token expires (410) mid-way, the list restarts unpaginated,
    /// as client-go's pager does. The result's resourceVersion is the first page's.
    public func list(_ type: ResourceType, namespace: String? = nil, options: ListOptions = ListOptions()) async throws -> ObjectList<JSONValue> {
        var page = try await listPage(type, namespace: namespace, options: options)
        var result = ObjectList<JSONValue>(items: page.items, resourceVersion: page.resourceVersion)
        while let token = page.continueToken {
            do {
                page = try await listPage(type, namespace: namespace, options: options, continue: token)
            } catch KubeError.gone {
                var full = options
                full.limit = nil
                return try await listPage(type, namespace: namespace, options: full)
            }
            result.items += page.items
        }
        return result
    }

    public func create(_ type: ResourceType, _ object: JSONValue, namespace: String? = nil,
                       fieldManager: String? = nil, dryRun: Bool = false) async throws -> JSONValue {
        var body = object
        if body["apiVersion"] == nil { body["apiVersion"] = .string(type.apiVersion) }
        if body["kind"] == nil { body["kind"] = .string(type.kind) }
        let path = type.collectionPath(namespace: namespaceFor(type, namespace, object: object))
        let bytes = try await send(.POST, path, query: writeQuery(fieldManager, dryRun), body: body.serialized())
        return try json(bytes, "create \(type)")
    }

    /// PUT: replaces the object (or its `subresource`, e.g. `status`). The object's
    /// `metadata.resourceVersion`, when set, makes this a compare-and-swap (409 if stale).
    public func update(_ type: ResourceType, _ object: JSONValue, namespace: String? = nil, subresource: String? = nil,
                       fieldManager: String? = nil, dryRun: Bool = false) async throws -> JSONValue {
        let name = try objectName(object, "update \(type)")
        var body = object
        if body["apiVersion"] == nil { body["apiVersion"] = .string(type.apiVersion) }
        if body["kind"] == nil { body["kind"] = .string(type.kind) }
        let path = type.itemPath(name: name, namespace: namespaceFor(type, namespace, object: object), subresource: subresource)
        let bytes = try await send(.PUT, path, query: writeQuery(fieldManager, dryRun), body: body.serialized())
        return try json(bytes, "update \(type) \(name)")
    }

    /// PUT `/status`.
    public func updateStatus(_ type: ResourceType, _ object: JSONValue, namespace: String? = nil,
                             fieldManager: String? = nil) async throws -> JSONValue {
        try await update(type, object, namespace: namespace, subresource: "status", fieldManager: fieldManager)
    }

    /// DELETE, with `DeleteOptions` in the body. Returns what the server answered: the object
    /// (when finalizers keep it, or for custom resources) or a `Status`.
    @discardableResult
    public func delete(_ type: ResourceType, name: String, namespace: String? = nil,
                       propagationPolicy: PropagationPolicy? = nil, preconditions: Preconditions? = nil,
                       gracePeriodSeconds: Int? = nil, dryRun: Bool = false) async throws -> JSONValue {
        var options: JSONValue = ["apiVersion": "v1", "kind": "DeleteOptions"]
        if let propagationPolicy { options["propagationPolicy"] = .string(propagationPolicy.rawValue) }
        if let gracePeriodSeconds { options["gracePeriodSeconds"] = .int(Int64(gracePeriodSeconds)) }
        if dryRun { options["dryRun"] = ["All"] }
        if let preconditions {
            var value: JSONValue = [:]
            if let uid = preconditions.uid { value["uid"] = .string(uid) }
            if let rv = preconditions.resourceVersion { value["resourceVersion"] = .string(rv) }
            options["preconditions"] = value
        }
        let path = type.itemPath(name: name, namespace: namespaceFor(type, namespace))
        return try json(try await send(.DELETE, path, body: options.serialized()), "delete \(type) \(name)")
    }

    /// PATCH with any of the four patch types (`.merge`, `.json`, `.strategicMerge`, `.apply`).
    public func patch(_ type: ResourceType, name: String, namespace: String? = nil, patchType: PatchType, body: JSONValue,
                      subresource: String? = nil, fieldManager: String? = nil, force: Bool = false,
                      dryRun: Bool = false) async throws -> JSONValue {
        var query = writeQuery(fieldManager, dryRun)
        if force { query.append(("force", "true")) }
        let path = type.itemPath(name: name, namespace: namespaceFor(type, namespace), subresource: subresource)
        let bytes = try await send(.PATCH, path, query: query, body: body.serialized(), contentType: patchType.rawValue)
        return try json(bytes, "patch \(type) \(name)")
    }

    /// JSON merge patch (RFC 7386): `null` members delete, absent members are left alone.
    public func mergePatch(_ type: ResourceType, name: String, namespace: String? = nil, _ patch: JSONValue,
                           subresource: String? = nil, fieldManager: String? = nil) async throws -> JSONValue {
        try await self.patch(type, name: name, namespace: namespace, patchType: .merge, body: patch,
                             subresource: subresource, fieldManager: fieldManager)
    }

    /// JSON patch (RFC 6902): a list of `{"op": ..., "path": ..., "value": ...}` operations.
    public func jsonPatch(_ type: ResourceType, name: String, namespace: String? = nil, _ operations: [JSONValue],
                          subresource: String? = nil, fieldManager: String? = nil) async throws -> JSONValue {
        try await self.patch(type, name: name, namespace: namespace, patchType: .json, body: .array(operations),
                             subresource: subresource, fieldManager: fieldManager)
    }

    /// Server-side apply: `object` is the full intent of `fieldManager`; `force` takes over fields
    /// other managers own instead of failing with a conflict.
    public func apply(_ type: ResourceType, _ object: JSONValue, namespace: String? = nil, fieldManager: String,
                      force: Bool = false, subresource: String? = nil, dryRun: Bool = false) async throws -> JSONValue {
        let name = try objectName(object, "apply \(type)")
        var body = object
        if body["apiVersion"] == nil { body["apiVersion"] = .string(type.apiVersion) }
        if body["kind"] == nil { body["kind"] = .string(type.kind) }
        return try await patch(type, name: name, namespace: namespaceFor(type, namespace, object: object), patchType: .apply,
                               body: body, subresource: subresource, fieldManager: fieldManager, force: force, dryRun: dryRun)
    }

    /// POST to a subresource (e.g. `serviceaccounts/x/token`, `pods/x/eviction`).
    public func createSubresource(_ type: ResourceType, name: String, namespace: String? = nil, subresource: String,
                                  _ body: JSONValue) async throws -> JSONValue {
        let path = type.itemPath(name: name, namespace: namespaceFor(type, namespace), subresource: subresource)
        return try json(try await send(.POST, path, body: body.serialized()), "create \(type) \(name)/\(subresource)")
    }

    /// TokenRequest: a short-lived token for a ServiceAccount.
    public func createToken(namespace: String, serviceAccount: String, audiences: [String] = [],
                            expirationSeconds: Int? = nil) async throws -> IssuedToken {
        var spec: JSONValue = ["audiences": .array(audiences.map { .string($0) })]
        if let expirationSeconds { spec["expirationSeconds"] = .int(Int64(expirationSeconds)) }
        let request: JSONValue = ["apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec]
        let answer = try await createSubresource(.serviceAccounts, name: serviceAccount, namespace: namespace,
                                                 subresource: "token", request)
        guard let token = answer[path: ["status", "token"]]?.stringValue,
              let expiry = answer[path: ["status", "expirationTimestamp"]]?.stringValue.flatMap(KubeTime.parse) else {
            throw KubeError.decoding("TokenRequest for \(namespace)/\(serviceAccount): the answer has no status.token/expirationTimestamp")
        }
        return IssuedToken(token: token, expirationTimestamp: expiry)
    }

    /// Any GET under the server (`/version`, `/apis`, `/openapi/v3`...), as JSON.
    public func getRaw(_ path: String, query: [(String, String)] = []) async throws -> JSONValue {
        try json(try await send(.GET, path, query: query), "GET \(path)")
    }

    private func writeQuery(_ fieldManager: String?, _ dryRun: Bool) -> [(String, String)] {
        var query: [(String, String)] = []
        if let fieldManager, !fieldManager.isEmpty { query.append(("fieldManager", fieldManager)) }
        if dryRun { query.append(("dryRun", "All")) }
        return query
    }
}
