import Foundation
import Logging
import PostgresNIO

/// PostgreSQL backend driver over a `PostgresClient` pool (several gateway replicas may
/// share the database). `?` placeholders become `$1, $2...`; every value goes as a bind
/// parameter of the extended query protocol. Tables live in the URL's `schema` (through
/// the `search_path` startup parameter) or in the user's default search path.
///
/// Every read, statement and transaction is answered within ``readTimeout`` or
/// ``writeTimeout`` (`maintenance` has no bound), or fails with
/// `SessionStoreError.database`. PostgresNIO can lose a statement issued on a connection
/// that PostgreSQL closes at that moment (a restart): its answer never comes, and without the
/// bound the request waiting for it would hang. A statement that waits for a pooled connection
/// while PostgreSQL restarts (seconds) is still answered once it is back.
final class PostgresDriver: SQLDriver {
    /// How long a write (a statement or a transaction) may go unanswered, from asking the
    /// pool for a connection to the last row. Shorter than the gateway's patience for
    /// recording an answer (15 s), so a lost statement is tried again within it.
    static let writeTimeout: Duration = .seconds(8)
    /// How long a read may go unanswered (admin queries over a large store take longer).
    static let readTimeout: Duration = .seconds(30)

    let dialect = SQLDialect.postgres
    let schema: String?
    private let client: PostgresClient
    private let runTask: Task<Void, Never>
    private let logger: Logger

    init(location: StoreURL.PostgresLocation, logger: Logger) {
        let tls: PostgresClient.Configuration.TLS
        switch location.sslMode {
        case .disable:
            tls = .disable
        case .prefer, .require:
            // libpq semantics: "require" encrypts without verifying the server certificate.
            var config = TLSConfiguration.makeClientConfiguration()
            config.certificateVerification = .none
            tls = location.sslMode == .prefer ? .prefer(config) : .require(config)
        case .verifyFull:
            tls = .require(.makeClientConfiguration())
        }
        var configuration = PostgresClient.Configuration(
            host: location.host, port: location.port, username: location.user,
            password: location.password, database: location.database, tls: tls)
        if let schema = location.schema {
            configuration.options.additionalStartupParameters.append(("search_path", "\"\(schema)\""))
        }
        configuration.options.additionalStartupParameters.append(
            ("application_name", location.applicationName ?? "agentgate"))
        self.schema = location.schema
        self.logger = logger
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        self.runTask = Task { await client.run() }
    }

    func read(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try await Self.answered(within: Self.readTimeout, operation: sql) { try await self.statement(sql, binds) }
    }

    private func statement(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try await Self.collect(operation: sql) { try await client.query(Self.query(sql, binds), logger: logger) }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLTransaction) async throws -> T) async throws -> T {
        // Not cancelled with the caller: a transaction runs to its COMMIT or ROLLBACK.
        try await Self.answered(within: Self.writeTimeout, operation: "transaction") { try await self.transaction(body) }
    }

    func maintenance<T: Sendable>(_ body: @escaping @Sendable (any SQLTransaction) async throws -> T) async throws -> T {
        try await Task { try await self.transaction(body) }.value
    }

    func writeStatement(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        // Like `write`: a statement sent is seen through to its answer, whatever the caller does.
        try await Self.answered(within: Self.writeTimeout, operation: sql) { try await self.statement(sql, binds) }
    }

    /// Runs `work` on a task of its own and waits for it at most `timeout`. When the time is
    /// up the caller gets an error and the task is cancelled: a wait for a pooled connection
    /// ends there (nothing was sent); a statement already sent is not interrupted by it.
    static func answered<T: Sendable>(within timeout: Duration, operation: String,
                                      _ work: @escaping @Sendable () async throws -> T) async throws -> T {
        let outcome = FirstOutcome<T>()
        let worker = Task {
            do { outcome.finish(.success(try await work())) } catch { outcome.finish(.failure(error)) }
        }
        let deadline = Task {
            try await Task.sleep(for: timeout)
            let lost = SessionStoreError.database(
                operation: "PostgreSQL \(operation.prefix(60))…",
                message: "no answer within \(timeout.components.seconds) s (PostgreSQL unreachable, or the connection was lost)")
            if outcome.finish(.failure(lost)) { worker.cancel() }
        }
        defer { deadline.cancel() }
        return try await outcome.value()
    }

    private func transaction<T: Sendable>(_ body: @Sendable (any SQLTransaction) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in
                try await body(Transaction(connection: connection, logger: logger))
            }
        } catch let error as PostgresTransactionError {
            // Surface the closure's own error (e.g. exchangeNotFound) rather than the wrapper.
            if let closureError = error.closureError { throw closureError }
            throw SessionStoreError.database(operation: "PostgreSQL transaction", message: String(reflecting: error))
        }
    }

    /// LISTEN on a pooled connection held for the stream's life, re-established a second
    /// after it fails, until the driver closes (the `channel` is one of our fixed
    /// identifiers, never user input).
    func notifications(channel: String) -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream<String>.makeStream()
        let client = self.client
        let logger = self.logger
        let pool = self.runTask
        let task = Task {
            while !Task.isCancelled, !pool.isCancelled {
                do {
                    try await client.withConnection { connection in
                        try await connection.listen(on: channel) { notifications in
                            for try await notification in notifications { continuation.yield(notification.payload) }
                        }
                    }
                } catch {
                    if Task.isCancelled || pool.isCancelled { break }
                    logger.warning("LISTEN \(channel) failed; retrying", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: .seconds(1))
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    func close() async throws {
        runTask.cancel()
        await runTask.value
    }

    private struct Transaction: SQLTransaction {
        let connection: PostgresConnection
        let logger: Logger
        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            try await PostgresDriver.collect(operation: sql) {
                try await connection.query(PostgresDriver.query(sql, binds), logger: logger)
            }
        }
    }

    /// Rewrites `?` placeholders to `$n` and binds the values. Our statements contain no
    /// other `?` (no string literals with question marks, no jsonb operators).
    static func query(_ sql: String, _ binds: [SQLValue]) -> PostgresQuery {
        // Bytes, not Characters: `?` is ASCII, and grapheme-by-grapheme iteration of every
        // statement's text was 4% of the driver's CPU.
        var text: [UInt8] = []
        text.reserveCapacity(sql.utf8.count + binds.count * 2)
        var n = 0
        for byte in sql.utf8 {
            if byte == UInt8(ascii: "?") {
                n += 1
                text.append(UInt8(ascii: "$"))
                text.append(contentsOf: String(n).utf8)
            } else {
                text.append(byte)
            }
        }
        var bindings = PostgresBindings(capacity: binds.count)
        for value in binds {
            switch value {
            case .null: bindings.appendNull()
            case .int(let i): bindings.append(i)
            case .double(let d): bindings.append(d)
            case .text(let s): bindings.append(s)
            case .blob(let b): bindings.append(ByteBuffer(bytes: b))
            }
        }
        return PostgresQuery(unsafeSQL: String(decoding: text, as: UTF8.self), binds: bindings)
    }

    static func collect(operation: String, _ run: () async throws -> PostgresRowSequence) async throws -> [SQLRow] {
        do {
            var rows: [SQLRow] = []
            for try await row in try await run() {
                var values: [String: SQLValue] = [:]
                for cell in row {
                    values[cell.columnName.lowercased()] = try decode(cell)
                }
                rows.append(SQLRow(values: values))
            }
            return rows
        } catch let error as PSQLError {
            throw SessionStoreError.database(
                operation: "PostgreSQL statement \(operation.prefix(60))…",
                message: error.serverInfo?[.message] ?? String(reflecting: error))
        }
    }

    private static func decode(_ cell: PostgresCell) throws -> SQLValue {
        guard var bytes = cell.bytes else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8: return .int(try cell.decode(Int64.self))
        case .float4, .float8: return .double(try cell.decode(Double.self))
        case .bytea: return .blob(Array(bytes.readableBytesView))
        case .text, .varchar, .name, .bpchar: return .text(try cell.decode(String.self))
        default: return .text(bytes.readString(length: bytes.readableBytes) ?? "")
        }
    }
}
