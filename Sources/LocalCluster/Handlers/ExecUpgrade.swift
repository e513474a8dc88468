import HTTPServing
import Foundation
import KubeCore

/// Accepts `pods/exec` and `pods/attach` upgrades (WebSocket, or SPDY/3.1 in ``SPDYExec``)
/// once the request would be allowed as a normal request (authenticated, authorized, pod
/// and container exist).
struct ExecUpgrades {
    let server: APIServer

    static let supportedProtocols = ["v5.channel.k8s.io": 5, "v4.channel.k8s.io": 4]

    func accept(_ request: HTTPRequest) -> (subprotocol: String, session: WebSocketSession)? {
        let offered = (request.header("Sec-WebSocket-Protocol") ?? "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let chosen = offered.first(where: { Self.supportedProtocols[$0] != nil }),
              let options = options(request, protocolVersion: Self.supportedProtocols[chosen] ?? 4) else { return nil }
        return (chosen, WebSocketExec(options: options))
    }

    /// What the scripted shell runs for an admitted exec or attach request; nil when the
    /// request would not be allowed (the normal handler then answers with its error).
    func options(_ request: HTTPRequest, protocolVersion: Int) -> ExecSession.Options? {
        guard let admitted = try? server.admit(request),
              admitted.info.resource == "pods", ["exec", "attach"].contains(admitted.info.subresource),
              let pod = server.store.get(admitted.definition.key, namespace: admitted.info.namespace, name: admitted.info.name)?.value()
        else { return nil }
        let containers = pod[path: ["spec", "containers"]]?.arrayValue ?? []
        let containerName = admitted.query["container"]?.first ?? containers.first?["name"]?.stringValue
        guard let container = containers.first(where: { $0["name"]?.stringValue == containerName }) else { return nil }
        let environment: [(String, String)] = (container["env"]?.arrayValue ?? []).compactMap { entry in
            guard let name = entry["name"]?.stringValue else { return nil }
            return (name, entry["value"]?.stringValue ?? "")
        }
        func flag(_ name: String) -> Bool { ["true", "1"].contains(admitted.query[name]?.first ?? "") }
        return ExecSession.Options(
            command: admitted.query["command"] ?? [], stdin: flag("stdin"), stdout: flag("stdout"), stderr: flag("stderr"),
            tty: flag("tty"), attach: admitted.info.subresource == "attach", podName: admitted.info.name,
            environment: environment, protocolVersion: protocolVersion)
    }
}

extension APIServer {
    struct Admitted {
        let info: RequestInfo
        let query: [String: [String]]
        let definition: ResourceDefinition
        let user: UserInfo
    }

    /// Authentication, request info and authorization of a request without serving it.
    func admit(_ request: HTTPRequest) throws -> Admitted {
        let (rawPath, rawQuery) = Self.splitURI(request.uri)
        let path = try RequestInfoResolver.cleanPath(rawPath)
        let query = RequestInfoResolver.parseQuery(rawQuery ?? "")
        let user = try authenticate(request)
        let info = try resolver.resolveStrictly(method: request.method, path: path, query: query)
        try authorize(user: user, info: info)
        try ConnectMethods.check(request.method, info: info)
        guard info.isResourceRequest,
              let definition = registry.lookup(group: info.apiGroup, version: info.apiVersion, resource: info.resource) else {
            throw APIError(.notFound(group: "", resource: info.resource, name: info.name))
        }
        return Admitted(info: info, query: query, definition: definition, user: user)
    }
}
