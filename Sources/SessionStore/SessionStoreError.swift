import Foundation

/// Errors a `SessionStore` throws. Each names what the operator or caller must fix.
public enum SessionStoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// `--store` URL unusable; `part` names the piece at fault (scheme, path, host, port...).
    case invalidURL(url: String, part: String, reason: String)
    case sessionNotFound(SessionID)
    case exchangeNotFound(ExchangeID)
    /// The database refused an operation; `operation` says what the store was doing.
    case database(operation: String, message: String)
    /// The store was used after `close()`.
    case closed
    case approvalNotFound(ApprovalID)
    /// A decision on an approval that is no longer pending; carries it as it stands.
    case approvalAlreadyDecided(ApprovalRecord)
    /// The database was migrated by a newer agentgate than this one (a rollback): its tables
    /// may hold what this version would misread, so it is not used.
    case schemaNewerThanKnown(database: Int64, known: Int64)

    public var description: String {
        switch self {
        case let .invalidURL(url, part, reason):
            return "invalid session store URL \"\(url)\": \(part): \(reason)"
        case let .sessionNotFound(id):
            return "session \"\(id)\" not found"
        case let .exchangeNotFound(id):
            return "exchange \"\(id)\" not found"
        case let .database(operation, message):
            return "session store: \(operation) failed: \(message)"
        case .closed:
            return "session store is closed"
        case let .approvalNotFound(id):
            return "approval \"\(id)\" not found"
        case let .approvalAlreadyDecided(approval):
            return "approval \"\(approval.id)\" is already \(approval.state.rawValue)"
        case let .schemaNewerThanKnown(database, known):
            return "the session store's schema is version \(database), written by a newer agentgate; this one knows versions up to \(known) "
                + "and does not use it: run the newer agentgate (schema migrations only go forward)"
        }
    }
}

extension SessionStoreError: LocalizedError {
    public var errorDescription: String? { description }
}
