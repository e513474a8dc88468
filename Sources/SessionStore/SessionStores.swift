import Foundation
import Logging

/// Opens the store the gateway's `--store` flag names (see `StoreURL` for the syntax):
///
///     let store = try await SessionStores.open(url: "sqlite:/var/lib/agentgate/sessions.db", logger: logger)
///     try await store.recoverInterrupted()          // at startup, before serving
///     async let _ = store.runHeartbeats()           // for the process lifetime
///
/// The schema is migrated unless `migrate` is false.
public enum SessionStores {
    public static func open(
        url: String,
        options: SessionStoreOptions = SessionStoreOptions(),
        logger: Logger = Logger(label: "agentgate.sessionstore"),
        migrate: Bool = true
    ) async throws -> any SessionStore {
        let store: SQLSessionStore
        switch try StoreURL.parse(url) {
        case let .sqlite(path, synchronousFull):
            let driver = try await SQLiteDriver.open(path: path, synchronousFull: synchronousFull, logger: logger)
            store = SQLSessionStore(driver: driver, options: options, schema: nil, logger: logger)
        case let .postgres(location):
            let driver = PostgresDriver(location: location, logger: logger)
            store = SQLSessionStore(driver: driver, options: options, schema: location.schema, logger: logger)
        }
        if migrate {
            do {
                try await store.migrate()
            } catch {
                try? await store.close()
                throw error
            }
        }
        return store
    }
}
