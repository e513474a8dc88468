import Foundation

/// Schema versions, applied in order inside one write transaction and recorded in
/// `agentgate_schema_version`. Append new versions; never edit a shipped one.
///
/// Both backends share the table layout: times are BIGINT microseconds since the Unix
/// epoch (identical precision on both), bodies and chunks are BLOB/BYTEA, groups are a
/// JSON array in TEXT, booleans are 0/1. Indexes follow `SessionFilter` and the hot paths
/// (resolve by key, sequence per session, recovery by state/owner, prune by activity), and
/// are kept few on `exchanges`, which every request writes twice.
enum Migrations {
    static func all(_ dialect: SQLDialect) -> [(version: Int64, statements: [String])] {
        let blob = dialect == .sqlite ? "BLOB" : "BYTEA"
        let real = dialect == .sqlite ? "REAL" : "DOUBLE PRECISION"
        return [
            (1, [
                """
                CREATE TABLE IF NOT EXISTS sessions (
                    id TEXT PRIMARY KEY,
                    connection_namespace TEXT NOT NULL,
                    connection_name TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    groups_json TEXT NOT NULL,
                    model TEXT,
                    token_key TEXT,
                    started_at_us BIGINT NOT NULL,
                    last_activity_us BIGINT NOT NULL,
                    exchange_count BIGINT NOT NULL DEFAULT 0,
                    bytes BIGINT NOT NULL DEFAULT 0
                )
                """,
                """
                CREATE UNIQUE INDEX IF NOT EXISTS sessions_by_token_key
                    ON sessions (connection_namespace, connection_name, subject, token_key)
                    WHERE token_key IS NOT NULL
                """,
                """
                CREATE INDEX IF NOT EXISTS sessions_by_subject
                    ON sessions (connection_namespace, connection_name, subject, last_activity_us)
                """,
                "CREATE INDEX IF NOT EXISTS sessions_by_activity ON sessions (last_activity_us)",
                "CREATE INDEX IF NOT EXISTS sessions_by_subject_only ON sessions (subject, last_activity_us)",
                "CREATE INDEX IF NOT EXISTS sessions_by_model ON sessions (model, last_activity_us)",
                """
                CREATE TABLE IF NOT EXISTS exchanges (
                    id TEXT PRIMARY KEY,
                    session_id TEXT NOT NULL,
                    sequence BIGINT NOT NULL,
                    started_at_us BIGINT NOT NULL,
                    verb TEXT NOT NULL,
                    api_group TEXT NOT NULL,
                    resource TEXT NOT NULL,
                    subresource TEXT NOT NULL,
                    namespace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    http_method TEXT NOT NULL,
                    path TEXT NOT NULL,
                    query TEXT NOT NULL,
                    status_code BIGINT,
                    latency_ms \(real),
                    completed_at_us BIGINT,
                    request_body \(blob),
                    response_body \(blob),
                    request_bytes BIGINT NOT NULL,
                    response_bytes BIGINT NOT NULL DEFAULT 0,
                    truncated BIGINT NOT NULL,
                    approval_id TEXT,
                    kubectl_command TEXT,
                    kubectl_session TEXT,
                    user_agent TEXT,
                    state TEXT NOT NULL,
                    owner TEXT NOT NULL,
                    chunk_count BIGINT NOT NULL DEFAULT 0,
                    stored_bytes BIGINT NOT NULL DEFAULT 0
                )
                """,
                "CREATE UNIQUE INDEX IF NOT EXISTS exchanges_by_session ON exchanges (session_id, sequence)",
                "CREATE INDEX IF NOT EXISTS exchanges_by_state ON exchanges (state, owner)",
                "CREATE INDEX IF NOT EXISTS exchanges_by_resource ON exchanges (resource, verb, session_id)",
                "CREATE INDEX IF NOT EXISTS exchanges_by_verb ON exchanges (verb, session_id)",
                "CREATE INDEX IF NOT EXISTS exchanges_by_object ON exchanges (namespace, name, session_id)",
                "CREATE INDEX IF NOT EXISTS exchanges_by_name ON exchanges (name, session_id)",
                """
                CREATE TABLE IF NOT EXISTS stream_chunks (
                    exchange_id TEXT NOT NULL,
                    sequence BIGINT NOT NULL,
                    at_us BIGINT NOT NULL,
                    channel TEXT NOT NULL,
                    data \(blob) NOT NULL,
                    PRIMARY KEY (exchange_id, sequence)
                )
                """,
                """
                CREATE TABLE IF NOT EXISTS store_instances (
                    id TEXT PRIMARY KEY,
                    host TEXT NOT NULL,
                    pid BIGINT NOT NULL,
                    process_start TEXT NOT NULL,
                    started_at_us BIGINT NOT NULL,
                    heartbeat_at_us BIGINT NOT NULL
                )
                """,
            ]),
            (2, [
                // Approvals (held requests). `state` moves from pending exactly once.
                """
                CREATE TABLE IF NOT EXISTS approvals (
                    id TEXT PRIMARY KEY,
                    connection_namespace TEXT NOT NULL,
                    connection_name TEXT NOT NULL,
                    rule TEXT NOT NULL,
                    state TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    groups_json TEXT NOT NULL,
                    model TEXT,
                    session_id TEXT,
                    exchange_id TEXT,
                    verb TEXT NOT NULL,
                    api_group TEXT NOT NULL,
                    resource TEXT NOT NULL,
                    subresource TEXT NOT NULL,
                    namespace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    http_method TEXT NOT NULL,
                    path TEXT NOT NULL,
                    query TEXT NOT NULL,
                    request_body \(blob),
                    dry_run_status_code BIGINT,
                    dry_run_body \(blob),
                    approver_groups_json TEXT NOT NULL,
                    created_at_us BIGINT NOT NULL,
                    expires_at_us BIGINT NOT NULL,
                    decided_at_us BIGINT,
                    decided_by TEXT,
                    reason TEXT,
                    owner TEXT NOT NULL
                )
                """,
                "CREATE INDEX IF NOT EXISTS approvals_by_state ON approvals (state, owner)",
                "CREATE INDEX IF NOT EXISTS approvals_by_connection ON approvals (connection_namespace, connection_name, state)",
            ]),
            (3, [
                // Fewer pages written per exchange (each commit writes every page it touched).
                // The session filters (verb, resource, namespace, name) move from four indexes on
                // every exchange to `session_facets`: one row per distinct combination a session
                // has used, so an agent repeating a request adds nothing there. And the state
                // index keeps only the exchanges in progress, which is all recovery looks for.
                """
                CREATE TABLE IF NOT EXISTS session_facets (
                    session_id TEXT NOT NULL,
                    verb TEXT NOT NULL,
                    resource TEXT NOT NULL,
                    subresource TEXT NOT NULL,
                    namespace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    PRIMARY KEY (session_id, verb, resource, subresource, namespace, name)
                )\(dialect == .sqlite ? " WITHOUT ROWID" : "")
                """,
                """
                INSERT INTO session_facets (session_id, verb, resource, subresource, namespace, name)
                SELECT DISTINCT session_id, verb, resource, subresource, namespace, name FROM exchanges
                """,
                "CREATE INDEX IF NOT EXISTS session_facets_by_resource ON session_facets (resource, verb, session_id)",
                "CREATE INDEX IF NOT EXISTS session_facets_by_verb ON session_facets (verb, session_id)",
                "CREATE INDEX IF NOT EXISTS session_facets_by_object ON session_facets (namespace, name, session_id)",
                "CREATE INDEX IF NOT EXISTS session_facets_by_name ON session_facets (name, session_id)",
                "DROP INDEX IF EXISTS exchanges_by_resource",
                "DROP INDEX IF EXISTS exchanges_by_verb",
                "DROP INDEX IF EXISTS exchanges_by_object",
                "DROP INDEX IF EXISTS exchanges_by_name",
                "DROP INDEX IF EXISTS exchanges_by_state",
                // Queries must name the state as this literal (not a bind) for SQLite to use it.
                "CREATE INDEX IF NOT EXISTS exchanges_in_progress ON exchanges (owner) WHERE state = 'inProgress'",
            ]),
            (4, [
                // SQLite's recording journal (`RecordingJournal`): the journal files already
                // ingested, marked in the ingesting transaction, so a crash before a file is
                // removed never ingests it twice. A mark lives until its file is removed.
                """
                CREATE TABLE IF NOT EXISTS journal_files_ingested (
                    file TEXT PRIMARY KEY,
                    ingested_at_us BIGINT NOT NULL
                )
                """,
            ]),
            (5, [
                // State the gateway replicas share (`SQLSessionStore+Shared.swift`): alert
                // windows, counted across replicas, and the refusals of stream upgrades kept
                // for a client's retry over another protocol.
                """
                CREATE TABLE IF NOT EXISTS alert_windows (
                    window_key TEXT PRIMARY KEY,
                    firing BIGINT NOT NULL DEFAULT 0,
                    last_hit_us BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE IF NOT EXISTS alert_hits (
                    window_key TEXT NOT NULL,
                    at_us BIGINT NOT NULL
                )
                """,
                "CREATE INDEX IF NOT EXISTS alert_hits_by_window ON alert_hits (window_key, at_us)",
                """
                CREATE TABLE IF NOT EXISTS stream_refusals (
                    refusal_key TEXT PRIMARY KEY,
                    status_code BIGINT NOT NULL,
                    body \(blob) NOT NULL,
                    expires_at_us BIGINT NOT NULL
                )
                """,
            ]),
            (6, [
                // The recording-read audit (`SQLSessionStore+Reads.swift`): who read which
                // recording through the admin API. Kept when the sessions it names are pruned.
                """
                CREATE TABLE IF NOT EXISTS recording_reads (
                    id TEXT PRIMARY KEY,
                    viewer TEXT NOT NULL,
                    issuer TEXT NOT NULL,
                    action TEXT NOT NULL,
                    session_id TEXT NOT NULL,
                    exchange_id TEXT NOT NULL,
                    query TEXT NOT NULL,
                    address TEXT NOT NULL,
                    first_at_us BIGINT NOT NULL,
                    last_at_us BIGINT NOT NULL,
                    count BIGINT NOT NULL
                )
                """,
                "CREATE INDEX IF NOT EXISTS recording_reads_by_viewer ON recording_reads (viewer, last_at_us)",
                "CREATE INDEX IF NOT EXISTS recording_reads_by_session ON recording_reads (session_id, last_at_us)",
                "CREATE INDEX IF NOT EXISTS recording_reads_by_time ON recording_reads (last_at_us)",
            ]),
        ]
    }

    /// Applies missing versions. PostgreSQL replicas starting together serialize on an
    /// advisory lock; SQLite writers on the file's write lock (BEGIN IMMEDIATE). A database
    /// already at a version newer than this code knows is refused, never written.
    static func apply(_ driver: any SQLDriver, schema: String?) async throws {
        let dialect = driver.dialect
        try await driver.maintenance { tx in
            if dialect == .postgres {
                // 0x61676174 = "agat": one fixed lock id for our migrations.
                try await tx.query("SELECT pg_advisory_xact_lock(1634165108)", [])
                if let schema {
                    // An identifier cannot be a bind parameter; `schema` passed StoreURL.isIdentifier.
                    try await tx.query("CREATE SCHEMA IF NOT EXISTS \"\(schema)\"", [])
                }
            }
            try await tx.query("""
                CREATE TABLE IF NOT EXISTS agentgate_schema_version (
                    version BIGINT PRIMARY KEY, applied_at_us BIGINT NOT NULL)
                """, [])
            let current = try await tx.query("SELECT MAX(version) AS v FROM agentgate_schema_version", [])
                .first?["v"].int ?? 0
            let known = all(dialect).map(\.version).max() ?? 0
            if current > known { throw SessionStoreError.schemaNewerThanKnown(database: current, known: known) }
            for migration in all(dialect) where migration.version > current {
                for statement in migration.statements {
                    try await tx.query(statement, [])
                }
                try await tx.query(
                    "INSERT INTO agentgate_schema_version (version, applied_at_us) VALUES (?, ?)",
                    [.int(migration.version), SQLValue(micros: Date())])
            }
        }
    }
}
