/// libFuzzer target: an agent's bearer token through the gateway's JWS/JWT path
/// (Sources/Gateway/OIDC/SignedToken.swift: header, jwt-kit signature check, claims), with
/// keys loaded from JWKs as ``OIDCKeySet`` loads them.
///
/// The first byte picks a mode:
/// - raw: the rest is the token text (seeds are valid tokens; mutations keep some valid);
/// - generated: the rest drives a generator that writes a header and claims (algorithms
///   `none`, `HS256`, look-alike `kid`s, issuers and audiences, odd `exp`), encodes them
///   (sometimes padded or with `+`/`/`), signs with the right key, the wrong key or none, and
///   sometimes flips a byte after signing.
///
/// Invariants (any violation aborts, which libFuzzer saves as a crash):
/// - Anything accepted verifies: an independent check (swift-crypto on the exact signing
///   input, the key chosen by `kid`, the algorithm of that key; claims read by Foundation)
///   accepts it too, with the same subject.
/// - Round trip: a token the generator signed correctly with valid claims is accepted, with
///   the subject and groups it was given.
import Crypto
import Foundation
@testable import GatewayParsers
import AgentGateAPI
import JWTKit
import KubeCore

func fail(_ message: @autoclosure () -> String) -> Never {
    FileHandle.standardError.write(Data(("jwt invariant violated: " + message() + "\n").utf8))
    abort()
}

let now = Date(timeIntervalSince1970: 1_900_000_000)
let issuer = "https://issuer.example"
let identity = AgentIdentity(issuer: issuer, audiences: ["agentgate"])
let ecKey = try! P256.Signing.PrivateKey(rawRepresentation: Array(repeating: UInt8(7), count: 32))
let otherECKey = try! P256.Signing.PrivateKey(rawRepresentation: Array(repeating: UInt8(9), count: 32))
let edKey = try! Curve25519.Signing.PrivateKey(rawRepresentation: Array(repeating: UInt8(5), count: 32))

func b64url(_ bytes: some Sequence<UInt8>) -> String { Base64URL.encode(bytes) }

/// kid → (algorithm, verifier), built from JWKs as OIDCKeySet builds them.
let keys: [String: (alg: String, collection: JWTKeyCollection)] = {
    let ecPublic = ecKey.publicKey.rawRepresentation
    let jwks: [(String, String, String)] = [
        ("ec-1", "ES256", #"{"kty":"EC","crv":"P-256","kid":"ec-1","alg":"ES256","use":"sig","x":"\#(b64url(ecPublic.prefix(32)))","y":"\#(b64url(ecPublic.suffix(32)))"}"#),
        ("ed-1", "EdDSA", #"{"kty":"OKP","crv":"Ed25519","kid":"ed-1","alg":"EdDSA","use":"sig","x":"\#(b64url(edKey.publicKey.rawRepresentation))"}"#),
    ]
    var out: [String: (String, JWTKeyCollection)] = [:]
    for (kid, alg, json) in jwks {
        let collection = JWTKeyCollection()
        let jwk = try! JSONDecoder().decode(JWK.self, from: Data(json.utf8))
        blocking { _ = try! await collection.add(jwk: jwk) }
        out[kid] = (alg, collection)
    }
    return out
}()

/// Runs async work to completion from libFuzzer's synchronous callback.
func blocking<T>(_ work: @escaping () async -> T) -> T {
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result: T?
    Task {
        result = await work()
        done.signal()
    }
    done.wait()
    return result!
}

/// The gateway's answer: the subject, or nil when refused.
func gatewayAccepts(_ token: String) -> String? {
    blocking {
        do {
            let (agent, _) = try await SignedToken.verify(token, identity: identity, now: now) { header in
                guard let key = keys[header.kid] else { throw OIDCError("unknown kid") }
                guard key.alg == header.alg else { throw OIDCError("wrong alg") }
                return key.collection
            }
            return agent.subject
        } catch {
            return nil
        }
    }
}

/// Lenient base64url as RFC 4648 decoders read it (padding optional).
func oracleDecode(_ part: Substring) -> [UInt8]? {
    var s = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while s.count % 4 != 0 { s += "=" }
    return Data(base64Encoded: s).map { [UInt8]($0) }
}

/// The independent check: subject, or nil.
func oracleAccepts(_ token: String) -> String? {
    let parts = token.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 3, let headerBytes = oracleDecode(parts[0]), let payloadBytes = oracleDecode(parts[1]),
          let signature = oracleDecode(parts[2]),
          let header = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any],
          let alg = header["alg"] as? String, let kid = header["kid"] as? String else { return nil }
    let signingInput = Data((parts[0] + "." + parts[1]).utf8)
    switch (alg, kid) {
    case ("ES256", "ec-1"):
        guard let sig = try? P256.Signing.ECDSASignature(rawRepresentation: signature),
              ecKey.publicKey.isValidSignature(sig, for: signingInput) else { return nil }
    case ("EdDSA", "ed-1"):
        guard edKey.publicKey.isValidSignature(signature, for: signingInput) else { return nil }
    default:
        return nil
    }
    guard let claims = try? JSONSerialization.jsonObject(with: Data(payloadBytes)) as? [String: Any],
          let iss = claims["iss"] as? String, Array(iss.utf8) == Array(issuer.utf8) else { return nil }
    let audiences = (claims["aud"] as? String).map { [$0] } ?? (claims["aud"] as? [Any])?.compactMap { $0 as? String } ?? []
    guard audiences.contains(where: { Array($0.utf8) == Array("agentgate".utf8) }) else { return nil }
    guard let exp = (claims["exp"] as? NSNumber)?.doubleValue, exp.isFinite, now.timeIntervalSince1970 <= exp + 60 else { return nil }
    if let nbf = (claims["nbf"] as? NSNumber)?.doubleValue, now.timeIntervalSince1970 < nbf - 60 { return nil }
    guard let sub = claims["sub"] as? String, !sub.isEmpty else { return nil }
    return sub
}

struct Reader {
    var bytes: ArraySlice<UInt8>
    mutating func next() -> UInt8 { bytes.popFirst() ?? 0 }
    mutating func pick<T>(_ list: [T]) -> T { list[Int(next()) % list.count] }
}

/// A generated token, and whether it is one the gateway must accept (with its subject).
func generatedToken(_ r: inout Reader) -> (token: String, mustAccept: String?) {
    let algs = ["ES256", "EdDSA", "none", "HS256", "RS256", "es256", "ES256 ", "ES384"]
    let kids = ["ec-1", "ed-1", "", "EC-1", "ec-1\u{0}", "ec-\u{31}\u{301}", "other"]
    let issuers = [issuer, issuer + "/", "https://issuer.example.", "https://issuer.exampl\u{65}\u{301}", "", "https://evil.example"]
    let audiences: [Any] = ["agentgate", ["x", "agentgate"], "agentgat\u{65}\u{301}", ["x"], 5, "AGENTGATE"]
    let exps: [Any] = [now.timeIntervalSince1970 + 600, now.timeIntervalSince1970 - 30, now.timeIntervalSince1970 - 3600,
                       "2099", 1e300, Int64.max, now.timeIntervalSince1970 + 0.5]
    let alg = r.pick(algs)
    let kid = r.pick(kids)
    var header: [String: Any] = ["alg": alg, "typ": "JWT"]
    if r.next() & 1 == 0 { header["kid"] = kid }
    let sub = "agent-" + String(r.next())
    var claims: [String: Any] = ["iss": r.pick(issuers), "aud": r.pick(audiences), "exp": r.pick(exps), "sub": sub]
    if r.next() & 1 == 0 { claims["nbf"] = now.timeIntervalSince1970 + Double(Int(r.next()) - 128) }
    if r.next() & 1 == 0 { claims["groups"] = ["agents", r.pick(["a", "b"])] }
    let headerText = try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    let claimsText = try! JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])
    let style = r.next()
    func encode(_ data: Data) -> String {
        switch style % 4 {
        case 0: return b64url(data)
        case 1: return data.base64EncodedString()  // standard alphabet, padded
        default: return b64url(data)
        }
    }
    let signingInput = encode(headerText) + "." + encode(claimsText)
    let signer = r.next() % 4
    var signature: [UInt8]
    switch (alg, signer) {
    case ("ES256", 0), ("ES256", 1): signature = Array(try! ecKey.signature(for: Data(signingInput.utf8)).rawRepresentation)
    case ("EdDSA", 0), ("EdDSA", 1): signature = Array(try! edKey.signature(for: Data(signingInput.utf8)))
    case (_, 2): signature = Array(try! otherECKey.signature(for: Data(signingInput.utf8)).rawRepresentation)
    default: signature = Array(HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: SymmetricKey(data: Array("secret".utf8))))
    }
    var token = signingInput + "." + b64url(signature)
    if r.next() % 8 == 0 {  // a flipped byte after signing
        var utf8 = Array(token.utf8)
        let at = Int(r.next()) % utf8.count
        utf8[at] ^= 1 << (r.next() % 7)
        token = String(decoding: utf8, as: UTF8.self)
        return (token, nil)
    }
    let valid = style % 4 != 1 && signer < 2 && header["kid"] != nil
        && ((alg == "ES256" && kid == "ec-1") || (alg == "EdDSA" && kid == "ed-1"))
        && (claims["iss"] as? String).map { Array($0.utf8) == Array(issuer.utf8) } == true
        && { if let a = claims["aud"] as? String { return a == "agentgate" && a.utf8.count == 9 }
             return (claims["aud"] as? [String])?.contains("agentgate") == true }()
        && { if let e = claims["exp"] as? Double { return e >= now.timeIntervalSince1970 - 60 }
             return claims["exp"] as? Int64 == Int64.max }()
        && ((claims["nbf"] as? Double).map { $0 <= now.timeIntervalSince1970 + 60 } ?? true)
    return (token, valid ? sub : nil)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func jwtFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let mode = bytes.first else { return 0 }
    let token: String
    var mustAccept: String?
    if mode & 1 == 0 {
        token = String(decoding: bytes.dropFirst(), as: UTF8.self)
    } else {
        var reader = Reader(bytes: bytes.dropFirst())
        (token, mustAccept) = generatedToken(&reader)
    }
    let accepted = gatewayAccepts(token)
    if let accepted {
        guard let oracle = oracleAccepts(token) else { fail("the gateway accepts a token that does not verify: \(token)") }
        guard Array(oracle.utf8) == Array(accepted.utf8) else { fail("subject \(accepted) accepted, the token says \(oracle): \(token)") }
    }
    if let mustAccept {
        guard let accepted else { fail("a valid token was refused: \(token)") }
        guard Array(accepted.utf8) == Array(mustAccept.utf8) else { fail("subject \(accepted), signed \(mustAccept): \(token)") }
    }
    return 0
}
