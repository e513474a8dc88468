import HTTPServing

/// The admin web page: three static files (``WebAssets``, embedded from `Admin/Web/`) served
/// without a token — the page itself asks for one and sends it with every API call. Strict
/// headers: scripts only from this origin, no framing, no referrer, no MIME sniffing.
enum WebPage {
    static let contentTypes = ["index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
                               "app.css": "text/css; charset=utf-8"]

    /// The file for `path`, or nil when `path` is not one of the page's.
    static func response(for path: String) -> HTTPResponse? {
        let name = path == "/" || path == "/index.html" ? "index.html" : String(path.dropFirst())
        guard let type = contentTypes[name], let file = WebAssets.all.first(where: { $0.name == name }) else { return nil }
        return HTTPResponse(status: 200, headers: [
            ("Content-Type", type),
            ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
            ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"), ("X-Frame-Options", "DENY"),
            ("Cache-Control", "no-cache"),
        ], body: .bytes(Array(file.text.utf8)))
    }
}
