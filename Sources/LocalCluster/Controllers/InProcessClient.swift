import HTTPServing
import Foundation
import KubeCore
import NIOHTTP1

/// A resource the embedded controllers read and write: where its objects live in the
/// ``ObjectStore`` and under which URL the API serves them.
struct APIResource: Sendable, Hashable {
    var group: String
    var version: String
    var resource: String
    var kind: String
    var namespaced: Bool = true

    var key: ResourceKey { ResourceKey(group: group, resource: resource) }
    var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }

    /// The collection URL (`namespace` ignored for cluster-scoped resources).
    func path(namespace: String, name: String? = nil, subresource: String? = nil) -> String {
        var path = group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)"
        if namespaced { path += "/namespaces/\(namespace)" }
        path += "/\(resource)"
        if let name { path += "/\(name)" }
        if let subresource { path += "/\(subresource)" }
        return path
    }

    static let pods = APIResource(group: "", version: "v1", resource: "pods", kind: "Pod")
    static let services = APIResource(group: "", version: "v1", resource: "services", kind: "Service")
    static let events = APIResource(group: "", version: "v1", resource: "events", kind: "Event")
    static let nodes = APIResource(group: "", version: "v1", resource: "nodes", kind: "Node", namespaced: false)
    static let persistentVolumeClaims = APIResource(group: "", version: "v1", resource: "persistentvolumeclaims",
                                                    kind: "PersistentVolumeClaim")
    static let deployments = APIResource(group: "apps", version: "v1", resource: "deployments", kind: "Deployment")
    static let replicaSets = APIResource(group: "apps", version: "v1", resource: "replicasets", kind: "ReplicaSet")
    static let statefulSets = APIResource(group: "apps", version: "v1", resource: "statefulsets", kind: "StatefulSet")
    static let jobs = APIResource(group: "batch", version: "v1", resource: "jobs", kind: "Job")
    static let endpointSlices = APIResource(group: "discovery.k8s.io", version: "v1", resource: "endpointslices",
                                            kind: "EndpointSlice")
}

/// An API client that hands each request straight to the ``APIServer``'s handlers (no
/// network), for the server's own controllers and for ``LocalCluster/request(method:path:body:contentType:)``.
/// Every write goes through authentication, authorization, admission, the object rules and
/// the write hooks (generated names, garbage collection) exactly as a remote client's does.
struct InProcessClient: Sendable {
    let server: APIServer
    let token: String
    /// `fieldManager` of writes (managedFields), as client-go derives it from the component's name.
    var fieldManager: String?

    /// A failed request: its HTTP status and the Status message.
    struct Failure: Error, CustomStringConvertible {
        var status: Int
        var message: String
        var description: String { "HTTP \(status): \(message)" }
    }

    /// Sends one request; the reply's body parsed as JSON (`.null` for a stream or non-JSON).
    func send(_ method: String, _ path: String, body: JSONValue? = nil,
              contentType: String = "application/json") async -> (status: Int, body: JSONValue) {
        let headers = HTTPHeaders([("Authorization", "Bearer \(token)"), ("Content-Type", contentType),
                                   ("Accept", "application/json")])
        var uri = path
        if let fieldManager, method != "GET", method != "DELETE" {
            uri += (path.contains("?") ? "&" : "?") + "fieldManager=\(fieldManager)"
        }
        let request = HTTPRequest(method: method, uri: uri, headers: headers, body: body?.serialized() ?? [],
                                  bodyTooLarge: false, remoteAddress: nil)
        let response = await server.handle(request)
        guard case .bytes(let bytes) = response.body else { return (response.status, .null) }
        return (response.status, (try? JSONValue(parsing: bytes)) ?? .null)
    }

    /// Creates `object` in `namespace`; returns the stored object.
    @discardableResult
    func create(_ resource: APIResource, namespace: String, _ object: JSONValue) async throws -> JSONValue {
        try check(await send("POST", resource.path(namespace: namespace), body: object), expecting: 201)
    }

    /// A JSON merge patch (RFC 7386) of an object or of its `subresource`.
    @discardableResult
    func mergePatch(_ resource: APIResource, namespace: String, name: String, subresource: String? = nil,
                    _ patch: JSONValue) async throws -> JSONValue {
        try check(await send("PATCH", resource.path(namespace: namespace, name: name, subresource: subresource),
                             body: patch, contentType: "application/merge-patch+json"), expecting: 200)
    }

    /// Deletes an object (background propagation); an object already gone is not an error.
    /// `uid`: delete only that incarnation (a precondition, as controllers send).
    func delete(_ resource: APIResource, namespace: String, name: String, uid: String? = nil) async throws {
        var options: JSONValue = ["apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"]
        if let uid { options["preconditions"] = ["uid": .string(uid)] }
        let reply = await send("DELETE", resource.path(namespace: namespace, name: name), body: options)
        if reply.status == 404 { return }
        _ = try check(reply, expecting: 200)
    }

    private func check(_ reply: (status: Int, body: JSONValue), expecting: Int) throws -> JSONValue {
        guard reply.status == expecting || (200..<300).contains(reply.status) else {
            throw Failure(status: reply.status, message: reply.body["message"]?.stringValue ?? "\(reply.body)")
        }
        return reply.body
    }
}
