/// libFuzzer target for the masking engine (built by scripts/fuzz.sh, not by SwiftPM's normal
/// build: it lives outside Sources on purpose).
///
/// The first input byte picks a mode, and its high bit the replacement: a fixed mask, or the
/// keyed hash (`hmac:` and 12 hex digits of HMAC-SHA256 — the production swift-crypto HMAC,
/// not a stand-in):
/// - raw JSON: the input is masked as a JSON body; when KubeCore parses the input, the output
///   must parse too;
/// - planted: the input drives a generator of Kubernetes-shaped documents (Secrets, lists, watch
///   events, Tables, pods with env, ConfigMaps with tokens) with secrets planted in them; the
///   output must parse and contain none of the planted secrets;
/// - text: the input is log text with a JWT and the gateway credential planted in it, masked in
///   one piece and as a stream cut at input-chosen points; neither secret may survive.
/// With the keyed hash, a planted Secret's `stringData` value must come out as exactly the
/// HMAC an independent computation (swift-crypto, here) gives, and masking twice must give
/// the same bytes.
/// Any violation aborts, which libFuzzer reports as a crash with the input saved.
import Crypto
import Foundation
import KubeCore
import Masking

let credential = "gateway-credential-Zq81xWv2"
let hashKey = Array("fuzz-key".utf8)
let fixedMasker = Masker(policy: .standard(hashKey: hashKey, alwaysScrub: [credential]))
let hashMasker = Masker(policy: .standard(replacement: .keyedHash, hashKey: hashKey, alwaysScrub: [credential]))

/// `hmac:` and the first 12 hex digits of HMAC-SHA256(hashKey, value), computed here.
func expectedHash(_ value: String) -> String {
    let mac = HMAC<SHA256>.authenticationCode(for: Array(value.utf8), using: SymmetricKey(data: hashKey))
    return "hmac:" + mac.prefix(6).map { String(format: "%02x", $0) }.joined()
}
let jwtSecret = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwbGFudGVkLXN1YmplY3QifQ.cGxhbnRlZC1zaWduYXR1cmUtMDEyMzQ1"

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition {
        FileHandle.standardError.write(Data(("masking invariant violated: " + message() + "\n").utf8))
        abort()
    }
}

struct Reader {
    let bytes: [UInt8]
    var index = 1
    mutating func next() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }
    mutating func word() -> String {
        let n = Int(next() % 12)
        return String((0..<n).map { _ in Character(UnicodeScalar(UInt8(0x20) + next() % 95)) })
    }
}

/// A planted secret distinct enough that finding it in the output means it leaked.
func plant(_ r: inout Reader, _ n: Int) -> String {
    "Pl4nt3d" + String(n) + "x" + String((0..<8).map { _ in Character(UnicodeScalar(UInt8(0x61) + r.next() % 26)) })
}

func noise(_ r: inout Reader, depth: Int) -> JSONValue {
    switch r.next() % (depth > 3 ? 4 : 6) {
    case 0: return .string(r.word())
    case 1: return .int(Int64(r.next()))
    case 2: return .bool(r.next() % 2 == 0)
    case 3: return .null
    case 4: return .array((0..<Int(r.next() % 3)).map { _ in noise(&r, depth: depth + 1) })
    default:
        var o: [String: JSONValue] = [:]
        for _ in 0..<Int(r.next() % 3) { o[r.word()] = noise(&r, depth: depth + 1) }
        return .object(o)
    }
}

func plantedDocument(_ r: inout Reader, secrets: inout [String]) -> JSONValue {
    func secret() -> String { let s = plant(&r, secrets.count); secrets.append(s); return s }
    let b64 = { (s: String) in Data(s.utf8).base64EncodedString() }
    var secretObject: JSONValue = ["kind": "Secret", "metadata": ["name": .string(r.word())],
                                   "data": [.init(stringLiteral: "k"): .string(secret())], "stringData": ["p": .string(secret())]]
    secretObject["extra"] = noise(&r, depth: 0)
    let lastApplied = JSONValue(dictionaryLiteral: ("kind", "Secret"), ("data", ["x": .string(secret())])).serializedString()
    secretObject.set(.string(lastApplied), at: ["metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"])
    let pod: JSONValue = ["kind": "Pod", "spec": ["containers": [["name": "c", "env": [["name": "DB_PASSWORD", "value": .string(secret())], ["name": .string(r.word()), "value": noise(&r, depth: 2)]]]]]]
    let configMap: JSONValue = ["kind": "ConfigMap", "data": ["log": .string(r.word() + " " + jwtSecret + " " + r.word()), "cred": .string("x " + credential), "b": .string(b64(r.word()))]]
    let token: JSONValue = ["kind": "TokenRequest", "status": ["token": .string(secret())]]
    switch r.next() % 6 {
    case 0: return secretObject
    case 1: return ["kind": "SecretList", "items": .array([secretObject.removingKind(), noise(&r, depth: 1)])]
    case 2: return ["type": "ADDED", "object": secretObject]
    case 3: return ["kind": "Table", "columnDefinitions": [["name": "Name"], ["name": "Data"]],
                    "rows": [["cells": [.string(r.word()), .string(jwtSecret)], "object": secretObject]]]
    case 4: return ["kind": "List", "items": [pod, configMap, token, noise(&r, depth: 1)]]
    default: return ["kind": "List", "items": [secretObject, pod, configMap, token]]
    }
}

extension JSONValue {
    func removingKind() -> JSONValue {
        guard case .object(var o) = self else { return self }
        o["kind"] = nil
        return .object(o)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func maskingFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let mode = bytes.first else { return 0 }
    let keyed = mode & 0x80 != 0
    let masker = keyed ? hashMasker : fixedMasker
    switch (mode & 0x7f) % 3 {
    case 0:
        let body = Array(bytes.dropFirst())
        let out = masker.maskJSON(body)
        if (try? JSONValue(parsing: body)) != nil {
            check((try? JSONValue(parsing: out)) != nil, "valid JSON in, invalid JSON out")
        }
        _ = masker.maskText(body)
    case 1:
        var reader = Reader(bytes: bytes)
        var secrets: [String] = []
        let document = plantedDocument(&reader, secrets: &secrets)
        let out = masker.maskJSON(document.serialized())
        check(masker.maskJSON(document.serialized()) == out, "masking the same document twice gave different bytes")
        check((try? JSONValue(parsing: out)) != nil, "planted document: output is not JSON")
        if keyed, let masked = try? JSONValue(parsing: out), masked["kind"]?.stringValue == "Secret",
           let planted = document["stringData"]?["p"]?.stringValue {
            let got = masked["stringData"]?["p"]?.stringValue
            check(got == expectedHash(planted), "keyed hash of \(planted) is \(got ?? "nil"), HMAC-SHA256 gives \(expectedHash(planted))")
        }
        let text = String(decoding: out, as: UTF8.self)
        for s in secrets + [jwtSecret, credential, Data(credential.utf8).base64EncodedString()] {
            check(!text.contains(s) && !text.contains(Data(s.utf8).base64EncodedString()), "planted secret \(s) survived in \(text)")
        }
    default:
        var reader = Reader(bytes: bytes)
        var text = Array(bytes.dropFirst(2).prefix(8192))
        let at = text.isEmpty ? 0 : Int(reader.next()) * 31 % text.count
        text.insert(contentsOf: Array((" " + jwtSecret + " \n" + credential + " ").utf8), at: at)
        let whole = String(decoding: masker.maskText(text), as: UTF8.self)
        check(!whole.contains(jwtSecret) && !whole.contains(credential), "text: planted secret survived")
        var stream = masker.textStream()
        var streamed: [UInt8] = []
        var i = 0
        while i < text.count {
            let n = 1 + Int(reader.next()) * 7
            streamed += stream.feed(Array(text[i..<min(i + n, text.count)]))
            i += n
        }
        streamed += stream.flush()
        let streamedText = String(decoding: streamed, as: UTF8.self)
        check(!streamedText.contains(jwtSecret) && !streamedText.contains(credential), "stream: planted secret survived")
    }
    return 0
}
