import Foundation
@testable import Gateway
import HTTPServing
import XCTest

/// The admin web page the binary serves is `Sources/Gateway/Admin/Web/` byte for byte: SwiftPM
/// compiles those files into the Gateway module (`.embedInCode`), so there is no copy to
/// regenerate and no resource bundle to ship beside the executable.
final class WebPageFilesTests: XCTestCase {
    static let web = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/Gateway/Admin/Web")

    func testEveryFileInAdminWebIsServedByteForByteWithItsType() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.web.path).sorted()
        XCTAssertEqual(names, ["app.css", "app.js", "index.html"], "a new file in Admin/Web needs a line in Package.swift and WebPage")
        for (path, name, type) in [("/", "index.html", "text/html"), ("/index.html", "index.html", "text/html"),
                                   ("/app.js", "app.js", "text/javascript"), ("/app.css", "app.css", "text/css")] {
            let response = try XCTUnwrap(WebPage.response(for: path), path)
            guard case .bytes(let served) = response.body else { return XCTFail("\(path): not a byte body") }
            let file = try Data(contentsOf: Self.web.appendingPathComponent(name))
            XCTAssertEqual(served, Array(file), "\(path) serves Admin/Web/\(name)")
            let contentType = response.headers.first { $0.0 == "Content-Type" }?.1 ?? ""
            XCTAssertTrue(contentType.hasPrefix(type), "\(path): \(contentType)")
        }
    }

    func testAPathOutsideThePageIsNotServedAsAFile() {
        for path in ["/app.json", "/Web/app.js", "/../Package.swift", "/api/v1/sessions"] {
            XCTAssertNil(WebPage.response(for: path), path)
        }
    }
}
