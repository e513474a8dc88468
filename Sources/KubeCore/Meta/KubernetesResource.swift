/// A typed Kubernetes object: Codable with `apiVersion`, `kind` and `metadata`, and static names
/// saying where it lives. Optional fields must be Swift optionals with synthesised (or
/// `encodeIfPresent`) Codable, so that `nil` is absent from what the client sends, never `null`.
public protocol KubernetesResource: Codable, Sendable {
    static var group: String { get }
    static var version: String { get }
    static var plural: String { get }
    static var kind: String { get }
    static var namespaced: Bool { get }
    var metadata: ObjectMeta { get set }
}
