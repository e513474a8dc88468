import Foundation
import Logging
@testable import SessionStore
import XCTest

/// A PostgreSQL that never answers (a lost connection, a statement whose answer never comes)
/// fails the store's writes within `PostgresDriver.writeTimeout` with an error that says so,
/// instead of holding the request that waits on them forever.
final class PostgresUnansweredTests: XCTestCase {
    func testAWriteToAServerThatNeverAnswersFailsWithinTheWriteTimeout() async throws {
        let silent = try SilentListener()
        defer { silent.close() }
        let location = try XCTUnwrap({ () -> StoreURL.PostgresLocation? in
            if case .postgres(let location) = try StoreURL.parse("postgres://agentgate@127.0.0.1:\(silent.port)/agentgate") { return location }
            return nil
        }())
        let driver = PostgresDriver(location: location, logger: Logger(label: "test"))
        let started = Date()
        do {
            _ = try await driver.writeStatement("UPDATE sessions SET bytes = bytes + ? WHERE id = ?", [.int(1), .text("s")])
            XCTFail("a server that never answers cannot have answered")
        } catch let error as SessionStoreError {
            XCTAssertTrue("\(error)".contains("no answer within 8 s"), "\(error)")
        }
        let waited = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(waited, 7.5)
        XCTAssertLessThan(waited, 20, "bounded by the write timeout (8 s), not by the caller's patience")
        try await driver.close()
    }

    func testAWriteAnsweredInTimeIsNotCutByTheBound() async throws {
        let value = try await PostgresDriver.answered(within: .seconds(8), operation: "quick") { 42 }
        XCTAssertEqual(value, 42)
        do {
            _ = try await PostgresDriver.answered(within: .milliseconds(200), operation: "lost") { () async throws -> Int in
                try await Task.sleep(for: .seconds(30))
                return 0
            }
            XCTFail("the bound must end the wait")
        } catch {
            XCTAssertTrue("\(error)".contains("PostgreSQL lost"), "\(error)")
        }
    }
}

/// A TCP port that completes connections (the kernel's backlog) and never reads or writes.
private final class SilentListener: @unchecked Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { _ = Glibc.close(fd) }
}
