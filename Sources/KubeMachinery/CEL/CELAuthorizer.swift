import KubeCore

/// Kubernetes' CEL authorization library (apiserver `cel/library/authz.go`): the `authorizer`
/// variable of admission policies and what its methods return.
///
///     authorizer.group('').resource('serviceaccounts').namespace('team').name('agent-sa')
///         .check('impersonate').allowed()
///     authorizer.path('/healthz').check('get').reason()
///     authorizer.serviceAccount('team', 'agent-sa').group('apps').resource('deployments').check('list')
///     authorizer.requestResource.check('delete')
///
/// Contract, as kube-apiserver's:
/// - `check(verb)` asks about the request's user, or about the ServiceAccount an
///   `authorizer.serviceAccount(ns, name)` stands for (its username and the
///   `system:serviceaccounts[:ns]` groups). The question goes to ``CELAuthorizer/Decide``,
///   which the server wires to its own authorizer.
/// - `group` / `resource` / `subresource` / `namespace` / `name` narrow a resource check
///   (an empty subresource, namespace or name leaves it unset; a blank resource or path is an
///   error); `fieldSelector` / `labelSelector` are carried along.
/// - A Decision answers `allowed()` (only an explicit allow), `reason()`, `errored()`, `error()`.
/// - `serviceAccount` refuses a name that is not a DNS subdomain or a namespace that is not a
///   DNS label.
public struct CELAuthorizer: CELObject {
    public typealias Decide = @Sendable (CELAuthorizationCheck) -> CELAuthorizationDecision

    let decide: Decide
    let serviceAccount: CELAuthorizationCheck.ServiceAccount?
    let requestResource: ResourceCheck?

    /// The `authorizer` variable: checks as the request's user. `requestResource` is what
    /// `authorizer.requestResource` checks (the resource the request addresses).
    public init(requestResource: CELAuthorizationCheck?, decide: @escaping Decide) {
        self.decide = decide
        self.serviceAccount = nil
        self.requestResource = requestResource.map { ResourceCheck(check: $0, decide: decide) }
    }

    private init(serviceAccount: CELAuthorizationCheck.ServiceAccount, decide: @escaping Decide) {
        self.decide = decide
        self.serviceAccount = serviceAccount
        self.requestResource = nil
    }

    public var celTypeName: String { "kubernetes.authorization.Authorizer" }

    public func field(_ name: String) throws -> CELValue? {
        guard name == "requestResource", let requestResource else { return nil }
        return .opaque(requestResource)
    }

    public func call(_ name: String, args: [CELValue]) throws -> CELValue? {
        switch (name, args.first, args.count) {
        case ("path", .string(let path)?, 1):
            guard !path.trimmingCharacters(in: .whitespaces).isEmpty else { throw CELError(message: "path must not be empty", position: 0) }
            var check = blank
            check.isResourceRequest = false
            check.path = path
            return .opaque(ResourceCheck(check: check, decide: decide))
        case ("group", .string(let group)?, 1):
            var check = blank
            check.group = group
            return .opaque(GroupCheck(check: check, decide: decide))
        case ("serviceAccount", .string(let namespace)?, 2):
            guard case .string(let accountName) = args[1] else { return nil }
            guard NameValidation.isDNS1123Subdomain(accountName).isEmpty else { throw CELError(message: "Invalid service account name", position: 0) }
            guard NameValidation.isDNS1123Label(namespace).isEmpty else { throw CELError(message: "Invalid service account namespace", position: 0) }
            return .opaque(CELAuthorizer(serviceAccount: .init(namespace: namespace, name: accountName), decide: decide))
        default:
            return nil
        }
    }

    private var blank: CELAuthorizationCheck {
        CELAuthorizationCheck(serviceAccount: serviceAccount, verb: "", isResourceRequest: true)
    }

    /// `authorizer.group(g)`: only `.resource(r)` follows.
    struct GroupCheck: CELObject {
        let check: CELAuthorizationCheck
        let decide: Decide
        var celTypeName: String { "kubernetes.authorization.GroupCheck" }

        func call(_ name: String, args: [CELValue]) throws -> CELValue? {
            guard name == "resource", args.count == 1, case .string(let resource) = args[0] else { return nil }
            guard !resource.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw CELError(message: "resource must not be empty", position: 0)
            }
            var narrowed = check
            narrowed.resource = resource
            return .opaque(ResourceCheck(check: narrowed, decide: decide))
        }
    }

    /// A resource check (`...resource(r)`, `requestResource`) or a path check (`path(p)`).
    struct ResourceCheck: CELObject {
        let check: CELAuthorizationCheck
        let decide: Decide
        var celTypeName: String {
            check.isResourceRequest ? "kubernetes.authorization.ResourceCheck" : "kubernetes.authorization.PathCheck"
        }

        func call(_ name: String, args: [CELValue]) throws -> CELValue? {
            guard args.count == 1, case .string(let value) = args[0] else { return nil }
            var narrowed = check
            switch name {
            case "check":
                narrowed.verb = value
                return .opaque(Decision(decision: decide(narrowed)))
            case "subresource" where check.isResourceRequest: narrowed.subresource = value
            case "namespace" where check.isResourceRequest: narrowed.namespace = value
            case "name" where check.isResourceRequest: narrowed.name = value
            case "fieldSelector" where check.isResourceRequest: narrowed.fieldSelector = value
            case "labelSelector" where check.isResourceRequest: narrowed.labelSelector = value
            default: return nil
            }
            return .opaque(ResourceCheck(check: narrowed, decide: decide))
        }
    }

    /// The answer of `check(verb)`.
    struct Decision: CELObject {
        let decision: CELAuthorizationDecision
        var celTypeName: String { "kubernetes.authorization.Decision" }

        func call(_ name: String, args: [CELValue]) throws -> CELValue? {
            guard args.isEmpty else { return nil }
            switch name {
            case "allowed": return .bool(decision.allowed)
            case "reason": return .string(decision.reason)
            case "errored": return .bool(decision.error != nil)
            case "error": return .string(decision.error ?? "")
            default: return nil
            }
        }
    }
}

/// One question an admission expression asks the authorizer (kube's `authorizer.Attributes`).
public struct CELAuthorizationCheck: Sendable, Hashable {
    public struct ServiceAccount: Sendable, Hashable {
        public var namespace: String
        public var name: String

        public init(namespace: String, name: String) {
            self.namespace = namespace
            self.name = name
        }
    }

    /// Asked about this ServiceAccount instead of the request's user.
    public var serviceAccount: ServiceAccount?
    public var verb: String
    /// False for a path check (`authorizer.path(p)`).
    public var isResourceRequest: Bool
    public var path: String = ""
    public var group: String = ""
    public var resource: String = ""
    public var subresource: String = ""
    public var namespace: String = ""
    public var name: String = ""
    public var fieldSelector: String = ""
    public var labelSelector: String = ""

    public init(serviceAccount: ServiceAccount? = nil, verb: String, isResourceRequest: Bool = true,
                group: String = "", resource: String = "", subresource: String = "", namespace: String = "", name: String = "") {
        self.serviceAccount = serviceAccount
        self.verb = verb
        self.isResourceRequest = isResourceRequest
        self.group = group
        self.resource = resource
        self.subresource = subresource
        self.namespace = namespace
        self.name = name
    }
}

/// The authorizer's answer: allowed or not, why, and an error when it could not decide.
public struct CELAuthorizationDecision: Sendable, Hashable {
    public var allowed: Bool
    public var reason: String
    public var error: String?

    public init(allowed: Bool, reason: String = "", error: String? = nil) {
        self.allowed = allowed
        self.reason = reason
        self.error = error
    }
}
