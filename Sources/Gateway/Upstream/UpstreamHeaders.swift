import Foundation
import NIOHTTP1

/// What the gateway sends upstream in place of the agent's headers, and what it passes back.
///
/// Contract (DESIGN.md, Gateway):
/// - Removed, whatever their case or count: `Authorization` (all of them),
///   `Proxy-Authorization`, every `Impersonate-*`, every `X-Remote-*` (front-proxy identity
///   headers), hop-by-hop headers (`Connection` and what it names, `Keep-Alive`, `TE`,
///   `Trailer`, `Transfer-Encoding`, `Upgrade`, `Proxy-Connection`), `Host`, `Content-Length`
///   (recomputed), `Accept-Encoding` (the gateway asks for gzip itself and decodes it, so
///   masking always sees the body), `Cookie`, and `X-Forwarded-*`.
/// - Added: `Authorization: Bearer <connection token>`, `Accept-Encoding: gzip`.
/// - `Accept` is steered away from protobuf and CBOR: those media ranges are dropped (the
///   `application/json;as=Table` variants stay); nothing left means `application/json`.
/// - `User-Agent` gets ` agentgate-session/<id>` appended, so the API server's audit log can
///   be joined to a recorded session.
public enum UpstreamHeaders {
    static let droppedExact: Set<String> = [
        "authorization", "proxy-authorization", "connection", "keep-alive", "te", "trailer",
        "transfer-encoding", "upgrade", "proxy-connection", "host", "content-length", "accept-encoding",
        "cookie",
    ]
    static let droppedPrefixes = ["impersonate-", "x-remote-", "x-forwarded-"]

    public static func request(from incoming: HTTPHeaders, token: String, sessionID: String?) -> HTTPHeaders {
        var connectionListed = Set<String>()
        for value in incoming["connection"] {
            for item in value.split(separator: ",") {
                connectionListed.insert(item.trimmingCharacters(in: .whitespaces).lowercased())
            }
        }
        var out = HTTPHeaders()
        var userAgent: String?
        var accept: [String] = []
        for (name, value) in incoming {
            let lower = name.lowercased()
            if droppedExact.contains(lower) || connectionListed.contains(lower) { continue }
            if droppedPrefixes.contains(where: { lower.hasPrefix($0) }) { continue }
            switch lower {
            case "user-agent": userAgent = value
            case "accept": accept.append(value)
            default: out.add(name: name, value: value)
            }
        }
        out.add(name: "Accept", value: jsonAccept(accept.joined(separator: ",")))
        let tag = sessionID.map { "agentgate-session/\($0)" } ?? "agentgate"
        out.add(name: "User-Agent", value: userAgent.map { "\($0) \(tag)" } ?? tag)
        out.add(name: "Accept-Encoding", value: "gzip")
        out.add(name: "Authorization", value: "Bearer \(token)")
        return out
    }

    /// Drops protobuf and CBOR media ranges from an `Accept` value: the masking reads JSON.
    public static func jsonAccept(_ accept: String) -> String {
        let kept = accept.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { range in
            let type = RequestMediaType(range)
            return !type.essence.isEmpty && !type.isProtobuf && !type.isCBOR && type.essence != "application/cbor-seq"
        }
        return kept.isEmpty ? "application/json" : kept.joined(separator: ",")
    }

    static let passedBack: Set<String> = [
        "content-type", "audit-id", "cache-control", "warning", "x-kubernetes-pf-flowschema-uid",
        "x-kubernetes-pf-prioritylevel-uid", "retry-after", "location", "date",
    ]

    /// Headers of the upstream answer that reach the agent (bodies are re-framed and decoded,
    /// so length and encoding headers are the gateway's own).
    public static func response(from upstream: HTTPHeaders) -> [(String, String)] {
        upstream.filter { passedBack.contains($0.name.lowercased()) }.map { ($0.name, $0.value) }
    }
}
