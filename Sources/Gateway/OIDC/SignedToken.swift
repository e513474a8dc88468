import AgentGateAPI
import Foundation
import JWTKit
import KubeCore

/// Reading and checking an agent's compact JWS, apart from where its keys come from: the one
/// path an agent's token bytes take (``OIDCVerifier`` feeds it keys fetched by ``OIDCKeySet``;
/// the JWT fuzz target in `Fuzz/jwt` feeds it a fixed key set).
///
/// Contract:
/// - Three base64url segments, the last not empty; the header is a JSON object whose `alg`
///   is RS256, ES256 or EdDSA and whose `kid` is not empty. `alg: none` and HMAC are refused
///   before any key is looked up.
/// - The signature is checked by jwt-kit with the one key `keys(kid, alg)` returns (a key
///   that is for another algorithm is refused there, see ``OIDCKeySet``); the claims are
///   read only after the signature verified.
/// - ``checkClaims(_:identity:now:)``: `iss` equals the identity's issuer byte for byte, `aud`
///   (string or list) holds one of its audiences byte for byte, `exp` is required, `exp` and
///   `nbf` are checked with ``leeway``.
/// - Every failure is an ``OIDCError`` whose message is safe to show the agent (401).
public enum SignedToken {
    /// Clock skew allowed on `exp` and `nbf`.
    public static let leeway: TimeInterval = 60
    static let acceptedAlgorithms: Set<String> = ["RS256", "ES256", "EdDSA"]

    /// The parts of a compact JWS that decide which key checks it.
    public struct Header: Sendable, Equatable {
        public var alg: String
        public var kid: String
    }

    /// Splits `token` and reads its header; nothing is trusted yet.
    public static func header(of token: String) throws -> Header {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[2].isEmpty else { throw OIDCError("the bearer token is not a signed JWT") }
        guard let headerBytes = Base64URL.decode(parts[0]), let header = try? JSONValue(parsing: headerBytes),
              case .object = header else {
            throw OIDCError("the token header is not base64url JSON")
        }
        guard let alg = header["alg"]?.stringValue, acceptedAlgorithms.contains(alg) else {
            throw OIDCError("token algorithm \(header["alg"]?.stringValue ?? "<none>") is not accepted (RS256, ES256, EdDSA)")
        }
        guard let kid = header["kid"]?.stringValue, !kid.isEmpty else { throw OIDCError("the token header has no kid") }
        return Header(alg: alg, kid: kid)
    }

    /// Verifies `token`'s signature with the key `keys` gives for its header, then its claims
    /// against `identity`; returns the agent and the token's `exp` (seconds since the epoch).
    public static func verify(_ token: String, identity: AgentIdentity, now: Date,
                              keys: (Header) async throws -> JWTKeyCollection) async throws -> (VerifiedAgent, Double) {
        let header = try header(of: token)
        let collection = try await keys(header)
        do {
            _ = try await collection.verify(token, as: SignatureOnly.self)
        } catch {
            throw OIDCError("the token signature does not verify")
        }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard let payloadBytes = Base64URL.decode(parts[1]), let claims = try? JSONValue(parsing: payloadBytes),
              case .object = claims else {
            throw OIDCError("the token payload is not a JSON object")
        }
        let expires = try checkClaims(claims, identity: identity, now: now)
        let subjectClaim = identity.subjectClaim ?? AgentIdentity.defaultSubjectClaim
        guard let subject = claims[subjectClaim]?.stringValue, !subject.isEmpty else {
            throw OIDCError("the token has no \(subjectClaim) claim")
        }
        let groups: [String]
        switch claims[identity.groupsClaim ?? AgentIdentity.defaultGroupsClaim] {
        case .array(let values)?: groups = values.compactMap(\.stringValue)
        case .string(let value)?: groups = [value]
        default: groups = []
        }
        let model = claims[identity.modelClaim ?? AgentIdentity.defaultModelClaim]?.stringValue
        let tokenKey = claims["sid"]?.stringValue ?? claims["jti"]?.stringValue
        return (VerifiedAgent(subject: subject, groups: groups, model: model, tokenKey: tokenKey), expires)
    }

    /// Checks `iss`, `aud`, `exp` and `nbf`; returns `exp`.
    @discardableResult
    public static func checkClaims(_ claims: JSONValue, identity: AgentIdentity, now: Date) throws -> Double {
        guard claims["iss"]?.stringValue?.hasSameBytes(as: identity.issuer) == true else {
            throw OIDCError("token issuer \(claims["iss"]?.stringValue ?? "<none>") is not \(identity.issuer)")
        }
        let audiences: [String]
        switch claims["aud"] {
        case .string(let value)?: audiences = [value]
        case .array(let values)?: audiences = values.compactMap(\.stringValue)
        default: audiences = []
        }
        guard audiences.contains(where: identity.audiences.containsSameBytes(as:)) else {
            throw OIDCError("token audience \(audiences) does not include any of \(identity.audiences)")
        }
        guard let exp = number(claims["exp"]), exp.isFinite else { throw OIDCError("the token has no exp claim") }
        let time = now.timeIntervalSince1970
        guard time <= exp + leeway else { throw OIDCError("the token expired") }
        if let nbf = number(claims["nbf"]), time < nbf - leeway {
            throw OIDCError("the token is not valid yet (nbf)")
        }
        return exp
    }

    private static func number(_ value: JSONValue?) -> Double? {
        switch value {
        case .int(let v)?: return Double(v)
        case .double(let v)?: return v
        default: return nil
        }
    }
}

/// Who an agent is, once its token checked out.
public struct VerifiedAgent: Sendable, Hashable {
    public var subject: String
    public var groups: [String]
    /// From the connection's model claim (default `model`).
    public var model: String?
    /// The token's `sid`, else its `jti`: what keeps one agent run in one session.
    public var tokenKey: String?
}

/// Why a token was refused; the message is safe to show the agent.
public struct OIDCError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// jwt-kit checks the signature; the claims are checked by ``SignedToken`` with its leeway.
struct SignatureOnly: JWTPayload {
    init(from decoder: Decoder) throws {}
    func encode(to encoder: Encoder) throws {}
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Unpadded base64url (RFC 7515 §2), as JWS and JWKs use; public for the Sandbox's dev issuer.
public enum Base64URL {
    static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s).map { [UInt8]($0) }
    }

    /// `bytes` as base64url without padding.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
