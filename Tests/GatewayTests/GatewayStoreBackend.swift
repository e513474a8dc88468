import Foundation
import XCTest

/// The session-store backend a gateway test runs on. Every gateway test class has a SQLite
/// variant and a PostgreSQL one (`...OnPostgres`), so the whole suite runs on both.
///
/// PostgreSQL comes from `$AGENTGATE_TEST_POSTGRES_URL` (set by `scripts/test.sh`, which
/// starts a throwaway server with scripts/postgres-test-server.sh); each harness gets a schema
/// of its own. Without the variable the PostgreSQL variants are skipped, unless
/// `AGENTGATE_REQUIRE_POSTGRES=1` (CI), where they fail and say how to get a server.
enum GatewayStoreBackend: String, Sendable {
    case sqlite, postgres

    static let postgresURLVariable = "AGENTGATE_TEST_POSTGRES_URL"

    /// A `--store` URL naming an empty database: a new SQLite file in `directory`, or a new
    /// PostgreSQL schema.
    func freshURL(in directory: URL) throws -> String {
        switch self {
        case .sqlite:
            return "sqlite:" + directory.appendingPathComponent("sessions.db").path
        case .postgres:
            let environment = ProcessInfo.processInfo.environment
            guard let base = environment[Self.postgresURLVariable], !base.isEmpty else {
                let why = "\(Self.postgresURLVariable) is not set, so the gateway was not tested on PostgreSQL. "
                    + "Run `bash scripts/test.sh`, or export \(Self.postgresURLVariable)=\"$(bash scripts/postgres-test-server.sh start)\"."
                if environment["AGENTGATE_REQUIRE_POSTGRES"] == "1" {
                    throw MissingPostgres(description: why + " (AGENTGATE_REQUIRE_POSTGRES=1)")
                }
                throw XCTSkip(why)
            }
            let schema = "gw_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            return base + (base.contains("?") ? "&" : "?") + "schema=" + schema
        }
    }

    struct MissingPostgres: Error, CustomStringConvertible {
        var description: String
    }
}
