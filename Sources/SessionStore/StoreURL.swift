import Foundation

/// Parses the gateway's `--store` value.
///
/// - `sqlite:PATH` (also `sqlite://PATH`, `sqlite:///abs/path`); query options:
///   `synchronous=normal|full` (default normal: durable across process crashes, see
///   `SQLiteDriver`); `journal=on|off` (default on: exchanges are recorded to a journal file
///   next to the database and ingested in batches, see `RecordingJournal`; off commits each
///   record to SQLite as it comes).
/// - `postgres://[user[:password]@]host[:port]/database[?options]` (also `postgresql://`);
///   user defaults to `postgres`, port to 5432; user and password are percent-decoded.
///   Options: `sslmode=disable|prefer|require|verify-full` (default prefer),
///   `schema=NAME` (tables live in that schema, created if missing; lets several
///   deployments or tests share a database), `application_name=NAME`.
///
/// Errors name the URL part at fault and never echo a password.
public enum StoreURL: Hashable, Sendable {
    case sqlite(path: String, synchronousFull: Bool, journal: Bool = true)
    case postgres(PostgresLocation)

    public struct PostgresLocation: Hashable, Sendable {
        public var host: String
        public var port: Int
        public var user: String
        public var password: String?
        public var database: String
        public var sslMode: SSLMode
        public var schema: String?
        public var applicationName: String?
    }

    public enum SSLMode: String, Hashable, Sendable, CaseIterable {
        case disable, prefer, require
        case verifyFull = "verify-full"
    }

    public static func parse(_ raw: String) throws -> StoreURL {
        let shown = redacted(raw)
        func fail(_ part: String, _ reason: String) -> SessionStoreError {
            .invalidURL(url: shown, part: part, reason: reason)
        }
        guard let colon = raw.firstIndex(of: ":") else {
            throw fail("scheme", "missing; use sqlite:PATH or postgres://user@host:port/database")
        }
        let scheme = raw[..<colon].lowercased()
        var rest = String(raw[raw.index(after: colon)...])
        var queryItems: [(String, String)] = []
        if let q = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: q)...].split(separator: "&") where !pair.isEmpty {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let value = kv.count > 1 ? String(kv[1]).removingPercentEncoding ?? String(kv[1]) : ""
                queryItems.append((String(kv[0]), value))
            }
            rest = String(rest[..<q])
        }
        switch scheme {
        case "sqlite":
            var path = rest
            if path.hasPrefix("//") { path.removeFirst(2) }
            guard !path.isEmpty else { throw fail("path", "empty; use sqlite:/var/lib/agentgate/sessions.db") }
            var full = false
            var journal = true
            for (key, value) in queryItems {
                switch (key, value.lowercased()) {
                case ("synchronous", "normal"): full = false
                case ("synchronous", "full"): full = true
                case ("synchronous", _): throw fail("synchronous", "\"\(value)\" is not normal or full")
                case ("journal", "on"): journal = true
                case ("journal", "off"): journal = false
                case ("journal", _): throw fail("journal", "\"\(value)\" is not on or off")
                default: throw fail("query parameter \"\(key)\"", "unknown; supported: synchronous, journal")
                }
            }
            return .sqlite(path: path, synchronousFull: full, journal: journal)
        case "postgres", "postgresql":
            guard rest.hasPrefix("//") else { throw fail("authority", "missing \"//\" after \"\(scheme):\"") }
            rest.removeFirst(2)
            guard let slash = rest.firstIndex(of: "/") else { throw fail("database", "missing; add /DATABASE after the host") }
            let database = String(rest[rest.index(after: slash)...])
            guard !database.isEmpty, !database.contains("/") else {
                throw fail("database", database.isEmpty ? "missing; add /DATABASE after the host" : "\"\(database)\" must not contain \"/\"")
            }
            var authority = String(rest[..<slash])
            var user = "postgres"
            var password: String?
            if let at = authority.lastIndex(of: "@") {
                let userinfo = authority[..<at]
                authority = String(authority[authority.index(after: at)...])
                let parts = userinfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                guard let u = String(parts[0]).removingPercentEncoding, !u.isEmpty else {
                    throw fail("user", "empty or badly percent-encoded")
                }
                user = u
                if parts.count > 1 {
                    guard let p = String(parts[1]).removingPercentEncoding else { throw fail("password", "badly percent-encoded") }
                    password = p
                }
            }
            var host = authority
            var port = 5432
            if authority.hasPrefix("[") {
                guard let close = authority.firstIndex(of: "]") else { throw fail("host", "unterminated IPv6 literal") }
                host = String(authority[authority.index(after: authority.startIndex)..<close])
                let after = authority[authority.index(after: close)...]
                if !after.isEmpty {
                    guard after.first == ":" else { throw fail("port", "expected \":PORT\" after \"]\"") }
                    port = try parsePort(String(after.dropFirst()), fail)
                }
            } else if let c = authority.lastIndex(of: ":") {
                host = String(authority[..<c])
                port = try parsePort(String(authority[authority.index(after: c)...]), fail)
            }
            guard !host.isEmpty else { throw fail("host", "missing; use postgres://user@HOST:5432/database") }
            var location = PostgresLocation(
                host: host, port: port, user: user, password: password, database: database,
                sslMode: .prefer, schema: nil, applicationName: nil)
            for (key, value) in queryItems {
                switch key {
                case "sslmode":
                    guard let mode = SSLMode(rawValue: value) else {
                        throw fail("sslmode", "\"\(value)\" is not one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    location.sslMode = mode
                case "schema":
                    guard isIdentifier(value) else {
                        throw fail("schema", "\"\(value)\" must be letters, digits and underscores, not starting with a digit")
                    }
                    location.schema = value
                case "application_name":
                    location.applicationName = value
                default:
                    throw fail("query parameter \"\(key)\"", "unknown; supported: sslmode, schema, application_name")
                }
            }
            return .postgres(location)
        default:
            throw fail("scheme", "\"\(scheme)\" is not supported; use sqlite:PATH or postgres://user@host:port/database")
        }
    }

    private static func parsePort(_ text: String, _ fail: (String, String) -> SessionStoreError) throws -> Int {
        guard let port = Int(text), (1...65535).contains(port) else {
            throw fail("port", "\"\(text)\" is not a number from 1 to 65535")
        }
        return port
    }

    static func isIdentifier(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, s.count <= 63 else { return false }
        let letters = CharacterSet.letters.union(CharacterSet(charactersIn: "_"))
        guard letters.contains(first), first.isASCII else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCII && (letters.contains($0) || CharacterSet.decimalDigits.contains($0)) }
    }

    /// The URL with any password replaced by `***`, safe for errors and logs.
    public static func redacted(_ raw: String) -> String {
        guard let schemeEnd = raw.range(of: "://") else { return raw }
        let afterScheme = raw[schemeEnd.upperBound...]
        let authorityEnd = afterScheme.firstIndex(of: "/") ?? afterScheme.endIndex
        guard let at = afterScheme[..<authorityEnd].lastIndex(of: "@"),
              let colon = afterScheme[..<at].firstIndex(of: ":") else { return raw }
        return String(raw[..<afterScheme.index(after: colon)]) + "***" + String(raw[at...])
    }
}
