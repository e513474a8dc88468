import Foundation

/// The four PATCH content types kube-apiserver accepts. Applying them (and `PatchError`) is
/// KubeMachinery's job; this value stays here so clients can name the type they send.
///
/// Contract: `PatchType(contentType:)` matches the media type only (parameters such as
/// `;charset=utf-8` are ignored, case-insensitively), so the API server can map a request's
/// `Content-Type` header straight to an algorithm; an unknown type is `nil` and the server answers
/// 415 (``Status/unsupportedMediaType(_:)``). Strategic merge patch is for built-in kinds only;
/// custom resources answer 415 for it (API-SEMANTICS item 7), which the caller decides.
public enum PatchType: String, Sendable, CaseIterable {
    case json = "application/json-patch+json"
    case merge = "application/merge-patch+json"
    case strategicMerge = "application/strategic-merge-patch+json"
    case apply = "application/apply-patch+yaml"

    public init?(contentType: String) {
        let mediaType = contentType.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
        let normalized = mediaType.trimmingCharacters(in: .whitespaces).lowercased()
        // kube-apiserver also accepts the CBOR flavour of apply; we only speak JSON/YAML.
        guard let type = PatchType(rawValue: normalized) else { return nil }
        self = type
    }
}
