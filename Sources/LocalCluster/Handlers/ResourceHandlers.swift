import HTTPServing
import Foundation
import KubeCore

/// The resource verbs: get, list, watch, create, update, patch, delete, deletecollection, and
/// the subresources (`status`, `scale`, `token`, `log`). Object rules live in ``ObjectRules``;
/// this type does the HTTP side (parameters, response shapes, Tables, watch streams).
struct ResourceHandlers {
    let server: APIServer
    var store: ObjectStore { server.store }

    func serve(_ request: APIRequest) async throws -> HTTPResponse {
        let info = request.info
        if Self.reviewKinds.contains(request.definition.kind) { return try serveReview(request) }
        switch info.subresource {
        case "":
            break
        case "status":
            return try serveStatus(request)
        case "scale":
            return try serveScale(request)
        case "token":
            return try serveToken(request)
        case "log":
            return try serveLog(request)
        case "eviction" where info.resource == "pods" && info.apiGroup.isEmpty:
            return try serveEviction(request)
        case "ephemeralcontainers" where info.resource == "pods" && info.apiGroup.isEmpty:
            return try serveEphemeralContainers(request)
        case "exec", "attach", "portforward":
            try ConnectMethods.check(request.http.method, info: info)
            _ = try existing(request, name: request.info.name)
            if info.subresource == "portforward" {
                // kube's httpstream.Handshake: a client that names protocols must name ours.
                let offered = request.http.headers["X-Stream-Protocol-Version"]
                    .flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
                if !offered.isEmpty && !offered.contains(PortForwardProtocol.name) {
                    throw APIError(Status(message: "unable to upgrade: unable to negotiate protocol: client supports \(offered), server supports [\(PortForwardProtocol.name)]",
                                          reason: "Forbidden", code: 403))
                }
            }
            throw APIError(.badRequest("Upgrade request required"))
        default:
            throw APIError(Status(message: "subresource \(info.subresource) is not supported by this server", reason: "MethodNotAllowed", code: 405))
        }
        switch info.verb {
        case "get": return try get(request)
        case "list": return try list(request)
        case "watch": return try watch(request)
        case "create": return try create(request)
        case "update": return try update(request)
        case "patch": return try patch(request)
        case "delete": return try delete(request)
        case "deletecollection": return try deleteCollection(request)
        default:
            throw APIError(.methodNotAllowed("the server does not allow this method on the requested resource"))
        }
    }

    // MARK: Reads

    func get(_ request: APIRequest) throws -> HTTPResponse {
        let stored = try existing(request, name: request.info.name)
        if request.wantsTable {
            return .object(200, TableConverter(definition: request.definition).table(for: [stored], resourceVersion: String(stored.resourceVersion)))
        }
        return .json(200, stored.bytes)
    }

    func existing(_ request: APIRequest, name: String) throws -> StoredObject {
        let definition = request.definition
        guard let stored = store.get(definition.key, namespace: definition.namespaced ? request.info.namespace : "", name: name) else {
            throw APIError(.notFound(group: definition.group, resource: definition.resource, name: name))
        }
        return stored
    }

    func selectors(_ request: APIRequest) throws -> (Labels.Selector, Fields.Selector) {
        let labels: Labels.Selector
        let fields: Fields.Selector
        do {
            labels = try Labels.Selector(parsing: request.queryValue("labelSelector") ?? "")
        } catch {
            throw APIError(.badRequest("unable to parse requirement: \(error)"))
        }
        do {
            fields = try Fields.Selector(parsing: request.queryValue("fieldSelector") ?? "")
            try fields.validate(supported: Fields.commonSupportedFields.union(Self.extraFieldLabels(request.definition)))
        } catch {
            throw APIError(.badRequest("\(error)"))
        }
        return (labels, fields)
    }

    static func extraFieldLabels(_ definition: ResourceDefinition) -> Set<String> {
        switch (definition.group, definition.resource) {
        case ("", "pods"): return ["spec.nodeName", "status.phase", "spec.serviceAccountName"]
        case ("", "secrets"): return ["type"]
        case ("", "events"), ("events.k8s.io", "events"):
            // kube-apiserver's event field labels (pkg/registry/core/event/strategy.go ToSelectableFields).
            return ["involvedObject.kind", "involvedObject.name", "involvedObject.namespace", "involvedObject.uid",
                    "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
                    "regarding.kind", "regarding.name", "regarding.namespace", "reason", "reportingComponent", "source", "type"]
        default: return []
        }
    }

    static func fieldSet(_ object: StoredObject) -> [String: String] {
        ["metadata.name": object.name, "metadata.namespace": object.namespace]
    }

    func matches(_ object: StoredObject, _ labels: Labels.Selector, _ fields: Fields.Selector) -> Bool {
        guard labels.matches(object.labels) else { return false }
        if fields.isEmpty { return true }
        var set = Self.fieldSet(object)
        if fields.requiredFields.contains(where: { set[$0] == nil }) {
            let value = object.value()
            for field in fields.requiredFields where set[field] == nil {
                let found = value[path: field.split(separator: ".").map(String.init)]
                set[field] = found?.stringValue ?? ""
            }
        }
        return fields.matches(set)
    }

    func list(_ request: APIRequest) throws -> HTTPResponse {
        let (labels, fields) = try selectors(request)
        let namespace = request.info.namespace.isEmpty ? nil : request.info.namespace
        let (all, rv) = store.list(request.definition.key, namespace: namespace)
        var items = all.filter { matches($0, labels, fields) }
        var continueToken: String?
        var remaining: Int64?
        var listRV = rv
        if let continueValue = request.queryValue("continue"), !continueValue.isEmpty {
            guard let token = ContinueToken.decode(continueValue) else {
                throw APIError(.badRequest("continue key is not valid: invalid continue token"))
            }
            listRV = token.resourceVersion
            items = items.filter { ($0.namespace, $0.name) > (token.namespace, token.name) }
        }
        if let limitText = request.queryValue("limit"), let limit = Int(limitText), limit > 0, items.count > limit {
            remaining = Int64(items.count - limit)
            items = Array(items.prefix(limit))
            let last = items[items.count - 1]
            continueToken = ContinueToken(resourceVersion: listRV, namespace: last.namespace, name: last.name).encode()
        }
        if request.wantsTable {
            var table = TableConverter(definition: request.definition).table(for: items, resourceVersion: String(listRV))
            if let continueToken {
                table.set(.string(continueToken), at: ["metadata", "continue"])
            }
            return .object(200, table)
        }
        var metadata: JSONValue = ["resourceVersion": .string(String(listRV))]
        if let continueToken {
            metadata["continue"] = .string(continueToken)
            metadata["remainingItemCount"] = .int(remaining ?? 0)
        }
        var body: [UInt8] = []
        body.reserveCapacity(items.reduce(128) { $0 + $1.bytes.count + 1 })
        body += Array("{\"apiVersion\":".utf8)
        JSONWriter.writeString(request.definition.groupVersion, into: &body)
        body += Array(",\"items\":[".utf8)
        for (index, item) in items.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body += item.bytes
        }
        body += Array("],\"kind\":".utf8)
        JSONWriter.writeString(request.definition.listKind, into: &body)
        body += Array(",\"metadata\":".utf8)
        body += metadata.serialized()
        body.append(UInt8(ascii: "}"))
        return .json(200, body)
    }
}

/// An opaque `continue` token: the list's resourceVersion and the last key returned.
struct ContinueToken: Codable {
    var resourceVersion: Int64
    var namespace: String
    var name: String

    func encode() -> String {
        let data = (try? JSONEncoder().encode(self)) ?? Data()
        return data.base64EncodedString()
    }

    static func decode(_ text: String) -> ContinueToken? {
        guard let data = Data(base64Encoded: text) else { return nil }
        return try? JSONDecoder().decode(ContinueToken.self, from: data)
    }
}
