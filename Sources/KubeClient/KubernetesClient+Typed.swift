import Foundation
import KubeCore

/// Typed operations over ``KubernetesResource``: each encodes through `JSONEncoder` (nil
/// optionals absent), calls the untyped operation with `T.resourceType`, and decodes the answer.
/// A decode failure is ``KubeError/decoding(_:)`` naming the kind and the decoding error.
extension KubernetesClient {
    func decodeObject<T: Decodable>(_ value: JSONValue, as type: T.Type, _ what: String) throws -> T {
        do {
            return try value.decode(T.self)
        } catch {
            throw KubeError.decoding("\(what): cannot decode the answer as \(T.self): \(error)")
        }
    }

    func encodeObject<T: Encodable>(_ object: T) throws -> JSONValue {
        do {
            return try JSONValue(encoding: object)
        } catch {
            throw KubeError.decoding("cannot encode \(T.self): \(error)")
        }
    }

    public func get<T: KubernetesResource>(_ type: T.Type, name: String, namespace: String? = nil) async throws -> T {
        let value = try await get(T.resourceType, name: name, namespace: namespace)
        return try decodeObject(value, as: T.self, "get \(T.resourceType) \(name)")
    }

    /// All matching objects, pages followed transparently (see the untyped `list`).
    public func list<T: KubernetesResource>(_ type: T.Type, namespace: String? = nil,
                                            options: ListOptions = ListOptions()) async throws -> ObjectList<T> {
        let untyped = try await self.list(T.resourceType, namespace: namespace, options: options)
        let items = try untyped.items.map { try decodeObject($0, as: T.self, "list \(T.resourceType)") }
        return ObjectList(items: items, resourceVersion: untyped.resourceVersion)
    }

    public func create<T: KubernetesResource>(_ object: T, namespace: String? = nil, fieldManager: String? = nil) async throws -> T {
        let value = try await create(T.resourceType, try encodeObject(object), namespace: namespace, fieldManager: fieldManager)
        return try decodeObject(value, as: T.self, "create \(T.resourceType)")
    }

    public func update<T: KubernetesResource>(_ object: T, namespace: String? = nil, fieldManager: String? = nil) async throws -> T {
        let value = try await update(T.resourceType, try encodeObject(object), namespace: namespace, fieldManager: fieldManager)
        return try decodeObject(value, as: T.self, "update \(T.resourceType)")
    }

    /// PUT `/status`: only `status` changes; the object's resourceVersion guards the write.
    public func updateStatus<T: KubernetesResource>(_ object: T, namespace: String? = nil, fieldManager: String? = nil) async throws -> T {
        let value = try await update(T.resourceType, try encodeObject(object), namespace: namespace, subresource: "status",
                                     fieldManager: fieldManager)
        return try decodeObject(value, as: T.self, "update \(T.resourceType) status")
    }

    @discardableResult
    public func delete<T: KubernetesResource>(_ type: T.Type, name: String, namespace: String? = nil,
                                              propagationPolicy: PropagationPolicy? = nil,
                                              preconditions: Preconditions? = nil) async throws -> JSONValue {
        try await delete(T.resourceType, name: name, namespace: namespace, propagationPolicy: propagationPolicy, preconditions: preconditions)
    }

    /// Merge patch whose body is `object` encoded: fields that are nil in `object` are absent
    /// from the patch and so left as they are on the server (never deleted by a `null`).
    public func mergePatch<T: KubernetesResource>(_ object: T, namespace: String? = nil, subresource: String? = nil,
                                                  fieldManager: String? = nil) async throws -> T {
        let body = try encodeObject(object)
        guard let name = object.metadata.name, !name.isEmpty else {
            throw KubeError.badRequest(Status(message: "merge patch \(T.resourceType): metadata.name is required", reason: "BadRequest", code: 400))
        }
        let value = try await mergePatch(T.resourceType, name: name, namespace: namespace ?? object.metadata.namespace, body,
                                         subresource: subresource, fieldManager: fieldManager)
        return try decodeObject(value, as: T.self, "patch \(T.resourceType) \(name)")
    }

    /// Merge patch with an explicit body (use `JSONValue.null` members to delete fields).
    public func mergePatch<T: KubernetesResource>(_ type: T.Type, name: String, namespace: String? = nil, _ patch: JSONValue,
                                                  subresource: String? = nil) async throws -> T {
        let value = try await mergePatch(T.resourceType, name: name, namespace: namespace, patch, subresource: subresource)
        return try decodeObject(value, as: T.self, "patch \(T.resourceType) \(name)")
    }

    public func jsonPatch<T: KubernetesResource>(_ type: T.Type, name: String, namespace: String? = nil, _ operations: [JSONValue],
                                                 subresource: String? = nil) async throws -> T {
        let value = try await jsonPatch(T.resourceType, name: name, namespace: namespace, operations, subresource: subresource)
        return try decodeObject(value, as: T.self, "patch \(T.resourceType) \(name)")
    }

    /// Server-side apply of `object` (its non-nil fields are the manager's intent).
    public func apply<T: KubernetesResource>(_ object: T, namespace: String? = nil, fieldManager: String, force: Bool = false,
                                             subresource: String? = nil) async throws -> T {
        var body = try encodeObject(object)
        // managedFields and resourceVersion in an apply body are errors or preconditions; drop what a
        // round-tripped object carries unless the caller set a resourceVersion on purpose.
        body.set(nil, at: ["metadata", "managedFields"])
        let value = try await apply(T.resourceType, body, namespace: namespace, fieldManager: fieldManager, force: force,
                                    subresource: subresource)
        return try decodeObject(value, as: T.self, "apply \(T.resourceType)")
    }
}
