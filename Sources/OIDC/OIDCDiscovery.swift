import AsyncHTTPClient
import Foundation
import KubeCore
import NIOCore
import NIOPosix

/// OIDC discovery and JWKS fetching, the one piece the gateway (which verifies agent tokens
/// with the keys, `OIDCKeySet`) and the operator (which reports whether an issuer answers,
/// condition `IssuerReachable`) share.
///
/// Contract:
/// - ``jwksURI(of:)`` reads `<issuer>/.well-known/openid-configuration` (trailing slashes of
///   the issuer dropped first) and returns its `jwks_uri`; the document must name exactly the
///   issuer it was fetched for (OIDC Discovery §4.3), so a look-alike cannot lend its keys.
/// - ``jwks(at:)`` returns the JWKS's `keys` array as it is, with how long the issuer lets it
///   be cached (``JWKS/maxAge``, from `Cache-Control` and `Age`); ``keys(at:)`` the array
///   alone; ``algorithm(of:)`` says which of them the gateway accepts (RS256, ES256, EdDSA; a
///   JWK that declares another `alg` or a `use` other than `sig` is not accepted).
/// - One GET each, `Accept: application/json`, bounded by ``timeout`` and 1 MiB; anything but
///   200 with JSON is an ``OIDCDiscoveryError`` whose message is one sentence naming the URL
///   and the cause in words (`connection refused`, `answered 404`), never a Swift type name.
/// - The discovery document must name its issuer byte for byte (not Swift's canonical `==`).
/// - No caching here: callers cache (the gateway per key set, the operator per issuer).
public struct OIDCDiscovery: Sendable {
    public let http: HTTPClient
    public let timeout: TimeAmount

    public init(http: HTTPClient, timeout: TimeAmount = .seconds(10)) {
        self.http = http
        self.timeout = timeout
    }

    /// The discovery document's URL for `issuer`.
    public static func discoveryURL(of issuer: String) -> String {
        var base = issuer
        while base.hasSuffix("/") { base.removeLast() }
        return base + "/.well-known/openid-configuration"
    }

    /// The issuer's `jwks_uri`, from its discovery document.
    public func jwksURI(of issuer: String) async throws(OIDCDiscoveryError) -> String {
        let discovery = try await getJSON(Self.discoveryURL(of: issuer), stage: .discovery).body
        guard discovery["issuer"]?.stringValue?.hasSameBytes(as: issuer) == true else {
            throw OIDCDiscoveryError(.discovery, "discovery document of \(issuer) names issuer \(discovery["issuer"]?.stringValue ?? "<none>")")
        }
        guard let uri = discovery["jwks_uri"]?.stringValue else {
            throw OIDCDiscoveryError(.discovery, "discovery document of \(issuer) has no jwks_uri")
        }
        return uri
    }

    /// A JWKS as fetched: its `keys` and how long it may be cached.
    public struct JWKS: Sendable {
        public var keys: [JSONValue]
        /// Seconds the issuer lets the answer be reused (`Cache-Control: max-age` less `Age`;
        /// 0 for `no-cache` or `no-store`); nil when it says nothing.
        public var maxAge: TimeInterval?
    }

    /// The `keys` of the JWKS at `uri`.
    public func keys(at uri: String) async throws(OIDCDiscoveryError) -> [JSONValue] {
        try await jwks(at: uri).keys
    }

    /// The JWKS at `uri`, with its cache lifetime.
    public func jwks(at uri: String) async throws(OIDCDiscoveryError) -> JWKS {
        let (jwks, cacheControl, age) = try await getJSON(uri, stage: .jwks)
        guard case .array(let entries)? = jwks["keys"] else { throw OIDCDiscoveryError(.jwks, "JWKS at \(uri) has no keys array") }
        return JWKS(keys: entries, maxAge: Self.maxAge(cacheControl: cacheControl, age: age))
    }

    /// The freshness lifetime `Cache-Control` grants (RFC 9111 §5.2.2), less the response's
    /// `Age`: `no-store` and `no-cache` give 0, `max-age=N` gives N; nil when neither is there.
    /// A malformed `max-age` counts as 0, as RFC 9111 §4.2.1 asks.
    public static func maxAge(cacheControl: [String], age: String? = nil) -> TimeInterval? {
        var maxAge: TimeInterval?
        for directive in cacheControl.joined(separator: ",").split(separator: ",") {
            let parts = directive.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            switch parts.first?.lowercased() {
            case "no-store"?, "no-cache"?:
                return 0
            case "max-age"?:
                let value = parts.count > 1 ? parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) : ""
                maxAge = value.allSatisfy(\.isASCII) ? TimeInterval(UInt32(value) ?? 0) : 0
            default:
                continue
            }
        }
        guard let maxAge else { return nil }
        let elapsed = age.flatMap { UInt32($0.trimmingCharacters(in: .whitespaces)) }.map(TimeInterval.init) ?? 0
        return max(0, maxAge - elapsed)
    }

    /// The one algorithm a JWK may verify, or nil when it is not an accepted key.
    public static func algorithm(of jwk: JSONValue) -> String? {
        let declared = jwk["alg"]?.stringValue
        if let use = jwk["use"]?.stringValue, use != "sig" { return nil }
        let implied: String
        switch (jwk["kty"]?.stringValue, jwk["crv"]?.stringValue) {
        case ("RSA"?, _): implied = "RS256"
        case ("EC"?, "P-256"?): implied = "ES256"
        case ("OKP"?, "Ed25519"?): implied = "EdDSA"
        default: return nil
        }
        if let declared, declared != implied { return nil }
        return implied
    }

    private func getJSON(_ url: String, stage: OIDCDiscoveryError.Stage) async throws(OIDCDiscoveryError) -> (body: JSONValue, cacheControl: [String], age: String?) {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        let body: ByteBuffer
        let code: UInt
        let cacheControl: [String]
        let age: String?
        do {
            let response = try await http.execute(request, timeout: timeout)
            code = response.status.code
            cacheControl = response.headers["cache-control"]
            age = response.headers.first(name: "age")
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw OIDCDiscoveryError(stage, "cannot reach \(url): \(Self.words(for: error))")
        }
        guard code == 200 else { throw OIDCDiscoveryError(stage, "\(url) answered \(code)") }
        do {
            return (try JSONValue(parsing: Array(buffer: body)), cacheControl, age)
        } catch {
            throw OIDCDiscoveryError(stage, "\(url) did not answer JSON: \(error)")
        }
    }

    /// A transport failure from AsyncHTTPClient or NIO, in words.
    static func words(for error: Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout: return "connecting timed out"
            case .readTimeout, .deadlineExceeded, .getConnectionFromPoolTimeout: return "no answer in time"
            case .remoteConnectionClosed: return "the server closed the connection"
            case .invalidURL, .emptyHost, .emptyScheme: return "the URL is not valid"
            case .tlsHandshakeTimeout: return "the TLS handshake timed out"
            case .redirectLimitReached, .redirectCycleDetected: return "it redirects in a loop"
            default:
                if "\(error)".contains("unsupportedScheme") { return "the URL scheme is not supported (use http or https)" }
                return "the request failed (\(error))"
            }
        }
        if let error = error as? NIOConnectionError {
            if error.dnsAAAAError != nil || error.dnsAError != nil, error.connectionErrors.isEmpty {
                return "the host name \(error.host) cannot be resolved"
            }
            if let first = error.connectionErrors.first { return words(for: first.error) }
        }
        if error is NIOTooManyBytesError { return "the answer is larger than 1 MiB" }
        if let error = error as? IOError {
            let text = String(cString: strerror(error.errnoCode))
            return text.prefix(1).lowercased() + text.dropFirst()
        }
        if "\(error)".contains("UnknownHost") { return "the host name cannot be resolved" }
        if "\(error)".contains("CERTIFICATE_VERIFY_FAILED") { return "the server's TLS certificate is not trusted" }
        return "\(error)"
    }
}

/// Why discovery or the JWKS fetch failed: which of the two, and one sentence naming the URL.
public struct OIDCDiscoveryError: Error, Sendable, CustomStringConvertible {
    public enum Stage: Sendable, Equatable {
        /// Reading `/.well-known/openid-configuration` or what it says.
        case discovery
        /// Reading the JWKS at `jwks_uri`.
        case jwks
    }

    public var stage: Stage
    public var message: String

    public init(_ stage: Stage, _ message: String) {
        self.stage = stage
        self.message = message
    }

    public var description: String { message }
}
