import HTTPServing
import Foundation
import KubeCore
import KubeMachinery
import Logging
import NIOHTTP1

/// The embedded Kubernetes API server: routes each HTTP request (authentication, request
/// info, authorization, discovery, then the resource handlers) and answers every error as
/// a `metav1.Status`. Storage is ``ObjectStore``; served kinds come from ``ResourceRegistry``.
public final class APIServer: @unchecked Sendable {
    public let registry: ResourceRegistry
    public let store: ObjectStore
    let resolver = RequestInfoResolver()
    let authenticator: Authenticator?
    let authorizer: RBACAuthorizer?
    let tokenIssuer: ServiceAccountTokenIssuer?
    let logger: Logger
    /// ValidatingAdmissionPolicies compiled once per resourceVersion.
    let admissionPolicies = AdmissionPolicyCache()
    /// Interval between BOOKMARK events on watches that asked for them.
    public var bookmarkInterval: Duration = .seconds(30)
    /// Scripted output for `pods/log` (pods do not run here).
    public var podLogs: @Sendable (_ namespace: String, _ pod: String, _ container: String?) -> String = { _, pod, _ in
        "log line 1 from \(pod)\nlog line 2 from \(pod)\n"
    }
    /// Where clients reach the server (discovery's serverAddressByClientCIDRs).
    public var serverAddress = "127.0.0.1:16443"
    /// Pod IPs handed out as pods are created and started (PodLifecycle).
    let podIPs = PodIPAllocator()

    public init(registry: ResourceRegistry, store: ObjectStore, authenticator: Authenticator?,
                authorizer: RBACAuthorizer?, tokenIssuer: ServiceAccountTokenIssuer?,
                logger: Logger = Logger(label: "agentgate.localcluster")) {
        self.registry = registry
        self.store = store
        self.authenticator = authenticator
        self.authorizer = authorizer
        self.tokenIssuer = tokenIssuer
        self.logger = logger
    }

    /// Serves one request.
    public func handle(_ request: HTTPRequest) async -> HTTPResponse {
        do {
            return try await route(request)
        } catch let error as APIError {
            return .status(error.status)
        } catch let error as ValidationErrors {
            return .status(.invalid(group: "", kind: "", name: "", errors: error.errors))
        } catch {
            logger.error("internal error serving \(request.method) \(request.uri): \(error)")
            return .status(.internalError("\(error)"))
        }
    }

    private func route(_ request: HTTPRequest) async throws -> HTTPResponse {
        let (rawPath, rawQuery) = Self.splitURI(request.uri)
        let path: String
        do {
            path = try RequestInfoResolver.cleanPath(rawPath)
        } catch {
            throw APIError(.badRequest("\(error)"))
        }
        let query = RequestInfoResolver.parseQuery(rawQuery ?? "")
        if request.bodyTooLarge {
            throw APIError(.requestEntityTooLarge("Request entity too large: limit is 3145728"))
        }

        // Health and version are public, as kube-apiserver's system:public-info-viewer allows.
        switch path {
        case "/healthz", "/readyz", "/livez":
            return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; charset=utf-8")], body: .bytes(Array("ok".utf8)))
        case "/version", "/version/":  // kr8s asks for `/version/`, which kube-apiserver serves too
            return .object(200, Discovery.version)
        default:
            break
        }

        let user = try Impersonation.actingUser(for: request, requester: try authenticate(request), authorizer: authorizer)
        let info: RequestInfo
        do {
            info = try resolver.resolveStrictly(method: request.method, path: path, query: query)
        } catch {
            throw APIError(.internalError("\(error)"))
        }
        try authorize(user: user, info: info)

        guard info.isResourceRequest else {
            if let response = Discovery(registry: registry, serverAddress: serverAddress).serve(path: path, request: request) {
                return response
            }
            throw APIError(Status(message: "the server could not find the requested resource", reason: "NotFound",
                                  details: StatusDetails(), code: 404))
        }
        guard let definition = registry.lookup(group: info.apiGroup, version: info.apiVersion, resource: info.resource) else {
            throw APIError(Status(message: "the server could not find the requested resource", reason: "NotFound",
                                  details: StatusDetails(), code: 404))
        }
        if !info.subresource.isEmpty && !definition.subresources.contains(info.subresource) {
            throw APIError(Status(message: "the server could not find the requested resource", reason: "NotFound",
                                  details: StatusDetails(), code: 404))
        }
        if definition.namespaced == false && !info.namespace.isEmpty && info.resource != "namespaces" {
            throw APIError(Status(message: "the server could not find the requested resource", reason: "NotFound",
                                  details: StatusDetails(), code: 404))
        }
        var scoped = info
        if !definition.namespaced {
            // `/api/v1/namespaces/x` names the namespace; cluster-scoped objects live under "".
            scoped.namespace = ""
        }
        let apiRequest = APIRequest(http: request, info: scoped, query: query, definition: definition, user: user)
        return try await ResourceHandlers(server: self).serve(apiRequest)
    }

    func authenticate(_ request: HTTPRequest) throws -> UserInfo {
        guard let authenticator else {
            return UserInfo(username: "kubernetes-admin", groups: ["system:masters", "system:authenticated"])
        }
        guard let user = authenticator.authenticate(authorizationHeader: request.header("Authorization")) else {
            throw APIError(.unauthorized())
        }
        return user
    }

    func authorize(user: UserInfo, info: RequestInfo) throws {
        guard let authorizer else { return }
        let attributes = AuthorizationAttributes(
            verb: info.verb, apiGroup: info.apiGroup, apiVersion: info.apiVersion, resource: info.resource,
            subresource: info.subresource, namespace: info.namespace, name: info.name,
            isResourceRequest: info.isResourceRequest, path: info.path)
        let decision = authorizer.allowed(user: user, attributes: attributes)
        if !decision.allowed {
            throw APIError(attributes.forbiddenStatus(user: user, reason: decision.reason))
        }
        // A WebSocket upgrade of exec, attach or portforward arrives as GET but starts a
        // process or a connection, so kube-apiserver also asks for `create`
        // (AuthorizePodWebsocketUpgradeCreatePermission, on by default since 1.31).
        if info.verb == "get", info.apiGroup.isEmpty, info.resource == "pods",
           ["exec", "attach", "portforward"].contains(info.subresource) {
            var create = attributes
            create.verb = "create"
            let decision = authorizer.allowed(user: user, attributes: create)
            if !decision.allowed {
                throw APIError(create.forbiddenStatus(user: user, reason: decision.reason))
            }
        }
    }

    static func splitURI(_ uri: String) -> (String, String?) {
        guard let index = uri.firstIndex(of: "?") else { return (uri, nil) }
        return (String(uri[..<index]), String(uri[uri.index(after: index)...]))
    }

    /// WebSocket upgrades: `pods/exec` and `pods/attach` (channel protocols) and
    /// `pods/portforward` (SPDY tunnelled in WebSocket).
    public var webSocketService: WebSocketService { PodStreamUpgrades(server: self) }

    /// Raw upgrades: `pods/exec`, `pods/attach` and `pods/portforward` over `Upgrade: SPDY/3.1`.
    public var byteStreamServices: [ByteStreamUpgradeService] { [PodSPDYUpgrades(server: self)] }

    /// The RBAC objects currently stored, for the authorizer.
    public static func rbacSnapshot(of store: ObjectStore) -> RBACSnapshot {
        func values(_ resource: String) -> [JSONValue] {
            store.list(ResourceKey(group: "rbac.authorization.k8s.io", resource: resource), namespace: nil).objects.map { $0.value() }
        }
        return RBACSnapshot(roles: values("roles"), clusterRoles: values("clusterroles"),
                            roleBindings: values("rolebindings"), clusterRoleBindings: values("clusterrolebindings"))
    }
}
