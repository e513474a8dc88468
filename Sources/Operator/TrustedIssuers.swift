/// The cluster-level list of OIDC issuers whose agents may use a connection
/// (`agentgate operator --trusted-issuer URL`, repeatable), as Pinniped and kube-oidc-proxy
/// configure issuers at cluster scope.
///
/// Contract:
/// - Whoever may create an AgentConnection chooses its `spec.identity.issuer`; this list is
///   the platform team's answer to "which issuers do we accept at all". A connection naming
///   any other issuer is `Stalled`, reason `IssuerNotTrusted`, and has no credential: no
///   token is requested and its Secret is deleted, so the gateway stops serving it.
/// - Issuers compare exactly (scheme, host, port, path and case), after dropping trailing
///   slashes on both sides: `https://idp.example.com/` and `https://idp.example.com` are one
///   issuer, `https://IDP.example.com` and `https://idp.example.com/tenant` are others.
/// - An empty list trusts every issuer (the behaviour before the flag existed); the command
///   logs a warning saying so at start.
public struct TrustedIssuers: Sendable, Equatable {
    /// The trusted issuers, normalised (no trailing slash), in the order given.
    public let issuers: [String]

    public init(_ issuers: [String]) {
        var seen: Set<String> = []
        self.issuers = issuers.map(Self.normalised).filter { seen.insert($0).inserted }
    }

    /// Whether no list was given, so every issuer is trusted.
    public var trustsEveryIssuer: Bool { issuers.isEmpty }

    /// Whether a connection naming `issuer` may be served.
    public func trusts(_ issuer: String) -> Bool {
        trustsEveryIssuer || issuers.contains(Self.normalised(issuer))
    }

    /// The `IssuerNotTrusted` message: the issuer and the list, and what to do.
    func refusal(of issuer: String) -> String {
        "spec.identity.issuer \"\(issuer)\" is not a trusted issuer of this cluster (trusted: \(issuers.joined(separator: ", "))); "
            + "use one of them, or ask the platform team to add it with agentgate operator --trusted-issuer"
    }

    /// `issuer` without trailing slashes.
    public static func normalised(_ issuer: String) -> String {
        var issuer = issuer
        while issuer.hasSuffix("/") { issuer.removeLast() }
        return issuer
    }
}
