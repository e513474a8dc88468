import Foundation
import Logging
import ServiceLifecycle

/// The masking key read from a file that every replica mounts (a Secret), so the same value
/// gets the same keyed hash on every gateway replica, and re-read when it changes, so the key
/// can be rotated without a restart.
///
/// Contract:
/// - The key is the file's bytes without surrounding white space; it must be at least 16
///   bytes (`openssl rand -hex 32` gives 64). Loading at start-up fails loudly with the file's
///   name.
/// - The file is checked every `interval` (10 s by default; a Secret volume is updated by the
///   kubelet within about a minute). A changed, usable key is handed to the
///   ``ConnectionRegistry`` (``ConnectionRegistry/rekey(_:)``): requests that start after that
///   hash with the new key. An unreadable or too short file keeps the previous key, logged.
/// - During a rotation replicas disagree for at most one kubelet sync plus `interval`: hashes
///   recorded in that window may differ between replicas for the same value.
public final class MaskingKeyFile: @unchecked Sendable {
    public static let defaultInterval: Duration = .seconds(10)
    public static let minimumBytes = 16

    public let path: String
    private let registry: ConnectionRegistry
    private let logger: Logger
    private let lock = NSLock()
    private var current: [UInt8]
    private var rotations = 0
    private var task: Task<Void, Never>?

    /// Reads the key and gives it to `registry`.
    public init(path: String, registry: ConnectionRegistry, logger: Logger = Logger(label: "agentgate.gateway.masking-key")) throws {
        self.path = path
        self.registry = registry
        self.logger = logger
        current = try Self.read(path)
        registry.rekey(current)
    }

    /// Times a changed key was loaded after start-up.
    public var rotationCount: Int { lock.withLock { rotations } }

    static func read(_ path: String) throws -> [UInt8] {
        Array(try SecretFile.read(path, flag: "--masking-key-file", minimumBytes: minimumBytes).utf8)
    }

    /// Loads the file again now; true when the key changed.
    @discardableResult
    public func reload() -> Bool {
        let key: [UInt8]
        do {
            key = try Self.read(path)
        } catch {
            logger.error("keeping the previous masking key: \(error)")
            return false
        }
        let changed = lock.withLock { () -> Bool in
            guard key != current else { return false }
            current = key
            rotations += 1
            return true
        }
        if changed {
            registry.rekey(key)
            logger.notice("masking key rotated from \(path)")
        }
        return changed
    }

    /// Checks the file every `interval` until graceful shutdown (in a `ServiceGroup`) or cancellation.
    public func run(interval: Duration = MaskingKeyFile.defaultInterval) async {
        await cancelWhenGracefulShutdown { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                self?.reload()
            }
        }
    }

    /// ``run(interval:)`` in a task of its own, until ``stop()``.
    public func start(interval: Duration = MaskingKeyFile.defaultInterval) {
        task = Task { [weak self] in await self?.run(interval: interval) }
    }

    public func stop() {
        task?.cancel()
    }
}

/// A secret read from a mounted file (the masking key, the admin token): its text without
/// surrounding white space, at least `minimumBytes` long. Errors name the flag and the file.
enum SecretFile {
    static func read(_ path: String, flag: String, minimumBytes: Int) throws -> String {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw GatewayConfigError("\(flag) \(path): cannot be read (\((error as NSError).localizedDescription))")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.utf8.count >= minimumBytes else {
            throw GatewayConfigError("\(flag) \(path): the key has \(token.utf8.count) bytes; it needs at least \(minimumBytes) (e.g. openssl rand -hex 32)")
        }
        return token
    }
}
