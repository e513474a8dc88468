import KubeCore

/// The API group every AgentGate kind lives in, and the contract shared by the three kinds.
///
/// Each kind is a plain Codable struct (`apiVersion`, `kind`, `metadata`, `spec`, `status`)
/// whose optionals are left out of the JSON when `nil` (synthesised `encodeIfPresent`), so a
/// typed client never sends `null` and never claims fields it does not set under server-side
/// apply. Fields mirror the CRD schemas in `CRDs/`; a test (`CRDSchemaDriftTests`) fails when
/// the two drift apart.
public enum AgentGateGroup {
    public static let name = "agentgate.io"
    public static let version = "v1alpha1"
    /// `agentgate.io/v1alpha1`.
    public static let apiVersion = "\(name)/\(version)"
}

/// The release this binary was built from (`agentgate version`).
public enum AgentGateVersion {
    public static let current = "0.1.0-dev"
}

/// What the operator, the gateway and the embedded API server need to know about any of the
/// three kinds without switching on the concrete type.
public protocol AgentGateObject: KubernetesResource, Hashable {
    associatedtype Spec: Codable & Sendable & Hashable
    associatedtype Status: Codable & Sendable & Hashable
    /// Names of the kind (plural, short name, list kind...).
    static var kindInfo: AgentGateKind { get }
    var apiVersion: String { get set }
    var kind: String { get set }
    var metadata: ObjectMeta { get set }
    var spec: Spec { get set }
    var status: Status? { get set }
}

extension AgentGateObject {
    public static var group: String { kindInfo.group }
    public static var version: String { kindInfo.version }
    public static var plural: String { kindInfo.plural }
    public static var kind: String { kindInfo.kind }
    public static var namespaced: Bool { kindInfo.namespaced }

    /// `namespace/name`, the work-queue key controllers use.
    public var key: String { "\(metadata.namespace ?? "")/\(metadata.name ?? "")" }
}

/// A list of one kind, as `GET .../agentconnections` returns it.
public struct AgentGateList<Item: AgentGateObject>: Codable, Sendable, Hashable {
    public var apiVersion: String
    public var kind: String
    public var metadata: ListMeta
    public var items: [Item]

    public init(items: [Item], metadata: ListMeta = ListMeta()) {
        self.apiVersion = AgentGateGroup.apiVersion
        self.kind = Item.kindInfo.listKind
        self.metadata = metadata
        self.items = items
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        apiVersion = try container.decodeIfPresent(String.self, forKey: .apiVersion) ?? AgentGateGroup.apiVersion
        kind = try container.decodeIfPresent(String.self, forKey: .kind) ?? Item.kindInfo.listKind
        metadata = try container.decodeIfPresent(ListMeta.self, forKey: .metadata) ?? ListMeta()
        // Other writers may leave out an empty `items`; read that as no items.
        items = try container.decodeIfPresent([Item].self, forKey: .items) ?? []
    }
}
