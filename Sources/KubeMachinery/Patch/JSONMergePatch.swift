import KubeCore

/// JSON merge patch (RFC 7396, `application/merge-patch+json`): apply a patch and create one.
///
/// Contract: an object patch merges key by key into the target, `null` deletes a key, any
/// other value (arrays included) replaces the target's value whole. A non-object patch replaces
/// the whole target; kube-apiserver answers 400 "Invalid JSON Patch" for a body that is not an
/// object, which the caller checks before applying. `diff(from:to:)` is the inverse: applying
/// `diff(from: a, to: b)` to `a` yields `b` (for object documents), the way `kubectl label` and
/// `annotate` build the merge patches they send.
public enum JSONMergePatch {
    public static func apply(_ patch: JSONValue, to target: JSONValue) -> JSONValue {
        guard case .object(let patchMembers) = patch else { return patch }
        var result = target.objectValue ?? [:]
        for (key, value) in patchMembers {
            if value.isNull {
                result.removeValue(forKey: key)
            } else {
                // A key new to the target still merges into `{}`, which drops nulls nested in it.
                result[key] = apply(value, to: result[key] ?? .null)
            }
        }
        return .object(result)
    }

    /// The smallest merge patch that turns `from` into `to`. Equal documents give `{}`.
    public static func diff(from: JSONValue, to: JSONValue) -> JSONValue {
        guard case .object(let old) = from, case .object(let new) = to else {
            return from == to ? .object([:]) : to
        }
        var patch: [String: JSONValue] = [:]
        for key in old.keys where new[key] == nil {
            patch[key] = .null
        }
        for (key, newValue) in new {
            guard let oldValue = old[key] else {
                patch[key] = newValue
                continue
            }
            if oldValue == newValue { continue }
            if case .object = oldValue, case .object = newValue {
                patch[key] = diff(from: oldValue, to: newValue)
            } else {
                patch[key] = newValue
            }
        }
        return .object(patch)
    }
}
