import Foundation
import KubeCore

/// Field sets for server-side apply: which fields of an object a manager owns, in the
/// `FieldsV1` form `metadata.managedFields[].fieldsV1` carries.
///
/// Contract: a field path is a list of FieldsV1 tokens from the root: `f:<name>` for a map field,
/// `k:{"name":"c"}` for a list-map item (its key fields as compact JSON, keys sorted),
/// `v:<json>` for a set item. A set holds the paths a manager owns; a path with owned children is
/// itself a member only when it is a list-map item (`.` in FieldsV1) or an empty map/list.
/// `FieldSet(object:)` walks an object the way structured-merge-diff does: maps recurse, list-maps
/// and sets recurse per item, atomic lists and scalars are leaves. Server-maintained fields
/// (`apiVersion`, `kind`, `metadata.name/namespace/uid/resourceVersion/generation/
/// creationTimestamp/managedFields`, and `status` unless `subresource == "status"`) are never owned.
struct FieldSet: Equatable {
    typealias Path = [String]
    /// Member paths with the value found there (for list-map items: the item's key object), so
    /// two objects can be compared field by field.
    var members: [Path: JSONValue]

    init(members: [Path: JSONValue] = [:]) { self.members = members }

    var paths: Set<Path> { Set(members.keys) }
    var isEmpty: Bool { members.isEmpty }

    mutating func remove(_ paths: Set<Path>) {
        for path in paths { members.removeValue(forKey: path) }
    }

    mutating func insert(_ paths: Set<Path>) {
        for path in paths where members[path] == nil { members[path] = .null }
    }

    /// The kind of a list, from the schema.
    enum ListType { case atomic, set, map([String]) }

    struct Schema {
        var listMapKeys: ([String]) -> [String]?
        /// "" for the main resource, "status" for the status subresource.
        var subresource: String

        func listType(_ names: [String]) -> ListType {
            let keys = BuiltinListTypes.metadataListMapKeys(path: names) ?? listMapKeys(names)
            guard let keys else { return .atomic }
            return keys.isEmpty ? .set : .map(keys)
        }

        /// Whether a top-level or metadata field is outside field management.
        func isIgnored(_ names: [String]) -> Bool {
            if names.count == 1 {
                if subresource == "status" { return names[0] != "status" }
                return ["apiVersion", "kind", "status"].contains(names[0])
            }
            if names.count == 2, names[0] == "metadata" {
                return ["name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                        "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "managedFields"].contains(names[1])
            }
            return false
        }
    }

    /// The fields an object sets, with their values.
    init(object: JSONValue, schema: Schema) {
        var members: [Path: JSONValue] = [:]
        if case .object(let fields) = object {
            for (name, value) in fields where !schema.isIgnored([name]) {
                FieldSet.walk(value, path: ["f:" + name], names: [name], schema: schema, into: &members)
            }
        }
        self.members = members
    }

    private static func walk(_ value: JSONValue, path: Path, names: [String], schema: Schema,
                             into members: inout [Path: JSONValue]) {
        switch value {
        case .object(let fields) where !fields.isEmpty:
            for (name, child) in fields where !schema.isIgnored(names + [name]) {
                walk(child, path: path + ["f:" + name], names: names + [name], schema: schema, into: &members)
            }
        case .array(let items) where !items.isEmpty:
            switch schema.listType(names) {
            case .atomic:
                members[path] = value
            case .set:
                for item in items { members[path + ["v:" + item.serializedString()]] = item }
            case .map(let keys):
                guard let tokens = itemTokens(items, keys: keys) else {
                    members[path] = value  // items without their keys: keep the list whole
                    return
                }
                for (item, token) in zip(items, tokens) {
                    members[path + [token.token]] = token.key
                    walk(item, path: path + [token.token], names: names, schema: schema, into: &members)
                }
            }
        default:
            members[path] = value
        }
    }

    /// `k:{...}` tokens of list-map items; nil when an item is not an object, has none of the
    /// keys, or repeats another item's key.
    static func itemTokens(_ items: [JSONValue], keys: [String]) -> [(token: String, key: JSONValue)]? {
        var seen = Set<String>()
        var tokens: [(String, JSONValue)] = []
        for item in items {
            guard let key = itemKey(item, keys: keys) else { return nil }
            let token = "k:" + key.serializedString()
            guard seen.insert(token).inserted else { return nil }
            tokens.append((token, key))
        }
        return tokens
    }

    /// The key fields of a list-map item. `protocol` defaults to TCP, as Kubernetes defaults it
    /// before apply compares ports.
    static func itemKey(_ item: JSONValue, keys: [String]) -> JSONValue? {
        guard case .object(let fields) = item else { return nil }
        var key: [String: JSONValue] = [:]
        for name in keys {
            if let value = fields[name], !value.isNull {
                key[name] = value
            } else if name == "protocol" {
                key[name] = "TCP"
            }
        }
        return key.isEmpty ? nil : .object(key)
    }

    // MARK: - FieldsV1

    init(fieldsV1: JSONValue) {
        var members: [Path: JSONValue] = [:]
        FieldSet.decode(fieldsV1, path: [], into: &members)
        self.members = members
    }

    private static func decode(_ node: JSONValue, path: Path, into members: inout [Path: JSONValue]) {
        guard case .object(let children) = node else { return }
        if !path.isEmpty && (children.isEmpty || children["."] != nil) { members[path] = .null }
        for (token, child) in children where token != "." {
            decode(child, path: path + [token], into: &members)
        }
    }

    var fieldsV1: JSONValue {
        var root = Node()
        for path in members.keys { root.insert(path[...]) }
        return root.encoded
    }

    /// A FieldsV1 trie node: `member` is the path itself being owned.
    private struct Node {
        var member = false
        var children: [String: Node] = [:]

        mutating func insert(_ path: ArraySlice<String>) {
            guard let first = path.first else {
                member = true
                return
            }
            children[first, default: Node()].insert(path.dropFirst())
        }

        var encoded: JSONValue {
            var object = children.mapValues(\.encoded)
            if member && !children.isEmpty { object["."] = .object([:]) }
            return .object(object)
        }
    }

    // MARK: - Paths as kube-apiserver prints them

    /// `.spec.containers[name="app"].image`, the form conflict messages use.
    static func display(_ path: Path) -> String {
        var text = ""
        for token in path {
            let body = String(token.dropFirst(2))
            if token.hasPrefix("f:") {
                text += "." + body
            } else if token.hasPrefix("k:"), case .object(let key)? = try? JSONValue(parsing: body) {
                text += "[" + key.keys.sorted().map { "\($0)=\((key[$0] ?? .null).serializedString())" }.joined(separator: ",") + "]"
            } else if token.hasPrefix("v:") {
                text += "[=" + body + "]"
            } else {
                text += "[" + body + "]"
            }
        }
        return text
    }
}
