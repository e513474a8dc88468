import KubeCore
import Masking

/// Patches that could carry a masked value past the masking, or tell whether a guess of one is
/// right.
///
/// The masking hides many values by where they are: a Secret's `data`, `stringData` and
/// last-applied annotation, a container's `env` values, the field paths of a connection's
/// MaskingRules. Three kinds of patch reach behind it:
/// - An RFC 6902 `copy` or `move` takes a value from such a place to any other (a label, an
///   annotation), where the answer to that very patch shows it in clear. A JSON patch
///   (`kubectl patch --type=json`) may not `copy` or `move` at all through the gateway.
/// - A JSON patch `test` tells the agent whether a guessed value is right: it may `test` only
///   the fields that guard concurrent writes.
/// - A server-side apply without `force` answers 409 when it sets a field another manager owns
///   to a different value, and 200 when the value is the same: with `dryRun=All` that is a
///   free guessing oracle for a masked value. An apply patch that sets a masked field (one the
///   masking would change if the patch were an answer) must therefore say `force=true`
///   (`kubectl apply --server-side --force-conflicts`), which answers a right and a wrong
///   guess alike.
/// Merge and strategic-merge patches cannot read a value, and are not concerned. The patch
/// type is the media type as the API server reads it (``RequestMediaType``).
enum MaskedPatchGuard {
    /// What a JSON patch may `test`: the optimistic-concurrency fields, never masked.
    static let testable: Set<String> = ["/metadata/resourceVersion", "/metadata/uid", "/metadata/generation"]

    /// Why the request is refused, or nil.
    static func refusal(method: String, type: RequestMediaType, body: [UInt8], query: [String: [String]],
                        masker: Masker, kindHint: String?, resource: MaskedResource?) -> String? {
        guard method == "PATCH" else { return nil }
        if type.isJSONPatch { return jsonPatchRefusal(body) }
        if type.isApplyPatch, !(query["force"]?.first.map { $0 == "true" || $0 == "1" } ?? false) {
            return applyRefusal(body, type: type, masker: masker, kindHint: kindHint, resource: resource)
        }
        return nil
    }

    static func jsonPatchRefusal(_ body: [UInt8]) -> String? {
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

    static let forceAdvice = "a server-side apply that sets a masked field needs force=true through the gateway "
        + "(kubectl apply --server-side --force-conflicts): without it, a field-manager conflict would tell whether a guess of the masked value is right"

    static func applyRefusal(_ body: [UInt8], type: RequestMediaType, masker: Masker, kindHint: String?,
                             resource: MaskedResource?) -> String? {
        // The patch as the object it declares, in JSON; masked as if it were an answer. Anything
        // masking changes is a masked field. A body the gateway cannot read is refused too.
        let document: JSONValue?
        if type.isYAML {
            document = (try? JSONValue.parseYAMLDocuments(String(decoding: body, as: UTF8.self)))?.first
        } else {
            document = try? JSONValue(parsing: body)
        }
        guard let document else { return forceAdvice + " (the patch could not be read as YAML or JSON)" }
        let plain = document.serialized()
        return masker.maskJSON(plain, kindHint: kindHint, resource: resource) == plain ? nil : forceAdvice
    }
}
