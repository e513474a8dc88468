import Foundation
import KubeCore
import SessionStore

/// The route of one agent request: `/c/<namespace>/<name>/<kubernetes path>?<query>`.
///
/// Contract:
/// - The raw path is checked with `RequestInfoResolver.cleanPath` *before* the connection
///   prefix is stripped, so `/c/a/b/../../c/d`, `//`, encoded slashes (`%2F`), bad escapes and
///   control characters are refused (400) and never reach a connection.
/// - The connection namespace and name come from the decoded segments; the Kubernetes path
///   is kept twice: `rawPath` (forwarded byte for byte) and `decodedPath` (what RequestInfo is
///   derived from), which differ only by percent-decoding of single segments.
/// - `/c/<ns>/<name>` with nothing after it is the API root `/`.
public struct GatewayRoute: Sendable, Hashable {
    public var namespace: String
    public var name: String
    /// The Kubernetes path as received (still percent-encoded), starting with `/`.
    public var rawPath: String
    /// The same path percent-decoded, for RequestInfo.
    public var decodedPath: String
    /// The raw query (without `?`), nil when absent.
    public var rawQuery: String?

    public enum Failure: Error, Sendable, Hashable {
        /// The path is not one every reader reads the same way (400).
        case invalidPath(String)
        /// Not under `/c/<namespace>/<name>` (404).
        case notAConnectionPath
    }

    /// Parses a raw request target (path and query).
    public static func parse(_ uri: String) -> Result<GatewayRoute, Failure> {
        // Byte-wise (UTF-8) throughout: every delimiter here is ASCII, and Character-wise
        // splitting of Strings was a measurable share of a small request's CPU time.
        let slash = UInt8(ascii: "/")
        let bytes = uri.utf8
        let rawPath: Substring
        let rawQuery: String?
        if let mark = bytes.firstIndex(of: UInt8(ascii: "?")) {
            rawPath = uri[..<mark]
            rawQuery = String(uri[uri.utf8.index(after: mark)...])
        } else {
            rawPath = uri[...]
            rawQuery = nil
        }
        if rawPath.utf8.contains(UInt8(ascii: "#")) { return .failure(.invalidPath("a request path may not contain '#'")) }
        let decoded: String
        do {
            decoded = try RequestInfoResolver.cleanPath(String(rawPath))
        } catch {
            return .failure(.invalidPath("\(error)"))
        }
        // cleanPath keeps one segment per raw segment (no encoded '/', no empty segment), so the
        // raw and decoded segment lists line up index by index.
        let raw = rawPath.utf8.split(separator: slash, omittingEmptySubsequences: false).dropFirst()
        let dec = decoded.utf8.split(separator: slash, omittingEmptySubsequences: false).dropFirst()
        guard raw.count == dec.count else {
            return .failure(.invalidPath("request path \(rawPath) cannot be read unambiguously"))
        }
        guard raw.count >= 3 else { return .failure(.notAConnectionPath) }
        let segment = { (index: Int) in dec[dec.startIndex + index] }
        guard segment(0).elementsEqual("c".utf8), !segment(1).isEmpty, !segment(2).isEmpty else {
            return .failure(.notAConnectionPath)
        }
        // The Kubernetes path is everything from the third segment's trailing '/' on.
        let rest = raw.count > 3 ? String(rawPath[raw[raw.startIndex + 2].endIndex...]) : "/"
        let restDecoded = dec.count > 3 ? String(decoded[dec[dec.startIndex + 2].endIndex...]) : "/"
        return .success(GatewayRoute(namespace: String(Substring(segment(1))), name: String(Substring(segment(2))),
                                     rawPath: rest, decodedPath: restDecoded, rawQuery: rawQuery))
    }

    /// The connection the route names.
    public var connection: ConnectionRef { ConnectionRef(namespace: namespace, name: name) }

    /// The request target forwarded upstream: the raw path and query, unchanged.
    public var upstreamTarget: String {
        guard let rawQuery else { return rawPath }
        return rawPath + "?" + rawQuery
    }
}
