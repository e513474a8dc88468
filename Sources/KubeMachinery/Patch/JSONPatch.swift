import KubeCore

/// JSON patch (RFC 6902, `application/json-patch+json`) as kube-apiserver applies it.
///
/// Contract: the patch is an array of operations (`add`, `remove`, `replace`, `move`, `copy`,
/// `test`) applied in order to a copy of the target; the first failing operation aborts the whole
/// patch. Paths are JSON pointers (RFC 6901: `~1` is `/`, `~0` is `~`), `-` appends to an array,
/// and negative indices count from the end, as in gopkg.in/evanphx/json-patch.v4, the library
/// kube-apiserver uses. Its quirks are kept where a client could tell: `replace` of a missing
/// object key adds it, `add` without a `value` adds null, `test` of a missing key with value
/// `null` passes.
///
/// Errors: a body that is not an array of objects is 400; more than 10,000 operations is 413;
/// an operation that does not apply is 422 with the fixed Status message "the server rejected our
/// request due to an error in our request" and the library's own message as the cause, e.g.
/// `add operation does not apply: doc is missing path: "/spec/x": missing value` or
/// `testing value /spec/replicas failed: test failed`.
public enum JSONPatch {
    /// kube-apiserver's `maxJSONPatchOperations`.
    public static let maxOperations = 10_000

    public static func apply(_ patch: JSONValue, to target: JSONValue) throws -> JSONValue {
        if patch.isNull { return target }  // Go decodes `null` as an empty patch
        guard case .array(let operations) = patch else {
            throw PatchError.badRequest("json: cannot unmarshal \(goTypeName(patch)) into Go value of type jsonpatch.Patch")
        }
        if operations.count > maxOperations {
            throw PatchError(message: "The allowed maximum operations in a JSON patch is \(maxOperations), got \(operations.count)",
                             code: 413)
        }
        var doc = target
        for operation in operations {
            guard case .object(let op) = operation else {
                throw PatchError.badRequest("json: cannot unmarshal \(goTypeName(operation)) into Go value of type jsonpatch.Operation")
            }
            do {
                try applyOperation(op, to: &doc)
            } catch let failure as Failure {
                throw PatchError.unprocessable(failure.message)
            }
        }
        return doc
    }

    /// A library error message; wrapped into the 422 at the top.
    struct Failure: Error { var message: String }

    private static func applyOperation(_ op: [String: JSONValue], to doc: inout JSONValue) throws {
        let kind = op["op"]?.stringValue ?? "unknown"
        let value = op["value"] ?? .null
        switch kind {
        case "add":
            let path = try pointer(op, "path", failure: "add operation failed to decode path: missing value")
            let (parent, key) = try container(doc, path, missing: "add operation does not apply: doc is missing path: \"\(path)\": missing value")
            try modify(&doc, at: parent) { try add(value, key: key, to: &$0, context: "error in add for path: '\(path)'") }
        case "remove":
            let path = try pointer(op, "path", failure: "remove operation failed to decode path: missing value")
            let (parent, key) = try container(doc, path, missing: "remove operation does not apply: doc is missing path: \"\(path)\": missing value")
            try modify(&doc, at: parent) { try remove(key: key, from: &$0, context: "error in remove for path: '\(path)'") }
        case "replace":
            let path = try pointer(op, "path", failure: "replace operation failed to decode path: operation missing path field: missing value")
            if path.isEmpty {
                guard value.objectValue != nil || value.arrayValue != nil else {
                    throw Failure(message: "replace operation value must be object or array")
                }
                doc = value
                return
            }
            let missingKey = "replace operation does not apply: doc is missing key: \(path): missing value"
            let (parent, key) = try container(doc, path, missing: "replace operation does not apply: doc is missing path: \(path): missing value")
            try modify(&doc, at: parent) { node in
                switch node {
                case .object(var members):
                    members[key] = value  // v4 adds a missing key instead of failing
                    node = .object(members)
                case .array(var items):
                    guard let index = try? arrayIndex(key, count: items.count, context: "") else { throw Failure(message: missingKey) }
                    items[index] = value
                    node = .array(items)
                default:
                    throw Failure(message: missingKey)
                }
            }
        case "move", "copy":
            let from = try pointer(op, "from", failure: "\(kind) operation failed to decode from: operation, missing from field: missing value")
            let (fromParent, fromKey) = try container(doc, from, missing: "\(kind) operation does not apply: doc is missing from path: \(from): missing value")
            let moved: JSONValue
            if kind == "move" {
                moved = try get(fromKey, in: node(doc, at: fromParent), context: "error in move for path: '\(fromKey)'")
                try modify(&doc, at: fromParent) { try remove(key: fromKey, from: &$0, context: "error in move for path: '\(fromKey)'") }
            } else {
                let source = node(doc, at: fromParent)
                if case .object(let members) = source, members[fromKey] == nil {
                    throw Failure(message: "copy operation does not apply: doc is missing from path: \(from): missing value")
                }
                moved = try get(fromKey, in: source, context: "error in copy for from: '\(from)'")
            }
            let path = try pointer(op, "path", failure: kind == "move" ? "move operation failed to decode path: operation missing path field: missing value"
                                                                        : "copy operation failed to decode path: missing value")
            let (parent, key) = try container(doc, path, missing: "\(kind) operation does not apply: doc is missing destination path: \(path): missing value")
            let context = kind == "move" ? "error in move for path: '\(path)'" : "error while adding value during copy"
            try modify(&doc, at: parent) { try add(moved, key: key, to: &$0, context: context) }
        case "test":
            let path = try pointer(op, "path", failure: "test operation failed to decode path: operation missing path field: missing value")
            let failed = Failure(message: "testing value \(path) failed: test failed")
            if path.isEmpty {
                guard doc == value else { throw failed }
                return
            }
            let (parent, key) = try container(doc, path, missing: "test operation does not apply: is missing path: \(path): missing value")
            let target = node(doc, at: parent)
            if case .object(let members) = target, members[key] == nil {
                // A missing key equals an explicit `"value": null` and nothing else.
                guard op["value"] == .null else { throw failed }
                return
            }
            let actual = try get(key, in: target, context: "error in test for path: '\(path)'")
            guard op["value"] != nil, actual == value else { throw failed }
        default:
            throw Failure(message: "Unexpected kind: \(kind)")
        }
    }

    // MARK: - Pointers

    /// One resolved step from a container to its child.
    private enum Step { case key(String), index(Int) }

    private static func pointer(_ op: [String: JSONValue], _ field: String, failure: String) throws -> String {
        guard let text = op[field]?.stringValue else { throw Failure(message: failure) }
        return text
    }

    private static func unescape(_ token: Substring) -> String {
        token.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
    }

    /// Resolves every token of `path` but the last to a container (object or array) and returns the
    /// steps to it and the last, unescaped token. Any unresolvable step is `missing`.
    private static func container(_ doc: JSONValue, _ path: String, missing: String) throws -> ([Step], String) {
        let tokens = path.split(separator: "/", omittingEmptySubsequences: false)
        guard tokens.count >= 2 else { throw Failure(message: missing) }
        var steps: [Step] = []
        var node = doc
        for token in tokens.dropFirst().dropLast() {
            let key = unescape(token)
            switch node {
            case .object(let members):
                guard let child = members[key], !child.isNull else { throw Failure(message: missing) }
                steps.append(.key(key))
                node = child
            case .array(let items):
                guard let index = try? arrayIndex(key, count: items.count, context: ""), index < items.count else {
                    throw Failure(message: missing)
                }
                steps.append(.index(index))
                node = items[index]
            default:
                throw Failure(message: missing)
            }
        }
        guard node.objectValue != nil || node.arrayValue != nil else { throw Failure(message: missing) }
        return (steps, unescape(tokens[tokens.count - 1]))
    }

    /// Go's `strconv.Atoi` then v4's negative-index rule: `-n` counts from the end. `count` is the
    /// number of valid positions (one more than the array length for `add`).
    private static func arrayIndex(_ key: String, count: Int, context: String) throws -> Int {
        guard let parsed = Int(key) else {
            let digits = key.drop(while: { $0 == "-" || $0 == "+" })
            let reason = !digits.isEmpty && digits.allSatisfy(\.isNumber) ? "value out of range" : "invalid syntax"
            throw Failure(message: prefixed(context, "strconv.Atoi: parsing \"\(key)\": \(reason)"))
        }
        if parsed >= count || parsed < -count {
            throw Failure(message: prefixed(context, "Unable to access invalid index: \(parsed): invalid index referenced"))
        }
        return parsed < 0 ? parsed + count : parsed
    }

    private static func prefixed(_ context: String, _ message: String) -> String {
        context.isEmpty ? message : "\(context): \(message)"
    }

    private static func node(_ doc: JSONValue, at steps: [Step]) -> JSONValue {
        var node = doc
        for step in steps {
            switch step {
            case .key(let key): node = node[key] ?? .null
            case .index(let index): node = node.arrayValue.flatMap { index < $0.count ? $0[index] : nil } ?? .null
            }
        }
        return node
    }

    /// Runs `body` on the container at `steps`, writing the change back up the tree.
    private static func modify(_ doc: inout JSONValue, at steps: [Step], _ body: (inout JSONValue) throws -> Void) throws {
        try modify(&doc, at: steps[...], body)
    }

    private static func modify(_ doc: inout JSONValue, at steps: ArraySlice<Step>, _ body: (inout JSONValue) throws -> Void) throws {
        guard let step = steps.first else { return try body(&doc) }
        switch (step, doc) {
        case (.key(let key), .object(var members)):
            var child = members[key] ?? .null
            try modify(&child, at: steps.dropFirst(), body)
            members[key] = child
            doc = .object(members)
        case (.index(let index), .array(var items)) where index < items.count:
            try modify(&items[index], at: steps.dropFirst(), body)
            doc = .array(items)
        default:
            throw Failure(message: "invalid state detected")
        }
    }

    // MARK: - Container operations

    private static func get(_ key: String, in node: JSONValue, context: String) throws -> JSONValue {
        switch node {
        case .object(let members):
            guard let child = members[key] else {
                throw Failure(message: prefixed(context, "Unable to remove nonexistent key: \(key): missing value"))
            }
            return child
        case .array(let items):
            return items[try arrayIndex(key, count: items.count, context: context)]
        default:
            throw Failure(message: prefixed(context, "invalid state detected"))
        }
    }

    private static func add(_ value: JSONValue, key: String, to node: inout JSONValue, context: String) throws {
        switch node {
        case .object(var members):
            members[key] = value
            node = .object(members)
        case .array(var items):
            if key == "-" {
                items.append(value)
            } else {
                let index: Int
                do {
                    index = try arrayIndex(key, count: items.count + 1, context: "")
                } catch let failure as Failure where failure.message.hasPrefix("strconv") {
                    throw Failure(message: prefixed(context, "value was not a proper array index: '\(key)': \(failure.message)"))
                } catch let failure as Failure {
                    throw Failure(message: prefixed(context, failure.message))
                }
                items.insert(value, at: index)
            }
            node = .array(items)
        default:
            throw Failure(message: prefixed(context, "invalid state detected"))
        }
    }

    private static func remove(key: String, from node: inout JSONValue, context: String) throws {
        switch node {
        case .object(var members):
            guard members.removeValue(forKey: key) != nil else {
                throw Failure(message: prefixed(context, "Unable to remove nonexistent key: \(key): missing value"))
            }
            node = .object(members)
        case .array(var items):
            items.remove(at: try arrayIndex(key, count: items.count, context: context))
            node = .array(items)
        default:
            throw Failure(message: prefixed(context, "invalid state detected"))
        }
    }

    /// The Go type name `encoding/json` reports for a value it cannot decode.
    private static func goTypeName(_ value: JSONValue) -> String {
        switch value {
        case .object: return "object"
        case .array: return "array"
        case .string: return "string"
        case .int, .double: return "number"
        case .bool: return "bool"
        case .null: return "null"
        }
    }
}
