import PostgresNIO
@testable import SessionStore
import XCTest

/// The PostgreSQL driver's statement text: `?` placeholders numbered `$1, $2, ...` in order,
/// every other byte (multi-byte UTF-8 included) kept as it was, and each value bound.
final class PostgresQueryTextTests: XCTestCase {
    func testPlaceholdersAreNumberedInOrderAndOtherTextIsKeptByteForByte() {
        let binds = (1...11).map { SQLValue.int(Int64($0)) }
        let sql = "INSERT INTO t /* café ✓ */ VALUES (" + Array(repeating: "?", count: 11).joined(separator: ", ") + ") -- ünï"
        let query = PostgresDriver.query(sql, binds)
        XCTAssertEqual(query.sql, "INSERT INTO t /* café ✓ */ VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) -- ünï")
        XCTAssertEqual(query.binds.count, 11)
    }
}
