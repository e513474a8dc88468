import AsyncHTTPClient
import Foundation
import KubeCore
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// A client for one Kubernetes API server, built on one AsyncHTTPClient `HTTPClient` whose TLS
/// comes from the ``KubeConfig`` (CA, client certificate, insecure-skip-tls-verify).
///
/// Contract:
/// - Every request asks for JSON, carries the credential of the config (re-read or re-run as
///   ``KubeConfig/Credentials`` says), and waits for the rate limiter when one is configured.
/// - A 401 with an exec-plugin or token-file credential drops the cached credential and retries
///   once, as client-go does after a token rotation.
/// - Error answers throw ``KubeError`` (decoded `metav1.Status`); unreachable servers throw
///   ``KubeError/transport(_:)``.
/// - Bodies are built from ``JSONValue`` (typed objects through `JSONEncoder`), so nil optionals
///   are absent, never `null`.
/// - Call ``shutdown()`` before dropping the client (AsyncHTTPClient requires it).
///
/// The operations live in `KubernetesClient+Operations.swift` (untyped),
/// `KubernetesClient+Typed.swift` and `Watcher.swift`.
public final class KubernetesClient: Sendable {
    public struct Options: Sendable {
        /// Client-side rate limit (QPS and burst); nil (the default) is unlimited.
        public var rateLimit: (qps: Double, burst: Int)?
        /// Time to wait for a response head (non-watch requests).
        public var requestTimeout: Duration = .seconds(60)
        public var connectTimeout: Duration = .seconds(10)
        public var userAgent: String = "agentgate"
        /// Largest response body read into memory.
        public var maxBodyBytes: Int = 256 * 1024 * 1024
        public var logger = Logger(label: "agentgate.kubeclient")

        public init(rateLimit: (qps: Double, burst: Int)? = nil) {
            self.rateLimit = rateLimit
        }
    }

    public let config: KubeConfig
    public let options: Options
    /// The context's namespace: used when a namespaced call gives none.
    public var defaultNamespace: String { config.namespace }
    /// Requests sent so far, by method and resource.
    public let statistics = RequestStatistics()
    let http: HTTPClient
    let credentials: CredentialProvider
    let rateLimiter: RateLimiter?
    let baseURL: String
    var logger: Logger { options.logger }

    public init(config: KubeConfig, options: Options = Options()) throws {
        self.config = config
        self.options = options
        var base = config.server
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.credentials = CredentialProvider(config.credentials, server: config.server)
        self.rateLimiter = options.rateLimit.map { RateLimiter(qps: $0.qps, burst: $0.burst) }

        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            if let ca = config.certificateAuthorityPEM {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca))
            }
            if let cert = config.clientCertificatePEM, let key = config.clientKeyPEM {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(cert).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem))
            }
        } catch {
            throw KubeConfigError("\(config.origin): certificate data cannot be loaded: \(error)")
        }
        if config.insecureSkipTLSVerify { tls.certificateVerification = .none }
        // A closing connection waits this long for the server's close_notify; watches cancelled
        // at shutdown would otherwise hold `shutdown()` for NIOSSL's default 5 s.
        tls.shutdownTimeout = .milliseconds(500)
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .disallow,
            timeout: .init(connect: .nanoseconds(Int64(options.connectTimeout.components.seconds) * 1_000_000_000
                + options.connectTimeout.components.attoseconds / 1_000_000_000), read: nil))
        // Each watch holds one HTTP/1 connection; the default of 8 would queue requests behind them.
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 256
        // Fail fast when the server is down: the watcher's own backoff decides when to retry,
        // instead of requests waiting in the pool until their deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Builds a client from `load(kubeconfigPath:context:)`'s precedence.
    public convenience init(kubeconfigPath: String? = nil, context: String? = nil, options: Options = Options()) throws {
        try self.init(config: KubeConfig.load(kubeconfigPath: kubeconfigPath, context: context), options: options)
    }

    /// Closes connections. Watches still running end with a transport error.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    // MARK: Requests

    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    func url(_ path: String, _ query: [(String, String)]) -> String {
        guard !query.isEmpty else { return baseURL + path }
        let encoded = query.map { "\(Self.queryEscape($0.0))=\(Self.queryEscape($0.1))" }.joined(separator: "&")
        return baseURL + path + "?" + encoded
    }

    private static let queryAllowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")

    static func queryEscape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: queryAllowed) ?? text
    }

    private func makeRequest(_ method: HTTPMethod, _ path: String, _ query: [(String, String)],
                             body: [UInt8]?, contentType: String?) async throws -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url(path, query))
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: options.userAgent)
        if let authorization = try await credentials.authorization() {
            request.headers.add(name: "Authorization", value: authorization)
        }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType ?? "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        return request
    }

    private func execute(_ request: HTTPClientRequest, deadline: NIODeadline) async throws -> HTTPClientResponse {
        do {
            return try await http.execute(request, deadline: deadline, logger: nil)
        } catch let error as KubeError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw KubeError.transport("\(request.method.rawValue) \(request.url): \(error)")
        }
    }

    /// Sends one request and reads the whole answer; error answers throw ``KubeError``.
    func send(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [],
              body: [UInt8]? = nil, contentType: String? = nil) async throws -> [UInt8] {
        var retried = false
        while true {
            try await rateLimiter?.acquire()
            statistics.record(method: method.rawValue, path: path)
            let request = try await makeRequest(method, path, query, body: body, contentType: contentType)
            let timeout = options.requestTimeout
            let deadline = NIODeadline.now() + .nanoseconds(timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
            let response: HTTPClientResponse
            do {
                response = try await execute(request, deadline: deadline)
            } catch {
                statistics.recordOutcome(method: method.rawValue, path: path, code: nil)
                throw error
            }
            statistics.recordOutcome(method: method.rawValue, path: path, code: Int(response.status.code))
            let bytes: [UInt8]
            do {
                var buffer = try await response.body.collect(upTo: options.maxBodyBytes)
                bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
            } catch {
                if Task.isCancelled { throw CancellationError() }
                throw KubeError.transport("\(method.rawValue) \(path): reading the answer failed: \(error)")
            }
            let code = Int(response.status.code)
            if code == 401, !retried, credentials.invalidate() {
                retried = true
                continue
            }
            guard code < 400 else {
                throw KubeError.fromResponse(code: code, body: bytes, retryAfterHeader: response.headers.first(name: "Retry-After"))
            }
            return bytes
        }
    }

    /// Opens a streaming GET (watch); error answers throw ``KubeError`` after reading their body.
    func openStream(_ path: String, query: [(String, String)]) async throws -> HTTPClientResponse {
        var retried = false
        while true {
            try await rateLimiter?.acquire()
            statistics.record(method: "WATCH", path: path)
            let request = try await makeRequest(.GET, path, query, body: nil, contentType: nil)
            let timeout = options.requestTimeout
            let deadline = NIODeadline.now() + .nanoseconds(timeout.components.seconds * 1_000_000_000)
            let response: HTTPClientResponse
            do {
                response = try await execute(request, deadline: deadline)
            } catch {
                statistics.recordOutcome(method: "WATCH", path: path, code: nil)
                throw error
            }
            let code = Int(response.status.code)
            statistics.recordOutcome(method: "WATCH", path: path, code: code)
            if code < 400 { return response }
            var buffer = (try? await response.body.collect(upTo: 1 << 20)) ?? ByteBuffer()
            let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
            if code == 401, !retried, credentials.invalidate() {
                retried = true
                continue
            }
            throw KubeError.fromResponse(code: code, body: bytes, retryAfterHeader: response.headers.first(name: "Retry-After"))
        }
    }

    /// Parses an answer body as JSON.
    func json(_ bytes: [UInt8], _ what: @autoclosure () -> String) throws -> JSONValue {
        do {
            return try JSONValue(parsing: bytes)
        } catch {
            throw KubeError.decoding("\(what()): the server's answer is not JSON: \(error)")
        }
    }
}
