import HTTPServing
import Foundation
import KubeCore

/// `pods/eviction` and `pods/ephemeralcontainers`, the two pod subresources that change a pod
/// without a pod write: what `kubectl drain` and `kubectl debug` send.
///
/// - `POST pods/<name>/eviction` (a policy/v1 Eviction) deletes the pod as a delete would and
///   answers 201 with a Success Status; a dry run (`?dryRun=All`, or `dryRun` in the
///   Eviction's `deleteOptions`) deletes nothing. PodDisruptionBudgets are not consulted: this
///   server runs no workloads whose disruption they would limit.
/// - `GET|PUT|PATCH pods/<name>/ephemeralcontainers` reads or changes only the pod's
///   `spec.ephemeralContainers` (the subresource's object is the Pod); the rest of a PUT or
///   patch is ignored, and existing ephemeral containers cannot be removed or changed.
extension ResourceHandlers {
    func serveEviction(_ request: APIRequest) throws -> HTTPResponse {
        guard request.info.verb == "create" else {
            throw APIError(.methodNotAllowed("the server does not allow this method on the requested resource"))
        }
        let eviction = try request.decodedBody()
        let name = request.info.name
        if let named = eviction[path: ["metadata", "name"]]?.stringValue, !named.isEmpty, named != name {
            throw APIError(.badRequest("name in URL does not match name in Eviction object"))
        }
        var options = try eviction["deleteOptions"].map { try DeleteOptions(body: $0) } ?? DeleteOptions()
        // An eviction is a create: its dryRun comes from the query too (kube's propagateDryRun).
        if request.isDryRun, !options.isDryRun { options.dryRun.append("All") }
        _ = try delete(request, namespace: request.info.namespace, name: name, options: options)
        return .object(201, ["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Success", "code": 201])
    }

    func serveEphemeralContainers(_ request: APIRequest) throws -> HTTPResponse {
        let name = request.info.name
        switch request.info.verb {
        case "get":
            return .json(200, try existing(request, name: name).bytes)
        case "update", "patch":
            let body = try request.decodedBody()
            return try write(request, name: name) { rules, old, oldRV in
                guard let old else { return [:] }
                let changed = try subresourceWrite(request, body: body, onto: old)
                let before = old[path: ["spec", "ephemeralContainers"]]?.arrayValue ?? []
                let after = changed[path: ["spec", "ephemeralContainers"]]?.arrayValue ?? []
                guard after.count >= before.count, Array(after.prefix(before.count)) == before else {
                    throw APIError(.invalid(group: "", kind: "Pod", name: name, errors: [
                        FieldError(.forbidden, field: "spec.ephemeralContainers", value: "",
                                   detail: "existing ephemeral containers may not be removed or changed"),
                    ]))
                }
                var object = old
                object.set(.array(after), at: ["spec", "ephemeralContainers"])
                object.set(.string(String(oldRV)), at: ["metadata", "resourceVersion"])
                return object
            }
        default:
            throw APIError(.methodNotAllowed("the server does not allow this method on the requested resource"))
        }
    }
}
