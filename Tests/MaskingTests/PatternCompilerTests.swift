import XCTest

@testable import Masking

final class PatternCompilerTests: XCTestCase {
    func reject(_ pattern: String, file: StaticString = #filePath, line: UInt = #line) -> PatternError? {
        do {
            _ = try PatternCompiler.compile(name: "p", pattern: pattern)
            XCTFail("\(pattern) was accepted", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    func testPatternThatDoesNotCompileIsRejectedWithTheReason() {
        let error = reject("(abc")
        XCTAssertEqual(error?.kind, .invalidSyntax)
        XCTAssertTrue(error?.reason.contains("missing closing ')'") == true, error?.reason ?? "")
        XCTAssertEqual(reject("[a-")?.kind, .invalidSyntax)
        XCTAssertEqual(reject("*abc")?.kind, .invalidSyntax)
        XCTAssertTrue(reject("a{3,1}")?.reason.contains("max below min") == true)
        XCTAssertTrue(reject("(abc")?.description.contains("pattern \"p\" ((abc)") == true)
    }

    func testNestedQuantifiersOverTheSameClassAreRejectedAsCatastrophic() {
        for pattern in ["(a+)+", #"(\w*)*"#, "(.*a){10}", #"(\w+\s?)+"#, "((ab)*)+", "(a|ab)+", #"^(\d+)*$"#] {
            let error = reject(pattern)
            XCTAssertEqual(error?.kind, .catastrophic, pattern)
            XCTAssertTrue(error?.reason.contains("backtrack") == true, pattern)
        }
    }

    func testSeparatedRepetitionsAreAccepted() throws {
        for pattern in [#"(\d+\.)+\d+"#, "([a-z]+-)*[a-z]+", #"(\d{1,3}\.){3}\d{1,3}"#, "(ab|cd)+", #"token_[A-Za-z0-9]{32}"#, "(?i)secret=([^ ]+)"] {
            XCTAssertNoThrow(try PatternCompiler.compile(name: "ok", pattern: pattern), pattern)
        }
    }

    func testPatternMatchingTheEmptyStringIsRejected() {
        XCTAssertEqual(reject("a*")?.kind, .matchesEmpty)
    }

    func testRequiredLiteralBecomesTheKeyword() throws {
        XCTAssertEqual(try PatternCompiler.compile(name: "k", pattern: #"acme_key=([A-Z]+)"#).keyword, Array("acme_key=".utf8))
        XCTAssertEqual(try PatternCompiler.compile(name: "k", pattern: #"\d{3}-\d{2}"#).keyword, [])
        XCTAssertEqual(try PatternCompiler.compile(name: "k", pattern: "foo|barbaz").keyword, [])
    }

    func testPolicyCountsCompiledPatterns() throws {
        var policy = MaskingPolicy.standard()
        policy.customPatterns = [try PatternCompiler.compile(name: "a", pattern: "abc[0-9]+")]
        XCTAssertEqual(policy.compiledPatternCount, Detector.allCases.count + 1)
    }
}
