/// libFuzzer target: the request target an agent sends, through `RequestInfoResolver.cleanPath`
/// and `resolve` (KubeCore/RequestInfo).
///
/// The input is a method selector byte, then a request target (`path?query`). Half the inputs
/// are taken as raw bytes; the other half are assembled from a dictionary of the segments that
/// matter (`api`, `namespaces`, `watch`, `proxy`, `status`, `.`, `%2F`, …) so the fuzzer reaches
/// resource paths quickly.
///
/// Invariants (any violation aborts, which libFuzzer saves as a crash):
/// 1. A path `cleanPath` accepts is exactly what Go's `url.PathUnescape` gives for it (the
///    path kube-apiserver routes on), has the same number of segments as the raw path, and no
///    empty (but a trailing), `.`, `..` or control-character segment: no escape.
/// 2. Cleaning is idempotent: the cleaned path, percent-encoded again, cleans to itself.
/// 3. `resolve` gives the same RequestInfo as an independent port of kube-apiserver's
///    `RequestInfoFactory.NewRequestInfo` (below, written from requestinfo.go), field by field,
///    and `resolveStrictly` throws exactly where it returns an error.
import Foundation
import KubeCore

func fail(_ message: @autoclosure () -> String) -> Never {
    FileHandle.standardError.write(Data(("requestinfo invariant violated: " + message() + "\n").utf8))
    abort()
}

// MARK: - Oracle: kube-apiserver, staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go

/// Go's `url.PathUnescape` (mode encodePathSegment is not used for Path; `unescape(s,
/// encodePath)`): `%XX` decoded, a bad escape is an error, `+` stays.
func goPathUnescape(_ raw: [UInt8]) -> [UInt8]? {
    var out: [UInt8] = []
    var i = 0
    func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x61...0x66: return b - 0x61 + 10
        case 0x41...0x46: return b - 0x41 + 10
        default: return nil
        }
    }
    while i < raw.count {
        if raw[i] == 0x25 {
            guard i + 2 < raw.count, let h = hex(raw[i + 1]), let l = hex(raw[i + 2]) else { return nil }
            out.append(h << 4 | l)
            i += 3
        } else {
            out.append(raw[i])
            i += 1
        }
    }
    return out
}

struct GoRequestInfo: Equatable, CustomStringConvertible {
    var isResourceRequest = false
    var path = ""
    var verb = ""
    var apiPrefix = "", apiGroup = "", apiVersion = "", namespace = "", resource = "", subresource = "", name = ""
    var parts: [String] = []
    var fieldSelector = "", labelSelector = ""
    var description: String {
        "resource=\(isResourceRequest) verb=\(verb) prefix=\(apiPrefix) group=\(apiGroup) version=\(apiVersion) ns=\(namespace) "
            + "resource=\(resource) sub=\(subresource) name=\(name) parts=\(parts) fs=\(fieldSelector) ls=\(labelSelector)"
    }

    init() {}
    init(_ info: RequestInfo) {
        isResourceRequest = info.isResourceRequest; path = info.path; verb = info.verb
        apiPrefix = info.apiPrefix; apiGroup = info.apiGroup; apiVersion = info.apiVersion; namespace = info.namespace
        resource = info.resource; subresource = info.subresource; name = info.name; parts = info.parts
        fieldSelector = info.fieldSelector; labelSelector = info.labelSelector
    }
}

/// `NewRequestInfo`, line by line. Strings are Go's bytes; they are turned into Swift strings
/// only at the end. The query is Go's `URL.Query()`, parsed by `goParseQuery`.
func goNewRequestInfo(method: String, path: [UInt8], query: [String: [String]]) -> (GoRequestInfo, Bool) {
    var info = GoRequestInfo()
    info.path = String(decoding: path, as: UTF8.self)
    info.verb = method.lowercased()  // methods are ASCII tokens here
    // splitPath: strings.Split(strings.Trim(path, "/"), "/"); "" -> []
    var trimmed = path[...]
    while trimmed.first == 0x2F { trimmed = trimmed.dropFirst() }
    while trimmed.last == 0x2F { trimmed = trimmed.dropLast() }
    var current: [String] = trimmed.isEmpty ? [] : trimmed.split(separator: 0x2F, omittingEmptySubsequences: false)
        .map { String(decoding: $0, as: UTF8.self) }
    if current.count < 3 { return (info, false) }
    let prefixes: Set<[UInt8]> = [Array("api".utf8), Array("apis".utf8)]
    guard prefixes.contains(Array(current[0].utf8)) else { return (info, false) }
    info.apiPrefix = current[0]
    current = Array(current[1...])
    if !Array(info.apiPrefix.utf8).elementsEqual("api".utf8) {
        if current.count < 3 { return (info, false) }
        info.apiGroup = current[0]
        current = Array(current[1...])
    }
    info.isResourceRequest = true
    info.apiVersion = current[0]
    current = Array(current[1...])
    var verbViaPathPrefix = false
    let c0 = Array(current[0].utf8)
    if c0.elementsEqual("proxy".utf8) || c0.elementsEqual("watch".utf8) {
        if current.count < 2 { return (info, true) }
        info.verb = current[0]
        current = Array(current[1...])
        verbViaPathPrefix = true
    } else {
        switch method {
        case "POST": info.verb = "create"
        case "GET", "HEAD": info.verb = "get"
        case "PUT": info.verb = "update"
        case "PATCH": info.verb = "patch"
        case "DELETE": info.verb = "delete"
        default: info.verb = ""
        }
    }
    if Array(current[0].utf8).elementsEqual("namespaces".utf8) {
        if current.count > 1 {
            info.namespace = current[1]
            if current.count > 2 {
                let c2 = Array(current[2].utf8)
                if !(c2.elementsEqual("status".utf8) || c2.elementsEqual("finalize".utf8)) {
                    current = Array(current[2...])
                }
            }
        }
    } else {
        info.namespace = ""
    }
    info.parts = current
    let isProxyVerb = Array(info.verb.utf8).elementsEqual("proxy".utf8)
    if info.parts.count >= 3 && !isProxyVerb { info.subresource = info.parts[2] }
    if info.parts.count >= 2 { info.name = info.parts[1] }
    if info.parts.count >= 1 { info.resource = info.parts[0] }
    if info.name.isEmpty && info.verb == "get" {
        // DecodeParameters into metainternalversion.ListOptions.
        var watch = false
        var fieldSelector: Fields.Selector?
        var decodes = true
        for key in ["limit", "timeoutSeconds"] {
            if let v = query[key]?.first, Int64(v) == nil { decodes = false }
        }
        if let v = query["watch"]?.first {
            let lowered = String(decoding: v.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 32 : $0 }, as: UTF8.self)
            watch = !(Array(lowered.utf8).elementsEqual("false".utf8) || Array(lowered.utf8).elementsEqual("0".utf8))
        }
        if let v = query["labelSelector"]?.first, (try? Labels.Selector(parsing: v)) == nil { decodes = false }
        if let v = query["fieldSelector"]?.first {
            fieldSelector = try? Fields.Selector(parsing: v)
            if fieldSelector == nil { decodes = false }
        }
        if !decodes { fieldSelector = nil }
        info.verb = watch ? "watch" : "list"
        if let name = fieldSelector?.requiresExactMatch("metadata.name") {
            let b = Array(name.utf8)
            let valid = !b.elementsEqual(".".utf8) && !b.elementsEqual("..".utf8) && !b.contains(0x2F) && !b.contains(0x25)
            if valid { info.name = name }
        }
    }
    if info.name.isEmpty && info.verb == "delete" { info.verb = "deletecollection" }
    if !verbViaPathPrefix && ["list", "watch", "deletecollection"].contains(where: { Array(info.verb.utf8).elementsEqual($0.utf8) }) {
        info.fieldSelector = query["fieldSelector"]?.first ?? ""
        info.labelSelector = query["labelSelector"]?.first ?? ""
    }
    return (info, false)
}

// MARK: - Inputs

let methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "get", "PROPFIND"]
let pieces = ["api", "apis", "v1", "apps", "namespaces", "default", "kube-system", "pods", "secrets", "watch", "proxy",
              "status", "finalize", "exec", "log", "scale", "deployments", "web-1", ".", "..", "%2e", "%2E%2e", "%2F", "%2f",
              "", "%", "%4", "%zz", "%00", "%0a", "%C3%A9", "e%CC%81", "%CC%81x", "x%20y", "%25", "a+b", ";", "%3F", "?",
              "\u{301}", "é", "~", "%7E", "namespaces%2Fx"]
let queries = ["", "watch=1", "watch=false", "watch=0", "watch=FALSE", "watch=", "fieldSelector=metadata.name%3Dweb",
               "fieldSelector=metadata.name=web", "fieldSelector=metadata.name%3D..", "fieldSelector=metadata.name%3Da%2Fb",
               "fieldSelector=metadata.name!%3Dx", "labelSelector=app%3Dweb", "labelSelector=%3D%3D", "limit=5", "limit=x",
               "timeoutSeconds=+1", "watch=1&watch=0", "fieldSelector=metadata.name%3Dweb&fieldSelector=metadata.name%3Dother",
               "a;b=c&watch=1", "watch=%", "fieldSelector=metadata.name%3Dx%25y"]

func assemble(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
    var out: [UInt8] = []
    var it = bytes.makeIterator()
    let count = Int(it.next() ?? 0) % 10
    for _ in 0..<count {
        out.append(0x2F)
        out += Array(pieces[Int(it.next() ?? 0) % pieces.count].utf8)
    }
    if (it.next() ?? 0) & 1 == 1 { out.append(0x2F) }
    let q = Int(it.next() ?? 0) % (queries.count + 1)
    if q < queries.count, !queries[q].isEmpty { out += Array(("?" + queries[q]).utf8) }
    while let b = it.next() { out.append(b) }  // the rest, raw
    return out
}

/// Percent-encodes every byte of `path` that is not unreserved, a sub-delim, `:`, `@` or `/`.
func pathEscape(_ path: [UInt8]) -> String {
    var out = ""
    for b in path {
        let c = Character(UnicodeScalar(b))
        if b < 0x80, c.isLetter || c.isNumber || "-._~!$&'()*+,;=:@/".contains(c) {
            out.append(c)
        } else {
            out += String(format: "%%%02X", b)
        }
    }
    return out
}

let resolver = RequestInfoResolver()

@_cdecl("LLVMFuzzerTestOneInput")
public func requestInfoFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let selector = bytes.first else { return 0 }
    let method = methods[Int(selector >> 1) % methods.count]
    let target = selector & 1 == 0 ? Array(bytes.dropFirst()) : assemble(bytes.dropFirst())
    // The request line is text: NIO hands the gateway a String.
    let uri = String(decoding: target, as: UTF8.self)
    let split = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
    let rawPath = String(split[0])
    let rawQuery = split.count > 1 ? String(split[1]) : nil

    guard let cleaned = try? RequestInfoResolver.cleanPath(rawPath) else { return 0 }
    // 1. Go's reading, segments, no escape.
    guard let goPath = goPathUnescape(Array(rawPath.utf8)) else { fail("accepted \(rawPath.debugDescription), which Go refuses (bad escape)") }
    guard Array(cleaned.utf8) == goPath else {
        fail("cleanPath(\(rawPath.debugDescription)) = \(cleaned.debugDescription), Go reads \(String(decoding: goPath, as: UTF8.self).debugDescription)")
    }
    let rawSegments = rawPath.utf8.split(separator: 0x2F, omittingEmptySubsequences: false).count
    let cleanSegments = cleaned.utf8.split(separator: 0x2F, omittingEmptySubsequences: false)
    guard rawSegments == cleanSegments.count else { fail("\(rawPath.debugDescription) has \(rawSegments) segments, cleaned \(cleanSegments.count)") }
    for (index, segment) in cleanSegments.enumerated() where index > 0 {
        let last = index == cleanSegments.count - 1
        if segment.isEmpty && !last { fail("empty segment survived in \(cleaned.debugDescription)") }
        if segment.elementsEqual(".".utf8) || segment.elementsEqual("..".utf8) { fail("dot segment survived in \(cleaned.debugDescription)") }
        if segment.contains(where: { $0 < 0x20 || $0 == 0x7F }) { fail("control byte survived in \(cleaned.debugDescription)") }
    }
    // 2. Idempotence.
    let again = pathEscape(Array(cleaned.utf8))
    guard let recleaned = try? RequestInfoResolver.cleanPath(again) else { fail("re-encoded \(again.debugDescription) of an accepted path is refused") }
    guard recleaned.utf8.elementsEqual(cleaned.utf8) else { fail("cleaning is not idempotent: \(cleaned.debugDescription) -> \(recleaned.debugDescription)") }
    // 3. RequestInfo against the oracle. The query as the resolver reads it (Go's
    //    `URL.Query()`; its own parser is compared in KubeCoreTests).
    let query = RequestInfoResolver.parseQuery(rawQuery ?? "")
    let (expected, expectError) = goNewRequestInfo(method: method, path: goPath, query: query)
    let actual = GoRequestInfo(resolver.resolve(method: method, path: cleaned, query: query))
    guard actual == expected else {
        fail("\(method) \(uri.debugDescription):\n  ours: \(actual)\n  kube: \(expected)")
    }
    let threw = (try? resolver.resolveStrictly(method: method, path: cleaned, query: query)) == nil
    guard threw == expectError else { fail("\(method) \(uri.debugDescription): strict error \(threw), kube \(expectError)") }
    return 0
}
