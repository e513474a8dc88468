import AgentGateAPI
import Foundation
import KubeCore
import Masking
import SessionStore

/// One servable connection: its compiled configuration, the credential to inject and the
/// masker built for both.
public struct GatewayConnection: Sendable {
    public var config: GatewayConnectionConfig
    /// The ServiceAccount token injected upstream. Never logged, returned or stored.
    public var token: String
    public var masker: Masker

    /// Problems met building the masking policy (a pattern that does not compile), for logs.
    public var maskingProblems: [String]
    /// The connection's key: its AgentConnection's namespace and name.
    public var ref: ConnectionRef { ConnectionRef(namespace: config.namespace, name: config.name) }

    public init(config: GatewayConnectionConfig, token: String, hashKey: [UInt8] = []) {
        self.config = config
        self.token = token
        // The built-in rules plus the connection's MaskingRules; the injected token is always scrubbed.
        let (policy, problems) = ConnectionMaskingPolicy.build(rules: config.maskingRules, token: token, hashKey: hashKey)
        self.masker = Masker(policy: policy)
        self.maskingProblems = problems
    }
}

/// The connections the gateway serves, keyed by ``ConnectionRef`` (compared byte for byte),
/// swapped atomically.
///
/// Contract: readers get a consistent snapshot of one connection per request (config and
/// token together); a rotated token replaces the old one for every request that starts after
/// the update, while requests in flight finish with the token they started with (still valid:
/// the operator rotates before expiry), so a rotation never fails a request.
public final class ConnectionRegistry: @unchecked Sendable {
    private var byRef: [ConnectionRef: GatewayConnection] = [:]
    /// Secret name → connection, so a deleted Secret removes its connection.
    private var refBySecret: [String: ConnectionRef] = [:]
    private let lock = NSLock()
    private var key: [UInt8]

    /// `hashKey`: the gateway's masking key (random when not given, so hashes are stable only
    /// for this process). Replicas given the same key hash the same value the same way.
    public init(hashKey: [UInt8]? = nil) {
        self.key = hashKey ?? (0..<32).map { _ in UInt8.random(in: 0...255) }
    }

    /// Key of keyed-hash replacements, shared by every connection.
    public var hashKey: [UInt8] { lock.withLock { key } }

    /// Replaces the masking key (a rotation): every connection's masker is rebuilt with it, for
    /// the requests that start after this returns.
    public func rekey(_ newKey: [UInt8]) {
        lock.withLock {
            guard newKey != key else { return }
            key = newKey
            byRef = byRef.mapValues { GatewayConnection(config: $0.config, token: $0.token, hashKey: newKey) }
        }
    }

    public func connection(_ ref: ConnectionRef) -> GatewayConnection? {
        lock.withLock { byRef[ref] }
    }

    public func connection(namespace: String, name: String) -> GatewayConnection? {
        connection(ConnectionRef(namespace: namespace, name: name))
    }

    public var all: [GatewayConnection] { lock.withLock { Array(byRef.values) } }

    /// Adds or replaces a connection directly (tests, `agentgate dev`).
    public func put(_ config: GatewayConnectionConfig, token: String, secretName: String? = nil) {
        let ref = ConnectionRef(namespace: config.namespace, name: config.name)
        lock.withLock {
            if let previous = byRef[ref], previous.config == config, previous.token == token { return }
            byRef[ref] = GatewayConnection(config: config, token: token, hashKey: key)
            refBySecret[secretName ?? GatewayConnectionConfig.secretName(namespace: config.namespace, name: config.name)] = ref
        }
    }

    public func remove(namespace: String, name: String) {
        let ref = ConnectionRef(namespace: namespace, name: name)
        lock.withLock {
            byRef[ref] = nil
            refBySecret = refBySecret.filter { $0.value != ref }
        }
    }

    /// Applies a Secret the operator wrote (see `GatewayConnectionConfig`). Throws a message
    /// naming the Secret and key when it cannot be used; the previous state is kept then.
    public func apply(secret: JSONValue) throws {
        var data: [String: String] = [:]
        for key in [GatewayConnectionConfig.configKey, GatewayConnectionConfig.tokenKey] {
            data[key] = secret[path: ["data", key]]?.stringValue
        }
        try apply(secretName: secret[path: ["metadata", "name"]]?.stringValue ?? "<unnamed>", data: data)
    }

    /// The same, from the Secret's name and its `data` (base64 values, as on the wire).
    public func apply(secretName: String, data: [String: String]) throws {
        guard let configText = data[GatewayConnectionConfig.configKey],
              let configBytes = Data(base64Encoded: configText) else {
            throw GatewayConfigError("Secret \(secretName): data[\(GatewayConnectionConfig.configKey)] is missing or not base64")
        }
        guard let tokenText = data[GatewayConnectionConfig.tokenKey],
              let tokenBytes = Data(base64Encoded: tokenText), !tokenBytes.isEmpty else {
            throw GatewayConfigError("Secret \(secretName): data[\(GatewayConnectionConfig.tokenKey)] is missing or empty")
        }
        let config: GatewayConnectionConfig
        do {
            config = try JSONDecoder().decode(GatewayConnectionConfig.self, from: configBytes)
        } catch {
            throw GatewayConfigError("Secret \(secretName): data[\(GatewayConnectionConfig.configKey)] is not a GatewayConnectionConfig: \(error)")
        }
        let token = String(decoding: tokenBytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        put(config, token: token, secretName: secretName)
    }

    /// Removes the connection a deleted Secret served.
    public func removeSecret(named secretName: String) {
        lock.withLock {
            if let ref = refBySecret.removeValue(forKey: secretName) { byRef[ref] = nil }
        }
    }
}

public struct GatewayConfigError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
