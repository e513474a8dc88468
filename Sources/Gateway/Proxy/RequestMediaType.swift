/// An agent's `Content-Type`, read as kube-apiserver reads it.
///
/// The API server picks a decoder by the media type alone — the part before the first `;`,
/// without spaces, ASCII case folded (Go's `mime.ParseMediaType`) — and ignores parameters.
/// Every decision the gateway takes on a request body (which patch type, whether the body can
/// be read at all, how it is recorded) uses this same reading, so a parameter such as
/// `application/merge-patch+json; x=json-patch` cannot make the gateway read a body one way
/// while the server reads it another.
struct RequestMediaType: Sendable, Equatable {
    /// `type/subtype`, lowercased; empty when the header is absent or empty (the API server
    /// then reads JSON).
    let essence: String

    init(_ header: String?) {
        let value = header ?? ""
        let type = value.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        essence = String(type.filter { $0 != " " && $0 != "\t" }).lowercased()
    }

    static let jsonPatch = "application/json-patch+json"
    static let mergePatch = "application/merge-patch+json"
    static let strategicMergePatch = "application/strategic-merge-patch+json"
    static let applyPatchYAML = "application/apply-patch+yaml"
    static let protobuf = "application/vnd.kubernetes.protobuf"

    var isJSONPatch: Bool { essence == Self.jsonPatch }
    /// Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`, and its
    /// `;stream=watch` form, which has the same essence).
    var isProtobuf: Bool { essence.hasPrefix(Self.protobuf) }
    /// A server-side apply patch (`application/apply-patch+yaml`, or `+cbor` on newer servers).
    var isApplyPatch: Bool { essence.hasPrefix("application/apply-patch+") }
    /// CBOR (`application/cbor`, `application/apply-patch+cbor`): the gateway neither masks
    /// nor records it, so it is refused.
    var isCBOR: Bool { essence == "application/cbor" || essence.hasSuffix("+cbor") }
    var isYAML: Bool { essence == "application/yaml" || essence == Self.applyPatchYAML }
    /// JSON, or one of the JSON patch types; also an absent type, which the server reads as JSON.
    var isJSON: Bool {
        essence.isEmpty || essence == "application/json" || essence == Self.jsonPatch || essence == Self.mergePatch
            || essence == Self.strategicMergePatch
    }
    /// Whether the gateway can read (mask, record, match) a body of this type.
    var isReadable: Bool { isJSON || isYAML }

    /// The type to hand the masker: the essence, never the agent's raw header with parameters.
    var maskingContentType: String { essence.isEmpty ? "application/json" : essence }
}
