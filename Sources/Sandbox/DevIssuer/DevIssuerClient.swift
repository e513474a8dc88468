import Crypto
import Foundation
import Gateway
import HTTPServing
import KubeCore

extension DevOIDCIssuer {
    /// An OAuth2 client registered with the dev issuer (in code: ``DevOIDCIssuer/register(_:)``).
    /// The issuer has no users: every token it grants a client names the client's configured
    /// ``subject``, ``groups`` and ``model``.
    public struct Client: Sendable, Hashable {
        public var id: String
        /// A confidential client's secret (client_credentials, and required with
        /// authorization_code); nil for a public client, which may only use
        /// authorization_code with PKCE.
        public var secret: String?
        public var subject: String
        public var groups: [String]
        public var model: String?
        /// The audiences a token may be granted for; the first is the default.
        public var audiences: [String]
        /// Where `/authorize` may send the browser back, compared exactly; their origins may
        /// call discovery, `/keys` and `/token` from a browser (CORS).
        public var redirectURIs: [String]
        /// Lifetime of granted tokens.
        public var tokenLifetime: TimeInterval

        public init(id: String, secret: String? = nil, subject: String, groups: [String] = [], model: String? = nil,
                    audiences: [String], redirectURIs: [String] = [], tokenLifetime: TimeInterval = 3600) {
            self.id = id
            self.secret = secret
            self.subject = subject
            self.groups = groups
            self.model = model
            self.audiences = audiences
            self.redirectURIs = redirectURIs
            self.tokenLifetime = tokenLifetime
        }

        /// The audience a token is granted for: `requested` when the client may have it.
        func audience(requested: String?) throws -> String {
            guard let requested, !requested.isEmpty else { return audiences.first ?? id }
            guard audiences.containsSameBytes(as: requested) else {
                throw OAuthError(.invalidTarget, "client \(id) may not request audience \(requested) (allowed: \(audiences.joined(separator: ", ")))")
            }
            return requested
        }

        /// Compares `presented` with the secret in constant time (SHA-256 digests compare so).
        func secretMatches(_ presented: String) -> Bool {
            guard let secret else { return false }
            return SHA256.hash(data: Data(presented.utf8)) == SHA256.hash(data: Data(secret.utf8))
        }
    }

    /// A secret fit for a client (32 random bytes, base64url).
    public static func randomSecret() -> String {
        Base64URL.encode(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }
}

/// An RFC 6749 §5.2 error answer: `{"error": CODE, "error_description": TEXT}`.
struct OAuthError: Error, CustomStringConvertible {
    enum Code: String {
        case invalidRequest = "invalid_request"
        case invalidClient = "invalid_client"
        case invalidGrant = "invalid_grant"
        case unauthorizedClient = "unauthorized_client"
        case unsupportedGrantType = "unsupported_grant_type"
        case unsupportedResponseType = "unsupported_response_type"
        /// RFC 8707: the requested audience (resource) is not one the client may have.
        case invalidTarget = "invalid_target"
    }
    var code: Code
    var message: String
    /// Client authentication used the Authorization header: answer with `WWW-Authenticate`.
    var basicAuthentication = false

    init(_ code: Code, _ message: String, basicAuthentication: Bool = false) {
        self.code = code
        self.message = message
        self.basicAuthentication = basicAuthentication
    }

    var description: String { "\(code.rawValue): \(message)" }

    /// 401 for a failed client authentication, 400 otherwise.
    var response: HTTPResponse {
        var headers = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
        if code == .invalidClient, basicAuthentication { headers.append(("WWW-Authenticate", #"Basic realm="agentgate-dev""#)) }
        let body: JSONValue = ["error": .string(code.rawValue), "error_description": .string(message)]
        headers.append(("Content-Type", "application/json"))
        return HTTPResponse(status: code == .invalidClient ? 401 : 400, headers: headers, body: .bytes(body.serialized()))
    }
}

/// Authorization codes handed out by `/authorize`: single use, short-lived, bound to the
/// client, the redirect URI and the PKCE challenge.
final class AuthorizationCodes: @unchecked Sendable {
    struct Grant {
        var clientID: String
        var redirectURI: String
        /// BASE64URL(SHA256(code_verifier)).
        var challenge: String
        var audience: String
        var nonce: String?
        var scope: String?
        var expires: Date
    }

    private let lock = NSLock()
    private var grants: [String: Grant] = [:]

    /// Stores `grant` under a fresh random code; drops expired codes.
    func issue(_ grant: Grant, now: Date) -> String {
        let code = DevOIDCIssuer.randomSecret()
        lock.withLock {
            grants = grants.filter { $0.value.expires > now }
            grants[code] = grant
        }
        return code
    }

    /// Removes and returns the grant of `code` (used or not, a code is gone after one try,
    /// so a verifier cannot be guessed by retrying); nil when unknown or expired.
    func redeem(_ code: String, now: Date) -> Grant? {
        let grant = lock.withLock { grants.removeValue(forKey: code) }
        guard let grant, grant.expires > now else { return nil }
        return grant
    }
}

/// RFC 7636 (PKCE), S256 only.
enum PKCE {
    /// A verifier is 43 to 128 characters of `[A-Za-z0-9-._~]` (§4.1).
    static func isValidVerifier(_ verifier: String) -> Bool {
        (43...128).contains(verifier.utf8.count) && verifier.utf8.allSatisfy(isUnreserved)
    }

    /// An S256 challenge is the 43-character base64url SHA-256 of a verifier.
    static func isValidChallenge(_ challenge: String) -> Bool {
        challenge.utf8.count == 43 && challenge.utf8.allSatisfy { isUnreserved($0) && $0 != UInt8(ascii: ".") && $0 != UInt8(ascii: "~") }
    }

    static func challenge(for verifier: String) -> String {
        Base64URL.encode(SHA256.hash(data: Data(verifier.utf8)))
    }

    /// Compares the verifier's challenge with `challenge` in constant time.
    static func verifier(_ verifier: String, matches challenge: String) -> Bool {
        guard isValidVerifier(verifier) else { return false }
        return SHA256.hash(data: Data(Self.challenge(for: verifier).utf8)) == SHA256.hash(data: Data(challenge.utf8))
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
