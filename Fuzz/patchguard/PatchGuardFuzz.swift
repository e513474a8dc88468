/// libFuzzer target: the gateway's guard against patches that reach behind the masking
/// (Sources/Gateway/Proxy/MaskedPatchGuard.swift), with the real masking engine and the
/// embedded API server's RFC 6902 implementation (KubeMachinery).
///
/// The first byte picks a mode:
/// - generated: the rest drives a generator of JSON patches written as text the way an
///   attacker would write them to the API server (Go's `encoding/json`): duplicate `op`
///   keys, `\u` escapes in keys and values, invalid UTF-8 in ignored fields, odd whitespace,
///   `copy`/`move`/`test` from and to masked places of a Secret and a Pod. The generator
///   also keeps the operations as kube-apiserver reads that text (the last duplicate key
///   wins, escapes decoded);
/// - raw: the rest is a JSON patch body as is; its reading is KubeCore's parser's.
/// - apply: the rest is a server-side apply body (YAML), without `force`.
///
/// Invariant (any violation aborts, which libFuzzer saves as a crash): no patch the guard
/// lets through reveals a masked value when applied. The operations as the API server reads
/// them are applied to the real Secret or Pod; masking the result (what the agent is shown)
/// must leave none of the planted secret values, plain or base64; and an accepted JSON patch
/// may not `test` a field other than the concurrency fields (a test is a guessing oracle). An
/// apply patch accepted without `force` must set no field the masking masks.
@testable import GatewayParsers
import Foundation
import KubeCore
import KubeMachinery
import Masking

func fail(_ message: @autoclosure () -> String) -> Never {
    FileHandle.standardError.write(Data(("patch guard invariant violated: " + message() + "\n").utf8))
    abort()
}

let secretValue = "S3cr3t-Pl4nted-Value"
let envSecret = "Env-Pl4nted-Passw0rd"
let secretB64 = Data(secretValue.utf8).base64EncodedString()
let planted = [secretValue, secretB64, envSecret]
let masker = Masker(policy: .standard(hashKey: Array("fuzz".utf8)))

let secretObject: JSONValue = try! JSONValue(parsing: #"""
{"apiVersion":"v1","kind":"Secret","type":"Opaque","metadata":{"name":"db","namespace":"default","resourceVersion":"7",
 "labels":{"app":"db"},"annotations":{"note":"x"}},"data":{"password":"\#(secretB64)","user":"YWRtaW4="}}
"""#)
let podObject: JSONValue = try! JSONValue(parsing: #"""
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"default","resourceVersion":"9","labels":{"app":"web"}},
 "spec":{"containers":[{"name":"app","image":"nginx","env":[{"name":"DB_PASSWORD","value":"\#(envSecret)"},
 {"name":"MODE","value":"prod"}]}]}}
"""#)

let opNames = ["copy", "move", "test", "add", "replace", "remove", "Copy", "COPY", "copy ", " copy", "mov", "copyy", ""]
let pointers = ["/data/password", "/data", "/data/user", "/metadata/labels/x", "/metadata/annotations/leak", "/metadata/labels",
                "/spec/containers/0/env/0/value", "/spec/containers/0/env/0", "/spec/containers/0/env", "/spec/containers/0/env/-",
                "/spec/containers/0/env/1/value", "/spec/containers/0/image", "/metadata/name", "/metadata/resourceVersion",
                "/metadata/uid", "/metadata/generation", "/type", "/metadata/annotations/a~1b", "/data/password2", "", "/"]

struct Reader {
    var bytes: ArraySlice<UInt8>
    mutating func next() -> UInt8 { bytes.popFirst() ?? 0 }
    mutating func pick<T>(_ list: [T]) -> T { list[Int(next()) % list.count] }
}

/// A JSON string literal, optionally with every letter written as a `\u` escape.
func literal(_ s: String, escaped: Bool) -> [UInt8] {
    guard escaped else { return JSONValue.string(s).serialized() }
    var out: [UInt8] = [0x22]
    for scalar in s.unicodeScalars {
        if scalar.isASCII, (scalar.properties.isAlphabetic || scalar == " ") {
            out += Array(String(format: "\\u%04x", scalar.value).utf8)
        } else {
            out += JSONValue.string(String(scalar)).serialized().dropFirst().dropLast()
        }
    }
    return out + [0x22]
}

/// One operation as text and as the API server reads it.
func generatedOperation(_ r: inout Reader) -> (text: [UInt8], read: JSONValue) {
    var fields: [(key: String, value: JSONValue, escapedKey: Bool, escapedValue: Bool)] = []
    let op = r.pick(opNames)
    let flags = r.next()
    if flags & 1 != 0 {  // a decoy `op` first: Go keeps the last one
        fields.append(("op", .string(r.pick(opNames)), false, false))
    }
    fields.append(("op", .string(op), flags & 2 != 0, flags & 4 != 0))
    fields.append(("path", .string(r.pick(pointers)), false, flags & 8 != 0))
    if flags & 16 != 0 { fields.append(("from", .string(r.pick(pointers)), false, false)) }
    if flags & 32 != 0 {
        // Never a planted value: the agent does not know them (writing one is not revealing it).
        let values: [JSONValue] = [.string("x"), .string("guess"), .object(["k": .string("v")]), .int(1), .null, .array([])]
        fields.append(("value", r.pick(values), false, false))
    }
    if flags & 64 != 0 {  // a decoy `op` last: this is the one Go keeps
        fields.append(("op", .string(r.pick(opNames)), flags & 128 != 0, false))
    }
    var read: [String: JSONValue] = [:]
    var text: [UInt8] = Array("{".utf8)
    let junk = r.next()
    for (index, field) in fields.enumerated() {
        if index > 0 { text += Array(",".utf8) }
        if junk & 1 != 0 { text += [0x20, 0x0A, 0x09] }
        text += literal(field.key, escaped: field.escapedKey)
        text += Array(":".utf8)
        if case .string(let s) = field.value { text += literal(s, escaped: field.escapedValue) } else { text += field.value.serialized() }
        read[field.key] = field.value
    }
    if junk & 2 != 0 {  // an ignored field holding invalid UTF-8, which Go accepts
        text += Array(#","x":""#.utf8) + [0xFF, 0xFE] + Array(#"""#.utf8)
    }
    text += Array("}".utf8)
    return (text, .object(read))
}

/// Applies the operations as read to `object`, masks the result as the answer to the patch
/// would be masked, and checks no planted secret shows.
func checkApplied(_ operations: JSONValue, to object: JSONValue, body: [UInt8]) {
    guard case .array(let ops) = operations else { return }
    for op in ops where op["op"]?.stringValue == "test" {
        let path = op["path"]?.stringValue ?? ""
        if !["/metadata/resourceVersion", "/metadata/uid", "/metadata/generation"].contains(where: { $0.utf8.elementsEqual(path.utf8) }) {
            fail("accepted a JSON patch that tests \(path.debugDescription): \(String(decoding: body, as: UTF8.self).debugDescription)")
        }
    }
    guard let result = try? JSONPatch.apply(operations, to: object) else { return }
    let masked = String(decoding: masker.maskJSON(result.serialized()), as: UTF8.self)
    for secret in planted where masked.contains(secret) {
        fail("accepted JSON patch reveals \(secret) when applied to \(object["kind"]?.stringValue ?? "?"): "
            + "\(String(decoding: body, as: UTF8.self).debugDescription)\n  answer: \(masked)")
    }
}

let jsonPatch = RequestMediaType("application/json-patch+json")
let applyPatch = RequestMediaType("application/apply-patch+yaml")

@_cdecl("LLVMFuzzerTestOneInput")
public func patchGuardFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let mode = bytes.first else { return 0 }
    let target = mode & 0x80 != 0 ? podObject : secretObject
    switch (mode & 0x7f) % 3 {
    case 0:
        var reader = Reader(bytes: bytes.dropFirst())
        var text: [UInt8] = Array("[".utf8)
        var read: [JSONValue] = []
        for index in 0..<(1 + Int(reader.next() % 4)) {
            let (opText, opRead) = generatedOperation(&reader)
            if index > 0 { text += Array(",".utf8) }
            text += opText
            read.append(opRead)
        }
        text += Array("]".utf8)
        let refusal = MaskedPatchGuard.refusal(method: "PATCH", type: jsonPatch, body: text, query: [:], masker: masker,
                                               kindHint: nil, resource: nil)
        if refusal == nil { checkApplied(.array(read), to: target, body: text) }
    case 1:
        let body = Array(bytes.dropFirst())
        let refusal = MaskedPatchGuard.refusal(method: "PATCH", type: jsonPatch, body: body, query: [:], masker: masker,
                                               kindHint: nil, resource: nil)
        if refusal == nil, let operations = try? JSONValue(parsing: body) { checkApplied(operations, to: target, body: body) }
    default:
        let body = Array(bytes.dropFirst())
        let refusal = MaskedPatchGuard.refusal(method: "PATCH", type: applyPatch, body: body, query: [:], masker: masker,
                                               kindHint: nil, resource: nil)
        if refusal == nil {
            guard let document = try? JSONValue.parseYAMLDocuments(String(decoding: body, as: UTF8.self)).first else {
                fail("an apply patch that does not read as YAML was let through without force")
            }
            let plain = document.serialized()
            if masker.maskJSON(plain) != plain {
                fail("an apply patch that sets a masked field was let through without force: \(String(decoding: plain, as: UTF8.self))")
            }
        }
    }
    return 0
}
