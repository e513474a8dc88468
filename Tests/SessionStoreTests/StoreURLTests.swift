import SessionStore
import XCTest

/// `--store` URLs: what parses, and errors that name the part to fix (never the password).
final class StoreURLTests: XCTestCase {
    func testSQLiteAndPostgresURLsParse() throws {
        XCTAssertEqual(try StoreURL.parse("sqlite:/var/lib/agentgate/s.db"), .sqlite(path: "/var/lib/agentgate/s.db", synchronousFull: false))
        XCTAssertEqual(try StoreURL.parse("sqlite:///abs/s.db?synchronous=full"), .sqlite(path: "/abs/s.db", synchronousFull: true))
        XCTAssertEqual(try StoreURL.parse("sqlite:rel/s.db"), .sqlite(path: "rel/s.db", synchronousFull: false))
        XCTAssertEqual(try StoreURL.parse("sqlite:/s.db?journal=off"), .sqlite(path: "/s.db", synchronousFull: false, journal: false))
        XCTAssertEqual(try StoreURL.parse("sqlite:/s.db?journal=on&synchronous=full"), .sqlite(path: "/s.db", synchronousFull: true, journal: true))
        guard case let .postgres(pg) = try StoreURL.parse("postgres://ag%40ent:p%3Ass@db.example:6543/agentgate?sslmode=require&schema=gw_1") else {
            return XCTFail("expected postgres")
        }
        XCTAssertEqual(pg.user, "ag@ent")
        XCTAssertEqual(pg.password, "p:ss")
        XCTAssertEqual(pg.host, "db.example")
        XCTAssertEqual(pg.port, 6543)
        XCTAssertEqual(pg.database, "agentgate")
        XCTAssertEqual(pg.sslMode, .require)
        XCTAssertEqual(pg.schema, "gw_1")
        guard case let .postgres(v6) = try StoreURL.parse("postgresql://[::1]/db") else { return XCTFail("expected postgres") }
        XCTAssertEqual(v6.host, "::1")
        XCTAssertEqual(v6.port, 5432)
        XCTAssertEqual(v6.user, "postgres")
        XCTAssertEqual(v6.sslMode, .prefer)
    }

    func testMalformedStoreURLsGiveErrorsNamingThePart() async {
        let cases: [(String, String)] = [
            ("just-a-path.db", "scheme"),
            ("mysql://u@h/db", "scheme"),
            ("sqlite:", "path"),
            ("sqlite:/x.db?cache=shared", "query parameter \"cache\""),
            ("sqlite:/x.db?journal=maybe", "journal"),
            ("sqlite:/x.db?synchronous=off", "synchronous"),
            ("postgres:host/db", "authority"),
            ("postgres://u@host:5432", "database"),
            ("postgres://u@host:5432/", "database"),
            ("postgres://u:secret@:5432/db", "host"),
            ("postgres://u@host:54x2/db", "port"),
            ("postgres://u@host:70000/db", "port"),
            ("postgres://u@[::1/db", "host"),
            ("postgres://@host/db", "user"),
            ("postgres://u@host/db?sslmode=maybe", "sslmode"),
            ("postgres://u@host/db?schema=bad-name", "schema"),
            ("postgres://u@host/db?schema=x%22;DROP", "schema"),
            ("postgres://u@host/db?pool=3", "query parameter \"pool\""),
        ]
        for (url, part) in cases {
            do {
                _ = try await SessionStores.open(url: url)
                XCTFail("\(url) should be rejected")
            } catch let error as SessionStoreError {
                guard case let .invalidURL(_, gotPart, reason) = error else {
                    XCTFail("\(url): expected invalidURL, got \(error)")
                    continue
                }
                XCTAssertEqual(gotPart, part, url)
                XCTAssertFalse(reason.isEmpty)
                XCTAssertFalse(error.description.contains("secret"), "password leaked: \(error)")
                XCTAssertTrue(error.description.hasPrefix("invalid session store URL"), error.description)
            } catch {
                XCTFail("\(url): unexpected \(error)")
            }
        }
    }

    func testRedactedHidesPassword() {
        XCTAssertEqual(StoreURL.redacted("postgres://u:secret@h:1/db"), "postgres://u:***@h:1/db")
        XCTAssertEqual(StoreURL.redacted("postgres://u@h/db"), "postgres://u@h/db")
    }
}
