import Foundation

/// Turning the raw request target a proxy receives into the path `RequestInfoResolver`
/// expects, without ever guessing.
///
/// kube-apiserver (Go `net/http`) routes on the percent-decoded path and neither collapses
/// `//` nor resolves `.`/`..`; `%2F` decodes to a real `/`, so `/api/v1/namespaces/a%2Fb/pods`
/// and `/api/v1/namespaces/a/b/pods` are the same request to it, and `%73ecrets` is
/// `secrets`. A gateway that authorises on one reading and forwards bytes another component
/// may read differently (an intermediate proxy that normalises dot segments, an HTTP
/// library that collapses slashes) can be made to approve one request and send another.
/// So `cleanPath` accepts only paths that every reader reads the same way and rejects the
/// rest with an error, instead of normalising silently:
/// - the path must start with `/`;
/// - no empty segment (`//`), except a single trailing `/`;
/// - no `.` or `..` segment, written plainly or percent-encoded;
/// - no encoded `/` (`%2F`, `%2f`) — it would split a segment upstream;
/// - no malformed escape (`%`, `%4`, `%zz`) — Go answers 400 for those;
/// - no control characters (`%00`, `%0A`, …) once decoded.
/// It returns the decoded path; callers resolve that and forward the raw path unchanged.
public struct RequestPathError: Error, Sendable, Hashable, CustomStringConvertible, LocalizedError {
    public enum Reason: String, Sendable, Hashable {
        case notAbsolute = "path must start with '/'"
        case emptySegment = "path contains an empty segment ('//')"
        case dotSegment = "path contains a '.' or '..' segment"
        case encodedSlash = "path contains an encoded '/' (%2F)"
        case invalidEscape = "path contains an invalid percent-encoding"
        case controlCharacter = "path contains a control character"
    }

    public var reason: Reason
    /// The raw path as received.
    public var path: String

    public var description: String { "invalid request path \(goQuoted(path)): \(reason.rawValue)" }
    public var errorDescription: String? { description }
}

extension RequestInfoResolver {
    /// Validates a raw request path (no query) and returns it percent-decoded; see
    /// `RequestPathError` for what is rejected and why.
    public static func cleanPath(_ rawPath: String) throws -> String {
        guard rawPath.hasPrefix("/") else { throw RequestPathError(reason: .notAbsolute, path: rawPath) }
        if rawPath == "/" { return rawPath }
        var segments = rawPath.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        segments.removeFirst()  // before the leading "/"
        if segments.last?.isEmpty == true {
            segments.removeLast()  // a single trailing "/" is harmless: both readers trim it
        }
        // Most paths have no escape at all: their segments are checked where they lie, and the
        // decoded path is the raw one.
        var decodedSegments: [String]?
        for (index, segment) in segments.enumerated() {
            if segment.isEmpty { throw RequestPathError(reason: .emptySegment, path: rawPath) }
            guard segment.contains(UInt8(ascii: "%")) || decodedSegments != nil else {
                try check(segment, of: rawPath)
                continue
            }
            guard let bytes = percentDecode(segment) else {
                throw RequestPathError(reason: .invalidEscape, path: rawPath)
            }
            if bytes.contains(UInt8(ascii: "/")) { throw RequestPathError(reason: .encodedSlash, path: rawPath) }
            try check(bytes, of: rawPath)
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw RequestPathError(reason: .invalidEscape, path: rawPath)
            }
            if decodedSegments == nil {
                decodedSegments = segments[..<index].map { String(Substring($0)) }
            }
            decodedSegments?.append(text)
        }
        guard let decodedSegments else { return rawPath }
        let trailing = rawPath.hasSuffix("/") ? "/" : ""
        return "/" + decodedSegments.joined(separator: "/") + trailing
    }

    /// A decoded segment may hold no control character and may not be `.` or `..`.
    private static func check<C: Collection>(_ segment: C, of rawPath: String) throws where C.Element == UInt8 {
        if segment.contains(where: { $0 < 0x20 || $0 == 0x7F }) {
            throw RequestPathError(reason: .controlCharacter, path: rawPath)
        }
        if segment.allSatisfy({ $0 == UInt8(ascii: ".") }), segment.count <= 2 {
            throw RequestPathError(reason: .dotSegment, path: rawPath)
        }
    }

    /// Go's `url.ParseQuery` as `URL.Query()` uses it: `&`-separated pairs, `+` is a space,
    /// pairs with a `;` or a bad escape are dropped, values keep their order.
    public static func parseQuery(_ rawQuery: String) -> [String: [String]] {
        // Bytes, as Go splits them (and much cheaper than splitting Characters).
        var result: [String: [String]] = [:]
        for pair in rawQuery.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            if pair.contains(UInt8(ascii: ";")) { continue }
            let keyAndValue = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = queryUnescape(keyAndValue[0]),
                  let value = queryUnescape(keyAndValue.count > 1 ? keyAndValue[1] : pair[pair.endIndex...]) else { continue }
            result[key, default: []].append(value)
        }
        return result
    }

    private static func queryUnescape(_ text: Substring.UTF8View) -> String? {
        let spaced = text.map { $0 == UInt8(ascii: "+") ? UInt8(ascii: " ") : $0 }
        guard let bytes = percentDecode(spaced) else { return nil }
        return String(validating: bytes, as: UTF8.self) ?? String(decoding: bytes, as: UTF8.self)
    }

    /// Decodes `%XX`; nil for a `%` not followed by two hex digits.
    static func percentDecode<C: Collection>(_ input: C) -> [UInt8]? where C.Element == UInt8 {
        let bytes = Array(input)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]),
                      let low = hexValue(bytes[index + 2]) else { return nil }
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return out
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
