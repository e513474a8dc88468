/// `HOST:PORT` as every listening flag takes it (`--listen`, `--metrics-address`,
/// `--health-address`): `[::1]:PORT` for IPv6, `:PORT` for all interfaces.
public enum ListenAddress {
    public static func parse(_ text: String, flag: String) throws -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ListenAddressError(description: "\(flag) \(text): expected HOST:PORT, e.g. 127.0.0.1:8080 or :8080")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }

    /// Whether `host` (as ``parse(_:flag:)`` returns it) is a loopback address, where plain
    /// HTTP may be served.
    public static func isLoopback(_ host: String) -> Bool {
        ["127.0.0.1", "localhost", "::1"].contains(host)
    }
}

public struct ListenAddressError: Error, CustomStringConvertible {
    public var description: String
}
