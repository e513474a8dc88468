import AgentGateAPI
import AsyncHTTPClient
import Foundation
import JWTKit
import KubeCore

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
/// - A token that verified is remembered (``VerifiedTokenCache``) until it expires or the
///   key that verified it leaves the cache, so the signature is checked once per token, not
///   once per request.
/// - Key sets are per issuer, by the issuer's bytes: a `kid` of another issuer is unknown here.
public final class OIDCVerifier: Sendable {
    public static let leeway = SignedToken.leeway

    private let http: HTTPClient
    /// Keyed by the issuer's bytes: two issuers that only look alike (`é` and `e` + U+0301,
    /// equal to Swift's `==`) never share keys.
    private let keySets = LockedDictionary<[UInt8], OIDCKeySet>()
    private let verified = VerifiedTokenCache()

    public init(http: HTTPClient) {
        self.http = http
    }

    /// The key set of `issuer` (shared by every connection that trusts it).
    public func keySet(for issuer: String) -> OIDCKeySet {
        keySets.value(for: Array(issuer.utf8)) { OIDCKeySet(issuer: issuer, http: http) }
    }

    /// Verifies `token` for a connection whose identity block is `identity`.
    public func verify(_ token: String, identity: AgentIdentity, now: Date = Date()) async throws -> VerifiedAgent {
        let key = VerifiedTokenCache.key(token: token, identity: identity)
        if let agent = verified.agent(for: key, at: now) { return agent }
        let (agent, validUntil) = try await verifyUncached(token, identity: identity, now: now)
        verified.remember(agent, for: key, validUntil: validUntil, at: now)
        return agent
    }

    /// The full check (``SignedToken``) with the keys of the identity's issuer; returns the
    /// agent and how long the answer holds: the token's `exp` plus leeway, and no longer than
    /// the key that verified it stays cached.
    private func verifyUncached(_ token: String, identity: AgentIdentity, now: Date) async throws -> (VerifiedAgent, Date) {
        let keySet = keySet(for: identity.issuer)
        var keyValidUntil = Date.distantFuture
        let (agent, expires) = try await SignedToken.verify(token, identity: identity, now: now) { header in
            let key = try await keySet.key(kid: header.kid, alg: header.alg, now: now)
            keyValidUntil = key.validUntil
            return key.collection
        }
        return (agent, min(Date(timeIntervalSince1970: expires + Self.leeway), keyValidUntil))
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
