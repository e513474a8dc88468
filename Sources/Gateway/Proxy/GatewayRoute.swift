import Foundation
import KubeCore

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
        let rawPath: Substring
        let rawQuery: String?
        if let mark = uri.firstIndex(of: "?") {
            rawPath = uri[..<mark]
            rawQuery = String(uri[uri.index(after: mark)...])
        } else {
            rawPath = uri[...]
            rawQuery = nil
        }
        if rawPath.contains("#") { return .failure(.invalidPath("a request path may not contain '#'")) }
        let decoded: String
        do {
            decoded = try RequestInfoResolver.cleanPath(String(rawPath))
        } catch {
            return .failure(.invalidPath("\(error)"))
        }
        // cleanPath keeps one segment per raw segment (no encoded '/', no empty segment), so the
        // raw and decoded segment lists line up index by index.
        let rawSegments = rawPath.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        let decodedSegments = decoded.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard rawSegments.count == decodedSegments.count else {
            return .failure(.invalidPath("request path \(rawPath) cannot be read unambiguously"))
        }
        let raw = Array(rawSegments)
        let dec = Array(decodedSegments)
        guard raw.count >= 3, dec[0] == "c", !dec[1].isEmpty, !dec[2].isEmpty else {
            return .failure(.notAConnectionPath)
        }
        let rest = raw.count > 3 ? "/" + raw[3...].joined(separator: "/") : "/"
        let restDecoded = dec.count > 3 ? "/" + dec[3...].joined(separator: "/") : "/"
        return .success(GatewayRoute(namespace: String(dec[1]), name: String(dec[2]), rawPath: rest,
                                     decodedPath: restDecoded, rawQuery: rawQuery))
    }

    /// The request target forwarded upstream: the raw path and query, unchanged.
    public var upstreamTarget: String {
        guard let rawQuery else { return rawPath }
        return rawPath + "?" + rawQuery
    }
}
