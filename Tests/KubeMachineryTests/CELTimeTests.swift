import KubeCore
import KubeMachinery
import XCTest

final class CELTimeTests: XCTestCase {
    func testDurationParsesGoSyntax() {
        assertCEL("duration('1h30m')", .duration(5400))
        assertCEL("duration('90s')", .duration(90))
        assertCEL("duration('1.5h')", .duration(5400))
        assertCEL("duration('500ms')", .duration(0.5))
        assertCEL("duration('250us')", .duration(0.00025))
        assertCEL("duration('250µs')", .duration(0.00025))
        assertCEL("duration('10ns')", .duration(0.00000001))
        assertCEL("duration('2h45m10.5s')", .duration(9910.5))
        assertCEL("duration('-1m')", .duration(-60))
        assertCEL("duration('+5s')", .duration(5))
        assertCEL("duration('0')", .duration(0))
        assertCEL("duration('.5s')", .duration(0.5))
    }

    func testEquivalentDurationSpellingsAreEqual() {
        assertCEL("duration('1000ms') == duration('1s')", .bool(true))
        assertCEL("duration('60m') == duration('1h')", .bool(true))
        assertCEL("duration('0.3s') == duration('300ms')", .bool(true))
    }

    func testInvalidDurationsNameTheValue() {
        for bad in ["", "1", "1x", "h", "1h-5m", "--1s", "1.s.", ".s", "1e3s", "9999999999h"] {
            assertCELError("duration('\(bad)')", contains: "invalid duration '\(bad)'")
        }
    }

    func testMalformedLiteralDurationIsACompileErrorAtTheLiteral() {
        XCTAssertThrowsError(try CELProgram(compiling: "duration(self.t) < duration('1 hour')")) { error in
            XCTAssertEqual((error as? CELError)?.position, 28)
            XCTAssertTrue("\(error)".contains("invalid duration '1 hour'"), "\(error)")
        }
        XCTAssertThrowsError(try CELProgram(compiling: "timestamp('yesterday') < timestamp(self.t)"))
    }

    func testDurationFromAFieldIsParsedAtEvaluation() {
        assertCEL("duration(self.t) == duration('2m')", .bool(true), self: ["t": "120s"])
        assertCELError("duration(self.t)", contains: "invalid duration 'x'", self: ["t": "x"])
        assertCELError("duration(self.t)", contains: "cannot convert", self: ["t": 5])
    }

    func testDurationComparisonAndArithmetic() {
        assertCEL("duration('30s') < duration('1m')", .bool(true))
        assertCEL("duration('24h') >= duration('1440m')", .bool(true))
        assertCEL("duration('1h') + duration('30m') == duration('90m')", .bool(true))
        assertCEL("duration('1h') - duration('2h')", .duration(-3600))
        assertCEL("-duration('5s')", .duration(-5))
        assertCELError("duration('1h') + 1", contains: "no such overload")
        assertCELError("duration('1h') < 3600", contains: "no such overload")
    }

    func testExtremeDurationsPrintAndCompareWithoutOverflow() {
        assertCEL("string(duration('2562047h47m16.854775807s')).startsWith('9223372036')", .bool(true))
        assertCEL("string(-duration('2562047h47m16.854775807s')).startsWith('-9223372036')", .bool(true))
        assertCEL("duration('2562047h') > duration('1h')", .bool(true))
        assertCELError("duration('2562047h') + duration('2562047h')", contains: "duration out of range")
        assertCELError("duration('2562048h')", contains: "invalid duration")
    }

    func testDurationGetters() {
        assertCEL("duration('1h30m').getHours()", .int(1))
        assertCEL("duration('1h30m').getMinutes()", .int(90))
        assertCEL("duration('1h30m').getSeconds()", .int(5400))
        assertCEL("duration('1.5s').getMilliseconds()", .int(1500))
    }

    func testTimestampParsesRFC3339() {
        assertCEL("timestamp('1970-01-01T00:00:00Z')", .timestamp(Date(timeIntervalSince1970: 0)))
        assertCEL("timestamp('2024-02-29T23:59:59.5Z')", .timestamp(Date(timeIntervalSince1970: 1_709_251_199.5)))
        assertCEL("timestamp('2024-01-01T01:00:00+01:00') == timestamp('2024-01-01T00:00:00Z')", .bool(true))
        assertCEL("timestamp('2024-01-01T00:00:00-05:30')", .timestamp(Date(timeIntervalSince1970: 1_704_087_000)))
    }

    func testInvalidTimestampsAreErrors() {
        for bad in ["2024-02-30T00:00:00Z", "2024-01-01", "2024-01-01T00:00:00", "2023-13-01T00:00:00Z", "2024-01-01T24:00:00Z", "x"] {
            assertCELError("timestamp('\(bad)')", contains: "invalid timestamp '\(bad)'")
        }
    }

    func testTimestampArithmeticAndComparison() {
        assertCEL("timestamp('2024-01-01T00:00:00Z') + duration('1h') == timestamp('2024-01-01T01:00:00Z')", .bool(true))
        assertCEL("timestamp('2024-01-02T00:00:00Z') - timestamp('2024-01-01T00:00:00Z')", .duration(86400))
        assertCEL("timestamp('2024-01-01T00:00:00Z') - duration('24h') < timestamp('2024-01-01T00:00:00Z')", .bool(true))
        assertCELError("timestamp('9999-12-31T23:00:00Z') + duration('2h')", contains: "timestamp out of range")
    }

    func testTimestampGettersInUTC() {
        let ts = "timestamp('2024-03-05T06:07:08.009Z')"
        assertCEL("\(ts).getFullYear()", .int(2024))
        assertCEL("\(ts).getMonth()", .int(2))
        assertCEL("\(ts).getDate()", .int(5))
        assertCEL("\(ts).getDayOfMonth()", .int(4))
        assertCEL("\(ts).getDayOfWeek()", .int(2))
        assertCEL("\(ts).getDayOfYear()", .int(64))
        assertCEL("\(ts).getHours()", .int(6))
        assertCEL("\(ts).getMinutes('UTC')", .int(7))
        assertCEL("\(ts).getSeconds()", .int(8))
        assertCEL("\(ts).getMilliseconds()", .int(9))
        assertCELError("\(ts).getHours('Europe/Paris')", contains: "not supported")
    }
}
