import Foundation

/// Counts the requests a client sent, by method and resource (`POST serviceaccounts/token`,
/// `PATCH agentconnections/status`), for benchmarks and tests that bound API traffic.
public final class RequestStatistics: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    private var outcomes: [Outcome: Int] = [:]

    /// What became of requests: method, resource and the HTTP status code, or `<error>` when
    /// no answer came (client-go's label for it).
    public struct Outcome: Hashable, Sendable {
        public var method: String
        public var resource: String
        public var code: String
    }

    public init() {}

    func record(method: String, path: String) {
        let key = "\(method) \(Self.resource(of: path))"
        lock.withLock { counts[key, default: 0] += 1 }
    }

    /// Counts the answer to a request (`code` nil: it got none).
    func recordOutcome(method: String, path: String, code: Int?) {
        let outcome = Outcome(method: method, resource: Self.resource(of: path), code: code.map(String.init) ?? "<error>")
        lock.withLock { outcomes[outcome, default: 0] += 1 }
    }

    /// Answered (or failed) requests by method, resource and code.
    public var byOutcome: [Outcome: Int] { lock.withLock { outcomes } }

    /// Requests per `METHOD resource[/subresource]`.
    public var byResource: [String: Int] { lock.withLock { counts } }

    /// All requests sent.
    public var total: Int { lock.withLock { counts.values.reduce(0, +) } }

    /// Requests that change state (everything but GET and watches).
    public var writes: Int { lock.withLock { counts.filter { !$0.key.hasPrefix("GET ") && !$0.key.hasPrefix("WATCH ") }.values.reduce(0, +) } }

    public func count(_ method: String, _ resource: String) -> Int { lock.withLock { counts["\(method) \(resource)"] ?? 0 } }

    /// `configmaps`, `serviceaccounts/token`, `agentconnections/status` from a request path.
    static func resource(of path: String) -> String {
        var parts = path.split(separator: "?", maxSplits: 1).first.map { $0.split(separator: "/").map(String.init) } ?? []
        if parts.first == "api" { parts.removeFirst(min(2, parts.count)) } else if parts.first == "apis" { parts.removeFirst(min(3, parts.count)) }
        if parts.count >= 3, parts[0] == "namespaces" { parts.removeFirst(2) }
        guard let resource = parts.first else { return path }
        return parts.count >= 3 ? "\(resource)/\(parts[2])" : resource
    }
}
