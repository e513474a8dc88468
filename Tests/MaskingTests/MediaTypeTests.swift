import Masking
import XCTest

final class MediaTypeTests: XCTestCase {
    func testMentionsIgnoresASCIICaseAndFindsTheWordAnywhere() {
        XCTAssertTrue(MediaType.mentions("application/json", "json"))
        XCTAssertTrue(MediaType.mentions("Application/JSON; charset=utf-8", "json"))
        XCTAssertTrue(MediaType.mentions("application/json-patch+json", "json-patch"))
        XCTAssertTrue(MediaType.mentions("application/apply-patch+YAML", "yaml"))
        XCTAssertTrue(MediaType.mentions("json", "json"))
    }

    func testMentionsIsFalseForOtherTypesShortOnesAndNone() {
        XCTAssertFalse(MediaType.mentions("text/plain", "json"))
        XCTAssertFalse(MediaType.mentions("application/jso", "json"))
        XCTAssertFalse(MediaType.mentions("application/merge-patch+json", "json-patch"))
        XCTAssertFalse(MediaType.mentions("", "json"))
        XCTAssertFalse(MediaType.mentions(nil, "json"))
        // Only ASCII letters fold: a non-ASCII byte never matches.
        XCTAssertFalse(MediaType.mentions("application/jśon", "json"))
    }

    func testYAMLAnswerIsMaskedAsYAMLWhateverTheCaseOfItsType() {
        let masker = Masker(policy: .standard(hashKey: Array("k".utf8), alwaysScrub: []))
        // A Secret value under a key no text pattern knows: only the structural (YAML) rule masks it.
        let secret = Array("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  config: aHVudGVyMg==\n".utf8)
        let masked = String(decoding: masker.maskBody(secret, contentType: "Application/YAML"), as: UTF8.self)
        XCTAssertFalse(masked.contains("aHVudGVyMg=="), masked)
    }
}
