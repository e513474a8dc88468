import KubeCore
import Masking

/// JSON patch operations that could carry a masked value past the masking.
///
/// The masking hides many values by where they are: a Secret's `data`, `stringData` and
/// last-applied annotation, a container's `env` values, the field paths of a connection's
/// MaskingRules. An RFC 6902 `copy` or `move` takes a value from such a place to any other (a
/// label, an annotation), where the answer to that very patch shows it in clear; a `test`
/// tells the agent whether a guessed value is right. So a JSON patch (`kubectl patch
/// --type=json`) may not `copy` or `move` at all through the gateway, and may `test` only the
/// fields that guard concurrent writes. Merge, strategic-merge and apply patches cannot read a
/// value, and are not concerned.
enum MaskedPatchGuard {
    /// What a JSON patch may `test`: the optimistic-concurrency fields, never masked.
    static let testable: Set<String> = ["/metadata/resourceVersion", "/metadata/uid", "/metadata/generation"]

    /// Why the request is refused, or nil.
    static func refusal(method: String, contentType: String?, body: [UInt8]) -> String? {
        guard method == "PATCH", MediaType.mentions(contentType, "json-patch") else { return nil }
        // A body that is not an array of operations is for the API server to refuse.
        guard case .array(let operations)? = try? JSONValue(parsing: body) else { return nil }
        for operation in operations {
            switch operation["op"]?.stringValue {
            case let op? where op == "copy" || op == "move":
                return "a JSON patch may not \(op) through the gateway (from \(operation["from"]?.stringValue ?? "?")): "
                    + "\(op) can carry a value the masking hides to a field it does not; use a merge or strategic-merge patch"
            case "test"?:
                let path = operation["path"]?.stringValue ?? ""
                guard testable.contains(path) else {
                    return "a JSON patch may test only \(testable.sorted().joined(separator: ", ")) through the gateway, not \(path): "
                        + "a test would tell whether a guess of a masked value is right"
                }
            default:
                continue
            }
        }
        return nil
    }
}
