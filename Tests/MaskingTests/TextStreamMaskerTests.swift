import XCTest

@testable import Masking

final class TextStreamMaskerTests: XCTestCase {
    let masker = Masker(policy: .standard(alwaysScrub: ["gateway-credential-0123456789"]))
    let jwt = DetectorTests.sampleJWT

    func streamed(_ text: String, chunk: Int, maxHeld: Int = TextStreamMasker.defaultMaxHeldBytes) -> String {
        var stream = masker.textStream(maxHeldBytes: maxHeld)
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            out += stream.feed(Array(bytes[i..<min(i + chunk, bytes.count)]))
            i += chunk
        }
        out += stream.flush()
        return String(decoding: out, as: UTF8.self)
    }

    func testSecretSplitAcrossChunksIsStillMasked() {
        let log = "line one\nAuthorization: Bearer \(jwt)\nusing gateway-credential-0123456789 now\nlast\n"
        for chunk in [1, 2, 3, 7, 16, 50] {
            let out = streamed(log, chunk: chunk)
            XCTAssertEqual(out, "line one\nAuthorization: Bearer ***MASKED***\nusing ***MASKED*** now\nlast\n", "chunk \(chunk)")
        }
    }

    func testCompleteLinesAreReleasedAndTheUnfinishedLineHeld() {
        var stream = masker.textStream()
        XCTAssertEqual(stream.feed(Array("done\npart".utf8)), Array("done\n".utf8))
        XCTAssertEqual(stream.feed(Array("ial \(jwt.prefix(20))".utf8)), [])
        XCTAssertEqual(String(decoding: stream.feed(Array("\(jwt.dropFirst(20))\n".utf8)), as: UTF8.self), "partial ***MASKED***\n")
        XCTAssertEqual(stream.flush(), [])
    }

    func testPrivateKeyBlockSpanningChunksIsMaskedUntilItsEndLine() {
        let key = "-----BEGIN PRIVATE KEY-----\n" + String(repeating: "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC\n", count: 40) + "-----END PRIVATE KEY-----\nafter\n"
        let out = streamed("before\n" + key, chunk: 64, maxHeld: 256)
        XCTAssertFalse(out.contains("MIIEvQ"), out)
        XCTAssertTrue(out.hasPrefix("before\n-----BEGIN PRIVATE KEY-----\n"))
        XCTAssertTrue(out.hasSuffix("-----END PRIVATE KEY-----\nafter\n"), out)
    }

    func testVeryLongLineIsCutAtASpaceWithoutSplittingATokenNearTheCut() {
        let filler = String(repeating: "word ", count: 200)   // 1000 bytes, no newline
        let out = streamed(filler + jwt + " " + filler, chunk: 100, maxHeld: 512)
        XCTAssertFalse(out.contains(jwt))
        XCTAssertEqual(out.count, (filler + "***MASKED*** " + filler).count)
    }
}
