import Foundation
import KubeCore
import XCTest

@testable import Masking

/// Property run (seeded, a few thousand documents): random Kubernetes-shaped documents with
/// secrets planted in every structural position and in free text. For each: the output is
/// valid JSON, no planted secret (plain or base64) survives, and the unplanted ordinary values
/// come back unchanged.
final class MaskingPropertyTests: XCTestCase {
    struct SplitMix {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func word() -> String {
            let alphabet = Array("abcdefghijklmnopqrstuvwxyz-./ 0123456789\"\\\n<>&é")
            return String((0..<below(14)).map { _ in alphabet[below(alphabet.count)] })
        }
    }

    let masker = Masker(policy: .standard(replacement: .keyedHash, hashKey: Array("prop".utf8), alwaysScrub: ["gw-credential-ABCDEFGH"]))
    static let jwt = DetectorTests.sampleJWT

    func noise(_ rng: inout SplitMix, _ depth: Int) -> JSONValue {
        switch rng.below(depth > 2 ? 4 : 6) {
        case 0: return .string(rng.word())
        case 1: return .int(Int64(rng.below(100_000)))
        case 2: return .bool(rng.below(2) == 0)
        case 3: return .double(Double(rng.below(1000)) / 8)
        case 4: return .array((0..<rng.below(4)).map { _ in noise(&rng, depth + 1) })
        default:
            var o: [String: JSONValue] = [:]
            for _ in 0..<rng.below(4) { o["n" + rng.word()] = noise(&rng, depth + 1) }
            return .object(o)
        }
    }

    func testRandomDocumentsWithPlantedSecretsNeverLeakAndStayValidJSON() throws {
        var rng = SplitMix(state: 20_260_501)
        for iteration in 0..<3000 {
            var secrets: [String] = []
            func secret() -> String {
                let s = "Pl4nt\(iteration)x\(secrets.count)q\(rng.next() % 1_000_000)"
                secrets.append(s)
                return s
            }
            var secretObject: JSONValue = [
                "kind": "Secret", "metadata": ["name": .string(rng.word()), "labels": ["l": .string(rng.word())]],
                "data": ["a": .string(Data(secret().utf8).base64EncodedString()), "b": .string(secret())],
                "stringData": ["c": .string(secret())], "type": "Opaque",
            ]
            let lastApplied: JSONValue = ["kind": "Secret", "stringData": ["d": .string(secret())]]
            secretObject.set(.string(lastApplied.serializedString()), at: ["metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"])
            let ordinary = rng.word()
            let pod: JSONValue = ["kind": "Pod", "metadata": ["name": .string(ordinary)], "spec": ["containers": [["name": "c", "image": "nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31",
                "env": [["name": "API_TOKEN", "value": .string(secret())], ["name": "MODE", "value": .string(ordinary)]], "args": .array([.string("--password=" + secret())])]]]]
            let configMap: JSONValue = ["kind": "ConfigMap", "data": ["log": .string(rng.word() + " Bearer " + Self.jwt + " " + rng.word()), "gw": .string("x gw-credential-ABCDEFGH y"), "noise": noise(&rng, 0)]]
            let token: JSONValue = ["kind": "TokenRequest", "status": ["token": .string(secret())]]
            let document: JSONValue
            switch rng.below(5) {
            case 0: document = ["kind": "SecretList", "items": .array([secretObject.removing("kind"), noise(&rng, 1)])]
            case 1: document = ["type": "MODIFIED", "object": secretObject]
            case 2: document = ["kind": "Table", "columnDefinitions": [["name": "Name"], ["name": "Value"]],
                                "rows": [["cells": [.string(ordinary), .string(secret())], "object": secretObject]]]
            case 3: document = ["kind": "List", "items": [pod, configMap, token]]
            default: document = ["kind": "List", "items": [secretObject, pod, configMap, token, noise(&rng, 0)]]
            }
            let out = masker.maskJSON(document.serialized())
            let parsed = try JSONValue(parsing: out)
            let text = String(decoding: out, as: UTF8.self)
            for s in secrets + [Self.jwt, "gw-credential-ABCDEFGH"] {
                XCTAssertFalse(text.contains(s), "iteration \(iteration): \(s) survived")
                XCTAssertFalse(text.contains(Data(s.utf8).base64EncodedString()), "iteration \(iteration): base64 of \(s) survived")
            }
            if case .array(let items)? = parsed["items"], items.count >= 2, items[1]["kind"] == "Pod" || items[0]["kind"] == "Pod" {
                let podOut = items.first { $0["kind"] == "Pod" }
                XCTAssertEqual(podOut?[path: ["metadata", "name"]], .string(ordinary))
            }
            if iteration.isMultiple(of: 500) {
                // The same document masked as one text stream chunked at random points.
                var stream = masker.textStream()
                var streamed: [UInt8] = []
                let bytes = document.prettyPrinted().utf8.map { $0 }
                var i = 0
                while i < bytes.count { let n = 1 + rng.below(300); streamed += stream.feed(Array(bytes[i..<min(i + n, bytes.count)])); i += n }
                streamed += stream.flush()
                XCTAssertFalse(String(decoding: streamed, as: UTF8.self).contains(Self.jwt))
            }
        }
    }

    func testRandomBytesNeverCrashAndValidJSONStaysValid() throws {
        var rng = SplitMix(state: 7)
        let pieces = ["{", "}", "[", "]", ",", ":", "\"kind\"", "\"Secret\"", "\"data\"", "\"items\"", "\"a\"", "1", "-2.5e3", "true", "null", "\"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.x\"", "\"\\u00e9\\n\"", " ", "\"password=Tr0ub4dor\""]
        var validSeen = 0
        for _ in 0..<4000 {
            let text = (0..<rng.below(30)).map { _ in pieces[rng.below(pieces.count)] }.joined()
            let out = masker.maskJSON(Array(text.utf8))
            if (try? JSONValue(parsing: text)) != nil {
                validSeen += 1
                XCTAssertNoThrow(try JSONValue(parsing: out), text)
            }
        }
        XCTAssertGreaterThan(validSeen, 50)
    }
}

extension JSONValue {
    func removing(_ key: String) -> JSONValue {
        guard case .object(var o) = self else { return self }
        o[key] = nil
        return .object(o)
    }
}
