import Foundation
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle

/// The gateway's HTTPS certificate and key, read from PEM files and re-read when they change
/// (cert-manager, or a mounted Secret, rotates them in place).
///
/// Contract:
/// - The files are checked every `interval` (5 s by default). A changed pair is loaded only
///   when both parse and the key matches the certificate (a `NIOSSLContext` is built from
///   them as the check), so a half-written rotation keeps the previous pair until the second
///   file lands; the failure is logged with the file names.
/// - Every new TLS handshake presents the current pair (through NIOSSL's per-handshake
///   context callback); connections already open keep the certificate they started with.
/// - Loading at start-up fails loudly: a gateway never starts without a usable certificate.
public final class ServingCertificate: @unchecked Sendable {
    public static let defaultInterval: Duration = .seconds(5)

    private struct Pair {
        var chain: [NIOSSLCertificate]
        var key: NIOSSLPrivateKey
        var fingerprint: [UInt8]
    }

    public let certificateFile: String
    public let keyFile: String
    private let logger: Logger
    private let lock = NSLock()
    private var pair: Pair
    private var reloads = 0
    private var task: Task<Void, Never>?

    public init(certificateFile: String, keyFile: String, logger: Logger = Logger(label: "agentgate.gateway.tls")) throws {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.logger = logger
        pair = try Self.load(certificateFile: certificateFile, keyFile: keyFile)
    }

    /// Times a changed pair was loaded after start-up.
    public var reloadCount: Int { lock.withLock { reloads } }

    /// A server context (TLS 1.2+) whose handshakes present the current pair.
    public func makeContext() throws -> NIOSSLContext {
        let current = lock.withLock { pair }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: current.chain.map { .certificate($0) }, privateKey: .privateKey(current.key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.sslContextCallback = { [weak self] _, promise in
            guard let self else { return promise.succeed(.noChanges) }
            let current = self.lock.withLock { self.pair }
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = current.chain.map { .certificate($0) }
            override.privateKey = .privateKey(current.key)
            promise.succeed(override)
        }
        return try NIOSSLContext(configuration: configuration)
    }

    /// Re-reads the files; returns true when a new pair was loaded.
    @discardableResult
    public func reloadIfChanged() -> Bool {
        let candidate: Pair
        do {
            candidate = try Self.load(certificateFile: certificateFile, keyFile: keyFile)
        } catch {
            logger.warning("TLS certificate \(certificateFile) / key \(keyFile) not reloaded, the previous pair stays in use: \(error)")
            return false
        }
        return lock.withLock {
            guard candidate.fingerprint != pair.fingerprint else { return false }
            pair = candidate
            reloads += 1
            return true
        }
    }

    /// Checks the files every `interval` until graceful shutdown (in a `ServiceGroup`) or cancellation.
    public func run(interval: Duration = ServingCertificate.defaultInterval) async {
        await cancelWhenGracefulShutdown { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let self else { return }
                if self.reloadIfChanged() {
                    self.logger.notice("TLS certificate reloaded from \(self.certificateFile)")
                }
            }
        }
    }

    /// ``run(interval:)`` in a task of its own, until ``stop()``.
    public func start(interval: Duration = ServingCertificate.defaultInterval) {
        task = Task { [weak self] in await self?.run(interval: interval) }
    }

    public func stop() {
        task?.cancel()
    }

    private static func load(certificateFile: String, keyFile: String) throws -> Pair {
        let certificateBytes: [UInt8], keyBytes: [UInt8]
        do {
            certificateBytes = Array(try Data(contentsOf: URL(fileURLWithPath: certificateFile)))
            keyBytes = Array(try Data(contentsOf: URL(fileURLWithPath: keyFile)))
        } catch {
            throw GatewayConfigError("TLS files cannot be read (--tls-cert \(certificateFile), --tls-key \(keyFile)): \(error.localizedDescription)")
        }
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(certificateBytes)
            key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw GatewayConfigError("TLS files are not PEM (--tls-cert \(certificateFile), --tls-key \(keyFile)): \(error)")
        }
        guard !chain.isEmpty else { throw GatewayConfigError("--tls-cert \(certificateFile) holds no certificate") }
        do {
            // Building a context makes BoringSSL check that the key belongs to the leaf certificate.
            _ = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                          privateKey: .privateKey(key)))
        } catch {
            throw GatewayConfigError("--tls-key \(keyFile) does not match the certificate in --tls-cert \(certificateFile): \(error)")
        }
        return Pair(chain: chain, key: key, fingerprint: certificateBytes + [0] + keyBytes)
    }
}
