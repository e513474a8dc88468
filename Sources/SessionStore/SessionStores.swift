import Foundation
import Logging

/// Opens the store the gateway's `--store` flag names (see `StoreURL` for the syntax):
///
///     let store = try await SessionStores.open(url: "sqlite:/var/lib/agentgate/sessions.db", logger: logger)
///     try await store.recoverInterrupted()          // at startup, before serving
///     async let _ = store.runHeartbeats()           // for the process lifetime
///
/// The schema is migrated unless `migrate` is false; a SQLite store then also ingests the
/// recording journals of gateways that stopped (see `RecordingJournal`).
public enum SessionStores {
    public static func open(
        url: String,
        options: SessionStoreOptions = SessionStoreOptions(),
        logger: Logger = Logger(label: "agentgate.sessionstore"),
        migrate: Bool = true
    ) async throws -> any SessionStore {
        let store: SQLSessionStore
        var journal: JournalDirectory?
        switch try StoreURL.parse(url) {
        case let .sqlite(path, synchronousFull, journaled):
            let driver = try await SQLiteDriver.open(path: path, synchronousFull: synchronousFull, load: options.requestLoad,
                                                  logger: logger)
            store = SQLSessionStore(driver: driver, options: options, schema: nil, logger: logger)
            let directory = JournalDirectory(databasePath: path)
            journal = directory
            if journaled {
                store.useJournal(directory, synchronousFull: synchronousFull, ingestDelay: options.journalIngestDelay,
                                 backlogBytes: options.journalBacklogBytes)
            }
        case let .postgres(location):
            let driver = PostgresDriver(location: location, logger: logger)
            store = SQLSessionStore(driver: driver, options: options, schema: location.schema, logger: logger)
        }
        if migrate {
            do {
                try await store.migrate()
                // What a stopped gateway journaled is in the database before anyone reads it
                // or recovers its exchanges (also when this store does not journal).
                if let journal { try await store.ingestGoneJournals(journal) }
            } catch {
                try? await store.close()
                throw error
            }
        }
        return store
    }
}
