import AgentGateAPI
import AsyncHTTPClient
import Foundation
import JWTKit
import KubeCore

/// Who an agent is, once its token checked out.
public struct VerifiedAgent: Sendable, Hashable {
    public var subject: String
    public var groups: [String]
    /// From the connection's model claim (default `model`).
    public var model: String?
    /// The token's `sid`, else its `jti`: what keeps one agent run in one session.
    public var tokenKey: String?
}

/// Verifies agent OIDC tokens for connections.
///
/// Contract (DESIGN.md, Gateway):
/// - Compact JWS only; the header's `alg` must be RS256, ES256 or EdDSA and it must carry a
///   `kid` known to the connection's issuer (see ``OIDCKeySet`` for re-fetching). `alg: none`
///   and HMAC are refused before any key is looked up, so a token "signed" with the public
///   key's bytes as an HMAC secret never verifies.
/// - `iss` must equal the connection's issuer; `aud` (string or list) must contain one of
///   its audiences; `exp` is required; `exp` and `nbf` are checked with ``leeway`` (60 s).
/// - Failures throw ``OIDCError`` (401); ``authorize(_:identity:)`` throws
///   ``AgentForbidden`` (403) when neither the subject nor a group is allowed.
/// - A token that verified is remembered (``VerifiedTokenCache``) until it expires, so the
///   signature is checked once per token, not once per request.
public final class OIDCVerifier: Sendable {
    public static let leeway: TimeInterval = 60
    static let acceptedAlgorithms: Set<String> = ["RS256", "ES256", "EdDSA"]

    private let http: HTTPClient
    private let keySets = LockedDictionary<String, OIDCKeySet>()
    private let verified = VerifiedTokenCache()

    public init(http: HTTPClient) {
        self.http = http
    }

    /// The key set of `issuer` (shared by every connection that trusts it).
    public func keySet(for issuer: String) -> OIDCKeySet {
        keySets.value(for: issuer) { OIDCKeySet(issuer: issuer, http: http) }
    }

    /// Verifies `token` for a connection whose identity block is `identity`.
    public func verify(_ token: String, identity: AgentIdentity, now: Date = Date()) async throws -> VerifiedAgent {
        let key = VerifiedTokenCache.key(token: token, identity: identity)
        if let agent = verified.agent(for: key, at: now) { return agent }
        let (agent, expires) = try await verifyUncached(token, identity: identity, now: now)
        verified.remember(agent, for: key, validUntil: Date(timeIntervalSince1970: expires + Self.leeway), at: now)
        return agent
    }

    /// The full check; returns the agent and the token's `exp` (seconds since the epoch).
    private func verifyUncached(_ token: String, identity: AgentIdentity, now: Date) async throws -> (VerifiedAgent, Double) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[2].isEmpty else { throw OIDCError("the bearer token is not a signed JWT") }
        guard let headerBytes = Base64URL.decode(parts[0]), let header = try? JSONValue(parsing: headerBytes) else {
            throw OIDCError("the token header is not base64url JSON")
        }
        guard let alg = header["alg"]?.stringValue, Self.acceptedAlgorithms.contains(alg) else {
            throw OIDCError("token algorithm \(header["alg"]?.stringValue ?? "<none>") is not accepted (RS256, ES256, EdDSA)")
        }
        guard let kid = header["kid"]?.stringValue, !kid.isEmpty else { throw OIDCError("the token header has no kid") }
        let collection = try await keySet(for: identity.issuer).collection(kid: kid, alg: alg, now: now)
        do {
            _ = try await collection.verify(token, as: SignatureOnly.self)
        } catch {
            throw OIDCError("the token signature does not verify")
        }
        guard let payloadBytes = Base64URL.decode(parts[1]), let claims = try? JSONValue(parsing: payloadBytes),
              case .object = claims else {
            throw OIDCError("the token payload is not a JSON object")
        }
        let expires = try Self.checkClaims(claims, identity: identity, now: now)
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
    static func checkClaims(_ claims: JSONValue, identity: AgentIdentity, now: Date) throws -> Double {
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
        guard let exp = number(claims["exp"]) else { throw OIDCError("the token has no exp claim") }
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

    /// Checks the verified agent against the connection's allowed subjects and groups.
    public static func authorize(_ agent: VerifiedAgent, identity: AgentIdentity) throws {
        let subjects = identity.allowedSubjects ?? []
        let groups = identity.allowedGroups ?? []
        // Bytes, not Swift's canonical equivalence (see ExactStrings.swift).
        if subjects.containsSameBytes(as: agent.subject) { return }
        if agent.groups.contains(where: groups.containsSameBytes(as:)) { return }
        throw AgentForbidden(message: "agent \(agent.subject) is not allowed on this connection (not in spec.identity.allowedSubjects or allowedGroups)")
    }
}

/// The agent is authenticated but not allowed (403).
public struct AgentForbidden: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// jwt-kit checks the signature; the claims are checked by `OIDCVerifier` with its leeway.
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

/// A dictionary behind a lock, with get-or-create.
final class LockedDictionary<Key: Hashable & Sendable, Value: Sendable>: @unchecked Sendable {
    private var storage: [Key: Value] = [:]
    private let lock = NSLock()

    func value(for key: Key, create: () -> Value) -> Value {
        lock.lock()
        defer { lock.unlock() }
        if let existing = storage[key] { return existing }
        let created = create()
        storage[key] = created
        return created
    }
}
