import KubeCore

/// Strategic merge patch (`application/strategic-merge-patch+json`) for built-in kinds.
///
/// Contract: like a JSON merge patch (maps merge, `null` deletes), except that lists the
/// Kubernetes types declare with a `patchMergeKey` merge item by item on that key (containers,
/// volumes, env, ports, volumeMounts, ownerReferences, conditions, ... see
/// ``BuiltinListTypes``), `metadata.finalizers` merges as a set, and every other list is
/// replaced. The directives kubectl sends are honoured:
/// - `$patch: replace` in a map replaces the map; `{"$patch": "replace"}` in a list replaces the list;
/// - `$patch: delete` in a map deletes it; in a merge list it deletes the item with that key;
/// - `$deleteFromPrimitiveList/<field>: [...]` removes values from a primitive list;
/// - `$retainKeys: [...]` drops the target's keys that are not listed (kubectl sends it for union
///   fields such as Deployment `spec.strategy` and volume sources);
/// - `$setElementOrder/<field>` is validated and dropped: item order is the target's, with new
///   items appended.
/// Custom resources do not support this patch type (415), which the caller decides.
///
/// Errors carry kube-apiserver's code: malformed directives are 400, a patch that names keys
/// outside its `$retainKeys` is 422, a merge-list item without its merge key is 500 (the API
/// server passes that library error through unconverted).
public enum StrategicMergePatch {
    public static func apply(_ patch: JSONValue, to target: JSONValue, kind: String) throws -> JSONValue {
        guard case .object(let members) = patch else {
            throw PatchError.badRequest("invalid JSON document")
        }
        let merger = Merger(kind: kind)
        return .object(try merger.mergeMap(target.objectValue ?? [:], members, path: []) ?? [:])
    }

    private struct Merger {
        var kind: String

        /// Merges `patch` into `original`; `nil` means the map was deleted by `$patch: delete`.
        func mergeMap(_ original: [String: JSONValue], _ patch: [String: JSONValue],
                      path: [String]) throws -> [String: JSONValue]? {
            var patch = patch
            var result = original
            if let directive = patch.removeValue(forKey: "$patch") {
                switch directive.stringValue {
                case "replace": return try mergeMap([:], patch, path: path)
                case "delete": return nil
                case "merge": break
                default:
                    throw PatchError(message: "unknown patch type: \(goFormat(directive)) in map: \(goFormat(.object(patch)))", code: 500)
                }
            }
            if let retain = patch.removeValue(forKey: "$retainKeys") {
                guard let keys = retain.arrayValue?.compactMap(\.stringValue), keys.count == retain.arrayValue?.count else {
                    throw PatchError.badRequest("invalid patch format of retainKeys")
                }
                let allowed = Set(keys)
                let named = patch.keys.filter { !$0.hasPrefix("$") && !(patch[$0]?.isNull ?? true) }
                guard named.allSatisfy(allowed.contains) else {
                    throw PatchError.unprocessable("patch content doesn't match retainKeys list")
                }
                result = result.filter { allowed.contains($0.key) }
            }
            for key in patch.keys where key.hasPrefix("$deleteFromPrimitiveList/") {
                let field = String(key.dropFirst("$deleteFromPrimitiveList/".count))
                guard case .array(let doomed)? = patch.removeValue(forKey: key) else {
                    throw PatchError.badRequest("invalid patch format of primitive list")
                }
                if case .array(let items)? = result[field] {
                    result[field] = .array(items.filter { !doomed.contains($0) })
                }
            }
            for key in patch.keys where key.hasPrefix("$setElementOrder/") {
                guard case .array? = patch.removeValue(forKey: key) else {
                    throw PatchError.badRequest("invalid patch format of setElementOrder list")
                }
            }
            for key in patch.keys.sorted() {
                guard let value = patch[key] else { continue }
                let childPath = path + [key]
                switch value {
                case .null:
                    result.removeValue(forKey: key)
                case .object(let childPatch):
                    let childOriginal = result[key]?.objectValue ?? [:]
                    if let merged = try mergeMap(childOriginal, childPatch, path: childPath) {
                        result[key] = .object(merged)
                    } else {
                        result.removeValue(forKey: key)
                    }
                case .array(let items):
                    result[key] = .array(try mergeList(result[key]?.arrayValue, items, path: childPath))
                default:
                    result[key] = value
                }
            }
            return result
        }

        func mergeList(_ original: [JSONValue]?, _ patch: [JSONValue], path: [String]) throws -> [JSONValue] {
            switch BuiltinListTypes.mergeStrategy(kind: kind, path: path) {
            case .replace:
                return try patch.map(clean)
            case .mergePrimitives:
                return union(original ?? [], patch)
            case .mergeByKey(let mergeKey):
                guard patch.allSatisfy({ $0.objectValue != nil }) else {
                    // A list of scalars where objects were declared: merge as primitives, as the library does.
                    return union(original ?? [], patch)
                }
                return try mergeKeyed(original ?? [], patch, key: mergeKey, path: path)
            }
        }

        private func mergeKeyed(_ original: [JSONValue], _ patch: [JSONValue], key: String,
                                path: [String]) throws -> [JSONValue] {
            // `{"$patch": "replace"}` anywhere in the list: the patch's items are the whole list.
            let replacesList = patch.contains { $0.objectValue?["$patch"]?.stringValue == "replace" }
            var result = replacesList ? [] : original
            for item in patch {
                guard var members = item.objectValue else { continue }
                if let directive = members.removeValue(forKey: "$patch") {
                    switch directive.stringValue {
                    case "replace":
                        continue
                    case "delete":
                        guard let keyValue = members[key] else {
                            throw PatchError(message: "delete patch type with no merge key defined", code: 500)
                        }
                        result.removeAll { $0[key] == keyValue }
                        continue
                    case "merge":
                        break
                    default:
                        throw PatchError(message: "unknown patch type: \(goFormat(directive)) in map: \(goFormat(item))", code: 500)
                    }
                }
                guard let keyValue = members[key] else {
                    throw PatchError(message: "map: \(goFormat(item)) does not contain declared merge key: \(key)", code: 500)
                }
                if let index = result.firstIndex(where: { $0[key] == keyValue }) {
                    if let merged = try mergeMap(result[index].objectValue ?? [:], members, path: path) {
                        result[index] = .object(merged)
                    } else {
                        result.remove(at: index)
                    }
                } else if let merged = try mergeMap([:], members, path: path) {
                    result.append(.object(merged))
                }
            }
            return result
        }

        /// A value the patch sets whole: directives and nulls inside its maps are processed
        /// against an empty target, so none of them leak into the stored object.
        private func clean(_ value: JSONValue) throws -> JSONValue {
            guard case .object(let members) = value else { return value }
            return .object(try mergeMap([:], members, path: []) ?? [:])
        }

        private func union(_ original: [JSONValue], _ patch: [JSONValue]) -> [JSONValue] {
            var result = original
            for item in patch where !result.contains(item) { result.append(item) }
            return result
        }
    }
}
