import Foundation
import HTTPServing

/// The admin web page: the three static files of `Admin/Web/`, embedded in the binary by
/// SwiftPM (`.embedInCode` in Package.swift, no resource bundle to ship) and served
/// without a token — the page itself asks for one and sends it with every API call. Strict
/// headers: scripts only from this origin, no framing, no referrer, no MIME sniffing.
enum WebPage {
    static let contentTypes = ["index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
                               "app.css": "text/css; charset=utf-8"]
    /// The files' bytes, as SwiftPM embedded them (`PackageResources`, generated from Package.swift).
    static let files: [String: [UInt8]] = ["index.html": PackageResources.index_html, "app.js": PackageResources.app_js,
                                           "app.css": PackageResources.app_css]

    /// The file for `path`, or nil when `path` is not one of the page's. `loginIssuer`: the
    /// OIDC issuer the page logs in with; its origin is added to `connect-src`, for discovery
    /// and the code exchange (the token endpoint must be on the issuer's origin).
    static func response(for path: String, loginIssuer: String? = nil) -> HTTPResponse? {
        let name = path == "/" || path == "/index.html" ? "index.html" : String(path.dropFirst())
        guard let type = contentTypes[name], let file = files[name] else { return nil }
        return HTTPResponse(status: 200, headers: [
            ("Content-Type", type),
            ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'\(origin(of: loginIssuer).map { " " + $0 } ?? ""); img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
            ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"), ("X-Frame-Options", "DENY"),
            ("Cache-Control", "no-cache"),
        ], body: .bytes(file))
    }

    /// `scheme://host[:port]` of `url`, or nil.
    static func origin(of url: String?) -> String? {
        guard let url, let c = URLComponents(string: url), let scheme = c.scheme, let host = c.host, !host.isEmpty else { return nil }
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "\(scheme)://\(shownHost)" + (c.port.map { ":\($0)" } ?? "")
    }
}
