import HTTPServing
import Foundation
import KubeCore
import KubeMachinery

/// `status`, `scale`, `serviceaccounts/token` (TokenRequest) and `pods/log`.
extension ResourceHandlers {
    func serveStatus(_ request: APIRequest) throws -> HTTPResponse {
        switch request.info.verb {
        case "get":
            return .json(200, try existing(request, name: request.info.name).bytes)
        case "update":
            let body = try request.decodedBody()
            return try write(request, name: request.info.name) { rules, old, oldRV in
                try rules.prepareStatusUpdate(body, old: old ?? [:], oldRV: oldRV)
            }
        case "patch":
            return try patch(request)
        default:
            throw APIError(.methodNotAllowed("the server does not allow this method on the requested resource"))
        }
    }

    func scaleObject(_ definition: ResourceDefinition, _ object: JSONValue) -> JSONValue {
        let specPath = definition.scaleSpecReplicasPath ?? ["spec", "replicas"]
        let statusPath = definition.scaleStatusReplicasPath ?? ["status", "replicas"]
        let metadata = object["metadata"] ?? [:]
        var scaleMetadata: JSONValue = [:]
        for key in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
            if let value = metadata[key] { scaleMetadata[key] = value }
        }
        return ["apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": scaleMetadata,
                "spec": ["replicas": object[path: specPath] ?? .int(0)],
                "status": ["replicas": object[path: statusPath] ?? .int(0)]]
    }

    /// The object a PUT (`body` itself) or a patch of `body` onto `current` makes, for
    /// subresources whose object is a view of the stored one (`scale`, `ephemeralcontainers`).
    /// JSON patches are RFC 6902; merge and strategic-merge patches are read as merge patches.
    func subresourceWrite(_ request: APIRequest, body: JSONValue, onto current: JSONValue) throws -> JSONValue {
        guard request.info.verb != "update" else { return body }
        let type = PatchType(contentType: request.http.header("Content-Type") ?? "") ?? .merge
        do {
            return type == .json ? try JSONPatch.apply(body, to: current) : JSONMergePatch.apply(body, to: current)
        } catch let error as PatchError {
            throw APIError(error.status)
        }
    }

    func serveScale(_ request: APIRequest) throws -> HTTPResponse {
        let definition = request.definition
        let specPath = definition.scaleSpecReplicasPath ?? ["spec", "replicas"]
        switch request.info.verb {
        case "get":
            return .object(200, scaleObject(definition, try existing(request, name: request.info.name).value()))
        case "update", "patch":
            let body = try request.decodedBody()
            var newScale: JSONValue = [:]
            let response = try write(request, name: request.info.name) { rules, old, oldRV in
                guard let old else { return [:] }
                let patched = try subresourceWrite(request, body: body, onto: scaleObject(definition, old))
                // `replicas` is `omitempty` in autoscaling/v1: a Scale without it asks for 0.
                guard let replicas = patched[path: ["spec", "replicas"]].map({ $0.intValue }) ?? 0, replicas >= 0 else {
                    throw APIError(.invalid(group: "autoscaling", kind: "Scale", name: request.info.name, errors: [
                        FieldError(.invalid, field: "spec.replicas", value: patched[path: ["spec", "replicas"]]?.serializedString() ?? "null",
                                   detail: "must be greater than or equal to 0"),
                    ]))
                }
                if let rv = patched[path: ["metadata", "resourceVersion"]]?.stringValue, !rv.isEmpty, rv != String(oldRV) {
                    throw APIError(.conflict(group: definition.group, resource: definition.resource, name: request.info.name,
                                             message: "the object has been modified; please apply your changes to the latest version and try again"))
                }
                var object = old
                object.set(.int(replicas), at: specPath)
                object.set(.string(String(oldRV)), at: ["metadata", "resourceVersion"])
                object = rules.bumpGenerationIfNeeded(old: old, new: object)
                newScale = object
                return object
            }
            if case .bytes(let bytes) = response.body, let value = try? JSONValue(parsing: bytes) {
                return .object(200, scaleObject(definition, value))
            }
            return .object(200, scaleObject(definition, newScale))
        default:
            throw APIError(.methodNotAllowed("the server does not allow this method on the requested resource"))
        }
    }

    /// TokenRequest: signs a ServiceAccount JWT bound to the SA's uid.
    func serveToken(_ request: APIRequest) throws -> HTTPResponse {
        guard request.info.verb == "create" else {
            throw APIError(.methodNotAllowed("the server does not allow this method on the requested resource"))
        }
        guard let issuer = server.tokenIssuer else {
            throw APIError(.serviceUnavailable("token issuing is not configured on this server"))
        }
        let serviceAccount = try existing(request, name: request.info.name).value()
        let body = try request.decodedBody()
        let audiences = body[path: ["spec", "audiences"]]?.arrayValue?.compactMap(\.stringValue) ?? []
        let seconds = body[path: ["spec", "expirationSeconds"]]?.intValue ?? 3600
        let uid = serviceAccount[path: ["metadata", "uid"]]?.stringValue ?? ""
        let boundObject = try boundObjectReference(body[path: ["spec", "boundObjectRef"]], namespace: request.info.namespace)
        let issued: (token: String, expiration: Date)
        do {
            issued = try issuer.issue(namespace: request.info.namespace, name: request.info.name, uid: uid,
                                      audiences: audiences, expirationSeconds: seconds, boundObject: boundObject)
        } catch let error as FieldError {
            throw APIError(.invalid(group: "authentication.k8s.io", kind: "TokenRequest", name: request.info.name, errors: [error]))
        }
        var response = body
        response["apiVersion"] = "authentication.k8s.io/v1"
        response["kind"] = "TokenRequest"
        response.set(.string(request.info.name), at: ["metadata", "name"])
        response.set(.string(request.info.namespace), at: ["metadata", "namespace"])
        response.set(.string(KubeTime.format(Date())), at: ["metadata", "creationTimestamp"])
        response.set(.array(audiences.isEmpty ? [.string(ServiceAccountTokenIssuer.defaultIssuer)] : audiences.map { .string($0) }),
                     at: ["spec", "audiences"])
        response.set(.int(Int64(issued.expiration.timeIntervalSinceNow.rounded())), at: ["spec", "expirationSeconds"])
        response["status"] = ["token": .string(issued.token), "expirationTimestamp": .string(KubeTime.format(issued.expiration))]
        return .object(201, response)
    }

    /// A TokenRequest's `spec.boundObjectRef`: a Pod or Secret of the namespace that exists (with
    /// the uid, when one is given); the token then dies with it.
    func boundObjectReference(_ reference: JSONValue?, namespace: String) throws -> BoundObjectReference? {
        guard let reference, reference != .null else { return nil }
        let kindName = reference["kind"]?.stringValue ?? ""
        let name = reference["name"]?.stringValue ?? ""
        guard let kind = BoundObjectReference.Kind(rawValue: kindName), kind != .node else {
            throw APIError(.badRequest("cannot bind token for object of type \(kindName)"))
        }
        let resource = kind == .pod ? "pods" : "secrets"
        guard let object = store.get(ResourceKey(group: "", resource: resource), namespace: namespace, name: name) else {
            throw APIError(.notFound(group: "", resource: resource, name: name))
        }
        let uid = object.value()[path: ["metadata", "uid"]]?.stringValue ?? ""
        if let wanted = reference["uid"]?.stringValue, !wanted.isEmpty, wanted != uid {
            throw APIError(.conflict(group: "", resource: resource, name: name,
                                     message: "the UID in the bound object reference (\(wanted)) does not match the UID in record. The object might have been deleted and then recreated"))
        }
        return BoundObjectReference(kind: kind, name: name, uid: uid)
    }

    /// `pods/log`: scripted output (pods do not run here); `follow=true` streams it.
    func serveLog(_ request: APIRequest) throws -> HTTPResponse {
        let pod = try existing(request, name: request.info.name).value()
        let containers = pod[path: ["spec", "containers"]]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        let container = request.queryValue("container")
        if let container, !containers.isEmpty, !containers.contains(container) {
            throw APIError(.badRequest("container \(container) is not valid for pod \(request.info.name)"))
        }
        let text = server.podLogs(request.info.namespace, request.info.name, container ?? containers.first)
        if request.queryFlag("follow") {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { Array(($0 + "\n").utf8) }
            let stream = AsyncStream<[UInt8]> { continuation in
                let task = Task {
                    for line in lines.dropLast() where !Task.isCancelled {
                        continuation.yield(line)
                        try? await Task.sleep(for: .milliseconds(50))
                    }
                    continuation.finish()
                }
                continuation.onTermination = { _ in task.cancel() }
            }
            return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain")], body: .stream(stream))
        }
        return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain")], body: .bytes(Array(text.utf8)))
    }
}
