@testable import Gateway
import XCTest

/// How the agent's token is read from its Authorization header: the scheme in any case, one
/// space, then the token; anything unusual (extra spaces, other schemes, an empty token) goes
/// through the general reading, with the same results as before the byte-wise fast path.
final class BearerHeaderTests: XCTestCase {
    func testTheTokenIsReadFromEveryFormOfBearerHeaderAndNothingFromOthers() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJl-_"
        let cases: [(String, String?)] = [
            ("Bearer \(jwt)", jwt),
            ("bearer \(jwt)", jwt),
            ("BEARER \(jwt)", jwt),
            ("Bearer   \(jwt)  ", jwt),
            ("  Bearer \(jwt)", jwt),
            ("Bearer \t\(jwt)", jwt),
            ("Bearer a b", "a b"),
            ("Bearer ", nil),
            ("Bearer", nil),
            ("Basic \(jwt)", nil),
            ("Bearerx \(jwt)", nil),
            ("Bearer\t\(jwt)", nil),
            ("Bëarer \(jwt)", nil),
            ("Bearer tökén", "tökén"),
            ("", nil),
        ]
        for (header, expected) in cases {
            XCTAssertEqual(Gateway.bearer(header), expected, "header \(header.debugDescription)")
        }
    }
}
