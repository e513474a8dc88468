import Foundation

/// The seam between the store's logic (`SQLSessionStore`, written once) and a database
/// client. Drivers only move bound values in and rows out; all statements use `?`
/// placeholders and the driver rewrites them for its database. No value is ever spliced
/// into statement text.
enum SQLValue: Hashable, Sendable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])

    init(_ s: String?) { self = s.map(SQLValue.text) ?? .null }
    init(_ b: [UInt8]?) { self = b.map(SQLValue.blob) ?? .null }
    init(_ i: Int64) { self = .int(i) }
    init(micros date: Date) { self = .int(SQLTime.micros(date)) }

    var int: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d): return Int64(exactly: d.rounded())
        case .text(let s): return Int64(s)
        default: return nil
        }
    }
    var double: Double? {
        switch self {
        case .double(let d): return d
        case .int(let i): return Double(i)
        default: return nil
        }
    }
    var text: String? {
        switch self {
        case .text(let s): return s
        case .blob(let b): return String(decoding: b, as: UTF8.self)
        case .int(let i): return String(i)
        default: return nil
        }
    }
    var blob: [UInt8]? {
        switch self {
        case .blob(let b): return b
        case .text(let s): return Array(s.utf8)
        default: return nil
        }
    }
}

/// One result row by lower-case column name.
struct SQLRow: Sendable {
    var values: [String: SQLValue]
    subscript(_ column: String) -> SQLValue { values[column] ?? .null }
    func text(_ c: String) -> String { self[c].text ?? "" }
    func int(_ c: String) -> Int64 { self[c].int ?? 0 }
    func date(_ c: String) -> Date { SQLTime.date(int(c)) }
    func optionalDate(_ c: String) -> Date? { self[c].int.map(SQLTime.date) }
}

enum SQLTime {
    /// Microseconds since the Unix epoch: what both backends store, so the two agree to the microsecond.
    static func micros(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }
    static func date(_ micros: Int64) -> Date {
        Date(timeIntervalSince1970: Double(micros) / 1_000_000)
    }
}

/// Statements run inside one transaction.
protocol SQLTransaction: Sendable {
    @discardableResult
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]
}

enum SQLDialect: Sendable {
    case sqlite, postgres

    /// Two-argument maximum.
    var greatest: String { self == .sqlite ? "MAX" : "GREATEST" }
}

extension SQLDriver {
    func maintenance<T: Sendable>(_ body: @escaping @Sendable (any SQLTransaction) async throws -> T) async throws -> T {
        try await write(body)
    }
}

protocol SQLDriver: Sendable {
    var dialect: SQLDialect { get }
    /// A read outside any transaction (sees committed data).
    func read(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]
    /// Runs `body` in a write transaction, committed when it returns and rolled back when it throws.
    /// Drivers run the transaction on a task of its own: a caller cancelled half-way (an agent
    /// that hung up) must not leave a transaction open, because NIO skips the work of a
    /// cancelled task, ROLLBACK included, and every later write would then fail.
    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLTransaction) async throws -> T) async throws -> T
    /// One statement that writes, atomic on its own: PostgreSQL runs it without BEGIN and
    /// COMMIT, one round trip instead of three.
    func writeStatement(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]
    /// Like `write`, for work that may rightly take long (migrations waiting for another
    /// replica's, pruning a large store): drivers that bound how long a write may wait for its
    /// answer do not bound this one.
    func maintenance<T: Sendable>(_ body: @escaping @Sendable (any SQLTransaction) async throws -> T) async throws -> T
    func close() async throws
    /// Payloads notified on `channel` by any client of the database, until the stream's
    /// consumer goes away (PostgreSQL LISTEN; SQLite never yields).
    func notifications(channel: String) -> AsyncStream<String>
}
