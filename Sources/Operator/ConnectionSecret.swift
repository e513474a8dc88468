import AgentGateAPI
import Foundation
import KubeClient
import KubeCore

/// The Secret the operator keeps per AgentConnection in the gateway namespace: the compiled
/// ``GatewayConnectionConfig`` and the ServiceAccount token, plus annotations that let a
/// restarted operator decide whether the stored token is still good without minting a new one.
struct ConnectionSecret: Equatable {
    static let issuedAtAnnotation = "agentgate.io/issued-at"
    static let expiresAtAnnotation = "agentgate.io/expires-at"
    static let serviceAccountAnnotation = "agentgate.io/service-account"
    static let serviceAccountUIDAnnotation = "agentgate.io/service-account-uid"
    static let tokenTTLAnnotation = "agentgate.io/token-ttl"
    static let rotationsAnnotation = "agentgate.io/rotations"
    static let connectionUIDAnnotation = "agentgate.io/connection-uid"
    /// `namespace/name` of the connection (labels cut long names; this does not).
    static let connectionAnnotation = "agentgate.io/connection"

    /// The token and what it was minted for.
    struct Credential: Equatable {
        var token: String
        var issuedAt: Date
        var expiresAt: Date
        var serviceAccount: String
        var serviceAccountUID: String
        var tokenTTLSeconds: Double
        var rotations: Int64

        /// Whether this token can still serve `spec` for the ServiceAccount `uid` at `now`,
        /// or a new one must be requested (expiring within rotateBefore, another ServiceAccount,
        /// a recreated ServiceAccount, a changed TTL).
        func isUsable(serviceAccount name: String, uid: String, ttl: Double, rotateBefore: Double, now: Date) -> Bool {
            guard !token.isEmpty, serviceAccount == name, serviceAccountUID == uid, tokenTTLSeconds == ttl else { return false }
            return now < rotationDue(rotateBefore: rotateBefore)
        }

        func rotationDue(rotateBefore: Double) -> Date { expiresAt.addingTimeInterval(-rotateBefore) }
    }

    var config: GatewayConnectionConfig
    var credential: Credential

    /// Reads a stored Secret; nil when it holds no usable credential (missing keys or annotations).
    init?(secret: Secret) {
        let annotations = secret.metadata.annotations ?? [:]
        guard let tokenData = secret.data?[GatewayConnectionConfig.tokenKey].flatMap({ Data(base64Encoded: $0) }),
              let configData = secret.data?[GatewayConnectionConfig.configKey].flatMap({ Data(base64Encoded: $0) }),
              let config = try? JSONDecoder().decode(GatewayConnectionConfig.self, from: configData),
              let issuedAt = annotations[Self.issuedAtAnnotation].flatMap(KubeTime.parse),
              let expiresAt = annotations[Self.expiresAtAnnotation].flatMap(KubeTime.parse),
              let serviceAccount = annotations[Self.serviceAccountAnnotation],
              let uid = annotations[Self.serviceAccountUIDAnnotation],
              let ttl = annotations[Self.tokenTTLAnnotation].flatMap(Double.init) else { return nil }
        self.config = config
        self.credential = Credential(token: String(decoding: tokenData, as: UTF8.self), issuedAt: issuedAt, expiresAt: expiresAt,
                                     serviceAccount: serviceAccount, serviceAccountUID: uid, tokenTTLSeconds: ttl,
                                     rotations: annotations[Self.rotationsAnnotation].flatMap(Int64.init) ?? 0)
    }

    init(config: GatewayConnectionConfig, credential: Credential) {
        self.config = config
        self.credential = credential
    }

    /// The Secret as server-side apply intent of the operator's field manager.
    func applyConfiguration(namespace: String, connectionUID: String) throws -> JSONValue {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let configJSON = try encoder.encode(config)
        let name = GatewayConnectionConfig.secretName(namespace: config.namespace, name: config.name)
        let secret = Secret(
            metadata: ObjectMeta(
                name: name, namespace: namespace,
                labels: [
                    GatewayConnectionConfig.managedByLabel: GatewayConnectionConfig.managedByValue,
                    GatewayConnectionConfig.connectionNamespaceLabel: config.namespace,
                    GatewayConnectionConfig.connectionNameLabel: Self.labelValue(config.name),
                ],
                annotations: [
                    Self.issuedAtAnnotation: KubeTime.format(credential.issuedAt),
                    Self.expiresAtAnnotation: KubeTime.format(credential.expiresAt),
                    Self.serviceAccountAnnotation: credential.serviceAccount,
                    Self.serviceAccountUIDAnnotation: credential.serviceAccountUID,
                    Self.tokenTTLAnnotation: String(Int64(credential.tokenTTLSeconds)),
                    Self.rotationsAnnotation: String(credential.rotations),
                    Self.connectionUIDAnnotation: connectionUID,
                    Self.connectionAnnotation: "\(config.namespace)/\(config.name)",
                ]),
            type: "Opaque",
            data: [
                GatewayConnectionConfig.configKey: configJSON.base64EncodedString(),
                GatewayConnectionConfig.tokenKey: Data(credential.token.utf8).base64EncodedString(),
            ])
        return try JSONValue(encoding: secret)
    }

    /// Label values are at most 63 characters; object names may be longer.
    static func labelValue(_ name: String) -> String {
        name.count <= 63 ? name : String(name.prefix(63)).trimmingCharacters(in: CharacterSet(charactersIn: "-_."))
    }
}
