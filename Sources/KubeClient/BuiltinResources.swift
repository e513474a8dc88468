import Foundation
import KubeCore

/// The few built-in kinds the operator and gateway use, typed. Every optional is absent from
/// the JSON when nil (synthesised Codable), so an update or merge patch never clears a field by
/// accident. Kinds not here are used untyped (``JSONValue`` + ``ResourceType``).

public struct ConfigMap: KubernetesResource, Hashable {
    public static let group = "", version = "v1", plural = "configmaps", kind = "ConfigMap"
    public static let namespaced = true
    public var apiVersion: String = "v1"
    public var kind: String = "ConfigMap"
    public var metadata: ObjectMeta
    public var data: [String: String]?
    public var binaryData: [String: String]?
    public var immutable: Bool?

    public init(metadata: ObjectMeta, data: [String: String]? = nil) {
        self.metadata = metadata
        self.data = data
    }
}

public struct Secret: KubernetesResource, Hashable {
    public static let group = "", version = "v1", plural = "secrets", kind = "Secret"
    public static let namespaced = true
    public var apiVersion: String = "v1"
    public var kind: String = "Secret"
    public var metadata: ObjectMeta
    public var type: String?
    /// Values are base64, as on the wire.
    public var data: [String: String]?
    public var stringData: [String: String]?
    public var immutable: Bool?

    public init(metadata: ObjectMeta, type: String? = nil, data: [String: String]? = nil, stringData: [String: String]? = nil) {
        self.metadata = metadata
        self.type = type
        self.data = data
        self.stringData = stringData
    }
}

public struct ServiceAccount: KubernetesResource, Hashable {
    public static let group = "", version = "v1", plural = "serviceaccounts", kind = "ServiceAccount"
    public static let namespaced = true
    public var apiVersion: String = "v1"
    public var kind: String = "ServiceAccount"
    public var metadata: ObjectMeta
    public var automountServiceAccountToken: Bool?

    public init(metadata: ObjectMeta) { self.metadata = metadata }
}

public struct Namespace: KubernetesResource, Hashable {
    public static let group = "", version = "v1", plural = "namespaces", kind = "Namespace"
    public static let namespaced = false
    public var apiVersion: String = "v1"
    public var kind: String = "Namespace"
    public var metadata: ObjectMeta

    public init(name: String) { self.metadata = ObjectMeta(name: name) }
}

/// The answer of a TokenRequest (`serviceaccounts/<name>/token`).
public struct IssuedToken: Sendable, Hashable {
    public var token: String
    public var expirationTimestamp: Date
}
