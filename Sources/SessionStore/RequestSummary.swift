import Foundation

/// What an agent asked for, as it is recorded: the request's RequestInfo, method, path and
/// query, and its body masked and truncated. One value, made once per request by the gateway,
/// that an exchange (``ExchangeStart``, ``ExchangeRecord``) and an approval
/// (``ApprovalRecord``) both carry, so the two can never describe the same request
/// differently.
public struct RequestSummary: Hashable, Sendable, Codable {
    /// kube-apiserver's RequestInfo verb (`get`, `list`, `watch`, `create`, ...).
    public var verb: String
    public var apiGroup: String
    public var resource: String
    public var subresource: String
    public var namespace: String
    public var name: String
    public var httpMethod: String
    /// The decoded Kubernetes path (without the gateway's `/c/<ns>/<name>` prefix).
    public var path: String
    /// The raw query string, without `?`.
    public var query: String
    /// The body as the agent sent it, masked and truncated by the gateway; nil when bodies
    /// are not recorded or there was none.
    public var body: [UInt8]?

    public init(verb: String, apiGroup: String = "", resource: String = "", subresource: String = "",
                namespace: String = "", name: String = "", httpMethod: String, path: String, query: String = "",
                body: [UInt8]? = nil) {
        self.verb = verb
        self.apiGroup = apiGroup
        self.resource = resource
        self.subresource = subresource
        self.namespace = namespace
        self.name = name
        self.httpMethod = httpMethod
        self.path = path
        self.query = query
        self.body = body
    }
}

/// A record that carries a ``RequestSummary``; its fields read and write through to it.
public protocol CarriesRequestSummary {
    var request: RequestSummary { get set }
}

extension CarriesRequestSummary {
    public var verb: String { get { request.verb } set { request.verb = newValue } }
    public var apiGroup: String { get { request.apiGroup } set { request.apiGroup = newValue } }
    public var resource: String { get { request.resource } set { request.resource = newValue } }
    public var subresource: String { get { request.subresource } set { request.subresource = newValue } }
    public var namespace: String { get { request.namespace } set { request.namespace = newValue } }
    public var name: String { get { request.name } set { request.name = newValue } }
    public var httpMethod: String { get { request.httpMethod } set { request.httpMethod = newValue } }
    public var path: String { get { request.path } set { request.path = newValue } }
    public var query: String { get { request.query } set { request.query = newValue } }
    /// The request body as recorded (masked, maybe truncated).
    public var requestBody: [UInt8]? { get { request.body } set { request.body = newValue } }
}
