import Foundation

/// The files of the recording journals next to a SQLite database, in `<database>.journal/`:
///
///     <instance>.lock          held with flock(2) by the live store instance
///     <instance>.<n>.log       the instance's journal files, n = 1, 2, 3... in write order
///
/// Liveness is the lock: the kernel releases it when the process dies, however it dies, so
/// an instance whose lock can be taken is gone and its journal files can be ingested by
/// anyone. A lock file appears already locked (created under a temporary name, locked, then
/// renamed), and an instance creates journal files only after its lock file exists, so a
/// journal file is never taken from a live instance.
struct JournalDirectory: Sendable {
    let path: String

    init(databasePath: String) {
        path = databasePath + ".journal"
    }

    /// A file-name-safe form of an instance id (ids are sortable ids; tests use plain words).
    static func stem(_ instanceID: String) -> String {
        let safe = instanceID.unicodeScalars.allSatisfy {
            ($0.isASCII && (CharacterSet.alphanumerics.contains($0))) || $0 == "-" || $0 == "_"
        }
        if safe, !instanceID.isEmpty { return instanceID }
        return "x" + instanceID.utf8.map { String(format: "%02x", $0) }.joined()
    }

    func lockPath(_ stem: String) -> String { path + "/" + stem + ".lock" }

    func logName(_ stem: String, generation: Int) -> String { stem + "." + String(generation) + ".log" }

    func filePath(_ name: String) -> String { path + "/" + name }

    /// Creates the directory and this instance's lock file, locked; returns its descriptor
    /// (closing it releases the lock).
    func acquireLock(stem: String) throws -> Int32 {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw SessionStoreError.database(operation: "create the recording journal directory \(path)", message: "\(error)")
        }
        let temporary = path + "/." + stem + ".lock." + UUID().uuidString
        let fd = open(temporary, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Self.failure("create \(temporary)") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0, rename(temporary, lockPath(stem)) == 0 else {
            let error = Self.failure("lock \(lockPath(stem))")
            unlink(temporary)
            close(fd)
            throw error
        }
        return fd
    }

    /// What the directory holds: journal files by instance stem (in generation order) and the
    /// stems that have a lock file.
    func contents() -> (logs: [String: [(generation: Int, name: String)]], locks: Set<String>) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return ([:], []) }
        var logs: [String: [(generation: Int, name: String)]] = [:]
        var locks = Set<String>()
        for name in names where !name.hasPrefix(".") {
            let parts = name.split(separator: ".")
            if parts.count == 2, parts[1] == "lock" {
                locks.insert(String(parts[0]))
            } else if parts.count == 3, parts[2] == "log", let generation = Int(parts[1]) {
                logs[String(parts[0]), default: []].append((generation, name))
            }
        }
        for stem in logs.keys { logs[stem]?.sort { $0.generation < $1.generation } }
        return (logs, locks)
    }

    /// The lock of a gone instance, taken (its descriptor), or nil while the instance lives.
    /// An instance with journal files and no lock file is gone too (its lock was removed by
    /// an ingest that stopped half-way): then the descriptor is -1.
    func lockOfGoneInstance(_ stem: String) -> Int32? {
        let fd = open(lockPath(stem), O_RDWR | O_CLOEXEC)
        if fd < 0 { return errno == ENOENT ? -1 : nil }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            return nil
        }
        return fd
    }

    /// Temporary lock files whose creator died before renaming them.
    func removeAbandonedTemporaryLocks() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
        for name in names where name.hasPrefix(".") && name.contains(".lock.") {
            let fd = open(filePath(name), O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { continue }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { unlink(filePath(name)) }
            close(fd)
        }
    }

    static func failure(_ operation: String) -> SessionStoreError {
        .database(operation: operation, message: String(cString: strerror(errno)))
    }
}
