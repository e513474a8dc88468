import HTTPServing
import Foundation
import KubeCore
import KubeMachinery

/// create, update, patch, delete and deletecollection on the main resource.
extension ResourceHandlers {
    func rules(_ request: APIRequest) -> ObjectRules {
        ObjectRules(definition: request.definition, now: Date(), fieldValidation: request.queryValue("fieldValidation"))
    }

    func create(_ request: APIRequest) throws -> HTTPResponse {
        let body = try request.decodedBody()
        let definition = request.definition
        let namespace = request.info.namespace
        if definition.namespaced {
            try requireNamespace(namespace)
        }
        let suffix = WorkloadObjects.randomSuffix()
        var object = try rules(request).prepareCreate(body, namespace: namespace, generatedSuffix: suffix)
        object = hooksOnCreate(definition, object: object)
        let name = object[path: ["metadata", "name"]]?.stringValue ?? ""
        if let manager = request.fieldManager {
            object = ServerSideApply.recordUpdate(old: nil, new: object, manager: manager, operation: "Update", now: Date())
        }
        try hooksBeforeWrite(definition, object: object)
        let warnings = try admit(validatingAdmission(request), request, operation: "CREATE", object: object, oldObject: nil)
        var conflict = false
        // A dry run checks what the write would (a taken name is 409) and stores nothing.
        let (stored, _) = try store.mutate(definition.key, namespace: namespace, name: name) { current in
            if current != nil {
                conflict = true
                return .unchanged
            }
            return request.isDryRun ? .unchanged : .put(object)
        }
        if conflict {
            throw APIError(.alreadyExists(group: definition.group, resource: definition.resource, name: name))
        }
        if request.isDryRun { return .object(201, object).adding(warnings) }
        try hooksAfterWrite(definition, object: stored?.value() ?? object)
        return HTTPResponse.json(201, stored?.bytes ?? []).adding(warnings)
    }

    func requireNamespace(_ namespace: String) throws {
        let key = ResourceKey(group: "", resource: "namespaces")
        guard let ns = store.get(key, namespace: "", name: namespace) else {
            throw APIError(.notFound(group: "", resource: "namespaces", name: namespace))
        }
        if ns.value()[path: ["metadata", "deletionTimestamp"]] != nil {
            throw APIError(Status(message: "namespace \(namespace) is being terminated and no new content can be created",
                                  reason: "Forbidden", details: StatusDetails(name: namespace, kind: "namespaces"), code: 403))
        }
    }

    func update(_ request: APIRequest) throws -> HTTPResponse {
        let body = try request.decodedBody()
        return try write(request, name: request.info.name, allowCreate: request.definition.allowsCreateOnUpdate) { rules, old, oldRV in
            guard let old else {
                // PUT on a missing object creates it where the kind allows create-on-update.
                let suffix = ""
                return try rules.prepareCreate(body, namespace: request.info.namespace, generatedSuffix: suffix)
            }
            return try rules.prepareUpdate(body, old: old, oldRV: oldRV)
        }
    }

    /// Runs a read-modify-write on one object inside the store's lock, then the hooks.
    /// A deleting object whose last finalizer was removed is deleted.
    /// `appliedByServer`: the transform already recorded managedFields (server-side apply), so
    /// the write is not also recorded as an `Update` by the same manager.
    func write(_ request: APIRequest, name: String, allowCreate: Bool = false, status: Int = 200, appliedByServer: Bool = false,
               _ transform: (ObjectRules, JSONValue?, Int64) throws -> JSONValue) throws -> HTTPResponse {
        let definition = request.definition
        let namespace = request.info.namespace
        let rules = self.rules(request)
        var created = false
        var computed: JSONValue?
        // Checked before taking the store lock: requireNamespace reads the store (NSLock is not reentrant).
        if allowCreate, definition.namespaced, store.get(definition.key, namespace: namespace, name: name) == nil {
            try requireNamespace(namespace)
        }
        let admission = validatingAdmission(request)
        var warnings: [(String, String)] = []
        let (stored, event) = try store.mutate(definition.key, namespace: namespace, name: name) { current in
            if current == nil && !allowCreate {
                throw APIError(.notFound(group: definition.group, resource: definition.resource, name: name))
            }
            var object = try transform(rules, current?.value(), current?.resourceVersion ?? 0)
            if let manager = request.fieldManager, !appliedByServer {
                let subresource = request.info.subresource == "status" ? "status" : ""
                object = ServerSideApply.recordUpdate(old: current?.value(), new: object, manager: manager, operation: "Update",
                                                      now: Date(), subresource: subresource,
                                                      listMapKeys: { path in Self.listMapKeys(definition, path: path) })
            }
            try hooksBeforeWrite(definition, object: object)
            warnings = try admit(admission, request, operation: current == nil ? "CREATE" : "UPDATE",
                                 object: object, oldObject: current?.value())
            computed = object
            created = current == nil
            if request.isDryRun { return .unchanged }
            if object[path: ["metadata", "deletionTimestamp"]] != nil,
               object[path: ["metadata", "finalizers"]]?.arrayValue?.isEmpty ?? true,
               definition.key != Self.namespaceKey || object[path: ["spec", "finalizers"]]?.arrayValue?.isEmpty ?? true {
                return .delete
            }
            return .put(object)
        }
        if request.isDryRun, let computed { return HTTPResponse.object(created ? 201 : status, computed).adding(warnings) }
        if let event {
            if event.kind == .deleted {
                try hooksAfterDelete(definition, object: event.object.value())
            } else {
                try hooksAfterWrite(definition, object: event.object.value())
            }
        }
        return HTTPResponse.json(created ? 201 : status, stored?.bytes ?? []).adding(warnings)
    }

    func patch(_ request: APIRequest) throws -> HTTPResponse {
        let contentType = request.http.header("Content-Type") ?? ""
        guard let type = PatchType(contentType: contentType) else {
            throw APIError(Status(message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                                  reason: "UnsupportedMediaType", code: 415))
        }
        if type == .strategicMerge && request.definition.isCustomResource {
            throw APIError(Status(message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                                  reason: "UnsupportedMediaType", code: 415))
        }
        let patchBody: JSONValue
        do {
            // An apply body is YAML, of which JSON is a subset; controllers send JSON, which the
            // JSON parser reads several times faster than the YAML one.
            if type == .apply {
                let looksLikeJSON = request.http.body.first(where: { $0 > 0x20 }) == UInt8(ascii: "{")
                if looksLikeJSON, let json = try? JSONValue(parsing: request.http.body) {
                    patchBody = json
                } else {
                    patchBody = try JSONValue(yaml: String(decoding: request.http.body, as: UTF8.self))
                }
            } else {
                patchBody = try JSONValue(parsing: request.http.body)
            }
        } catch {
            throw APIError(.badRequest("error decoding patch: \(error)"))
        }
        if type == .merge || type == .strategicMerge, patchBody.objectValue == nil {
            throw APIError(.badRequest("Invalid JSON Patch"))
        }
        let isApply = type == .apply
        if isApply && (request.fieldManager ?? "").isEmpty {
            throw APIError(Status(message: "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                                  reason: "Invalid", code: 422))
        }
        let force = request.queryFlag("force")
        let subresource = request.info.subresource
        let definition = request.definition
        // Apply creates a missing object, but not through a subresource: kube-apiserver answers
        // an apply to the /status of a missing object with 404.
        return try write(request, name: request.info.name, allowCreate: isApply && subresource.isEmpty,
                         appliedByServer: isApply) { rules, old, oldRV in
            do {
                let patched: JSONValue
                switch type {
                case .merge: patched = JSONMergePatch.apply(patchBody, to: old ?? [:])
                case .json: patched = try JSONPatch.apply(patchBody, to: old ?? [:])
                case .strategicMerge: patched = try StrategicMergePatch.apply(patchBody, to: old ?? [:], kind: definition.kind)
                case .apply:
                    patched = try ServerSideApply.apply(config: patchBody, to: old, manager: request.fieldManager ?? "",
                                                        force: force, now: Date(), subresource: subresource,
                                                        listMapKeys: { path in Self.listMapKeys(definition, path: path) })
                }
                guard let old else {
                    return try rules.prepareCreate(patched, namespace: request.info.namespace, generatedSuffix: "")
                }
                var withRV = patched
                // A patch applies to the current object: its resourceVersion is checked only if the patch sets one.
                if patchBody[path: ["metadata", "resourceVersion"]] == nil {
                    withRV.set(.string(String(oldRV)), at: ["metadata", "resourceVersion"])
                }
                if subresource == "status" {
                    return try rules.prepareStatusUpdate(withRV, old: old, oldRV: oldRV)
                }
                return try rules.prepareUpdate(withRV, old: old, oldRV: oldRV)
            } catch let error as PatchError {
                throw APIError(error.status)
            }
        }
    }

    /// `x-kubernetes-list-map-keys` at a path of the CRD schema (nil: atomic list).
    static func listMapKeys(_ definition: ResourceDefinition, path: [String]) -> [String]? {
        guard var schema = definition.validator?.schema else {
            return BuiltinListTypes.listMapKeys(kind: definition.kind, path: path)
        }
        for component in path {
            if component.hasPrefix("[") || component.hasPrefix("k:") || component.hasPrefix("v:") {
                guard let items = schema.items else { return nil }
                schema = items
                continue
            }
            if let next = schema.properties?[component] {
                schema = next
            } else if let items = schema.items, let next = items.properties?[component] {
                schema = next
            } else {
                return nil
            }
        }
        switch schema.listType {
        case "map": return schema.listMapKeys
        case "set": return []
        default: return nil
        }
    }

    func delete(_ request: APIRequest) throws -> HTTPResponse {
        let options = try DeleteOptions(request)
        return try delete(request, namespace: request.info.namespace, name: request.info.name, options: options)
    }

    /// Deletes one object: removes it, or (finalizers) marks it deleting. A dry run answers
    /// what the delete would return, after the same checks, and changes nothing.
    func delete(_ request: APIRequest, namespace: String, name: String, options: DeleteOptions) throws -> HTTPResponse {
        let definition = request.definition
        var dryRunResult: JSONValue?
        let admission = validatingAdmission(request)
        let (stored, event) = try store.mutate(definition.key, namespace: namespace, name: name) { current in
            guard let current else {
                throw APIError(.notFound(group: definition.group, resource: definition.resource, name: name))
            }
            var object = current.value()
            _ = try admit(admission, request, operation: "DELETE", object: nil, oldObject: object)
            if let uid = options.preconditionUID, uid != object[path: ["metadata", "uid"]]?.stringValue {
                throw APIError(.conflict(group: definition.group, resource: definition.resource, name: name,
                                         message: "Precondition failed: UID in precondition: \(uid), UID in object meta: \(object[path: ["metadata", "uid"]]?.stringValue ?? "")"))
            }
            if let rv = options.preconditionResourceVersion, rv != String(current.resourceVersion) {
                throw APIError(.conflict(group: definition.group, resource: definition.resource, name: name,
                                         message: "Precondition failed: ResourceVersion in precondition: \(rv), ResourceVersion in object meta: \(current.resourceVersion)"))
            }
            var finalizers = object[path: ["metadata", "finalizers"]]?.arrayValue ?? []
            let isNamespace = definition.key == Self.namespaceKey
            if isNamespace {
                // Namespaces are emptied first: the namespace controller then removes the
                // `kubernetes` spec finalizer (namespace storage's Delete, finalize).
                finalizers.append(.string(Self.namespaceFinalizer))
            }
            let mutation: StoreMutation
            if finalizers.isEmpty {
                mutation = .delete
            } else if object[path: ["metadata", "deletionTimestamp"]] != nil {
                mutation = .unchanged
            } else {
                object.set(.string(KubeTime.format(Date())), at: ["metadata", "deletionTimestamp"])
                if isNamespace {
                    object.set(.string("Terminating"), at: ["status", "phase"])
                } else {
                    object.set(.int(0), at: ["metadata", "deletionGracePeriodSeconds"])
                }
                mutation = .put(object)
            }
            guard options.isDryRun else { return mutation }
            if case .put = mutation { dryRunResult = object } else { dryRunResult = current.value() }
            return .unchanged
        }
        if let dryRunResult { return .object(200, dryRunResult) }
        if definition.resource == "namespaces", let stored {
            let value = stored.value()
            Task { await self.finishNamespaceDeletion(name: name, object: value) }
            return .json(200, stored.bytes)
        }
        if let event, event.kind == .deleted {
            try hooksAfterDelete(definition, object: event.object.value())
        }
        return .json(200, stored?.bytes ?? [])
    }

    /// Deletes every object the selectors match, with one set of DeleteOptions (read once,
    /// from the body or else the query, as for a single delete).
    func deleteCollection(_ request: APIRequest) throws -> HTTPResponse {
        let options = try DeleteOptions(request)
        let (labels, fields) = try selectors(request)
        let namespace = request.info.namespace.isEmpty ? nil : request.info.namespace
        let (objects, rv) = store.list(request.definition.key, namespace: namespace)
        var deleted: [JSONValue] = []
        for object in objects where matches(object, labels, fields) {
            if let response = try? delete(request, namespace: object.namespace, name: object.name, options: options),
               case .bytes(let bytes) = response.body, let value = try? JSONValue(parsing: bytes) {
                deleted.append(value)
            }
        }
        return .object(200, ["apiVersion": .string(request.definition.groupVersion), "kind": .string(request.definition.listKind),
                             "metadata": ["resourceVersion": .string(String(rv))], "items": .array(deleted)])
    }
}
