import Foundation
import KubeCore

/// Server-side apply (`application/apply-patch+yaml`) and field ownership in `metadata.managedFields`.
///
/// Contract, as kube-apiserver with structured-merge-diff behaves:
/// - `apply` merges the applied configuration into the live object (maps by field, list-maps by
///   their keys, sets by value, atomic lists and scalars replaced) and makes the applying manager
///   (operation `Apply`) own exactly the fields of that configuration.
/// - A field another manager owns whose value the apply would change is a conflict: 409
///   `Apply failed with 1 conflict: conflict with "other": .spec.x`, unless `force`, which moves
///   ownership to the applier. Setting a field to the value it already has shares ownership.
/// - Fields the manager applied before but omits now are removed, unless another manager owns
///   them (or something below them).
/// - `apiVersion`, `kind`, `metadata.name/namespace/uid/resourceVersion/generation/
///   creationTimestamp` are never owned; `status` in the configuration is ignored on the main
///   resource (the caller serves `/status`, passing `subresource: "status"`).
/// - An object that has no managedFields yet is treated as owned by `before-first-apply`
///   (operation `Update`), so a first apply cannot silently take fields someone else wrote.
/// - Applying what is already there returns the live object unchanged (no new resourceVersion).
/// - `recordUpdate` records a non-apply write (create, update, JSON/merge/strategic patch): the
///   manager takes the fields that changed, other managers lose them, removed fields are
///   forgotten. No conflicts: an update always wins.
///
/// `listMapKeys(path)` gives a list's type from the schema: `x-kubernetes-list-map-keys` for a map,
/// `[]` for `x-kubernetes-list-type: set`, `nil` for atomic. The path is the list's field names
/// from the root, list items not counted. `metadata.finalizers` (set) and
/// `metadata.ownerReferences` (map on `uid`) are known without asking; ``BuiltinListTypes``
/// answers for built-in kinds.
public struct ServerSideApply {
    public static func apply(config: JSONValue, to live: JSONValue?, manager: String, force: Bool, now: Date,
                             subresource: String = "",
                             listMapKeys: @escaping (_ path: [String]) -> [String]?) throws -> JSONValue {
        guard case .object = config else {
            throw PatchError.badRequest("the body of an apply patch must be an object")
        }
        if let managed = config[path: ["metadata", "managedFields"]], !managed.isNull {
            throw PatchError.badRequest("metadata.managedFields must be nil")
        }
        let schema = FieldSet.Schema(listMapKeys: listMapKeys, subresource: subresource)
        let applied = scoped(withoutNulls(config), subresource: subresource)
        let liveObject = live ?? .object([:])
        let apiVersion = config["apiVersion"]?.stringValue ?? liveObject["apiVersion"]?.stringValue ?? ""
        let timestamp = KubeTime.format(now)

        var managers = ManagedFieldsEntry.decode(liveObject)
        if live != nil && managers.isEmpty {
            let owned = FieldSet(object: liveObject, schema: schema)
            if !owned.isEmpty {
                managers = [ManagedFieldsEntry(manager: "before-first-apply", operation: "Update",
                                               apiVersion: liveObject["apiVersion"]?.stringValue ?? apiVersion,
                                               time: timestamp, fields: owned)]
            }
        }
        let selfIndex = managers.firstIndex { $0.isApplier(manager, subresource: subresource) }
        let previous = selfIndex.map { managers[$0].fields.paths } ?? []
        let appliedFields = FieldSet(object: applied, schema: schema)

        // Merge, then drop what this manager applied last time and nobody owns any more.
        var merged = merge(liveObject, applied, names: [], schema: schema)
        var owners = appliedFields.paths
        for (index, entry) in managers.enumerated() where index != selfIndex { owners.formUnion(entry.fields.paths) }
        let doomed = previous.subtracting(appliedFields.paths)
            .filter { path in !owners.contains { $0.starts(with: path) } }
            .sorted { $0.count < $1.count }  // parents first: removing a list item needs its key fields
        for path in doomed { remove(path[...], from: &merged, names: [], schema: schema) }

        // Conflicts: other managers' fields whose value changes.
        let before = FieldSet(object: liveObject, schema: schema).members
        let after = FieldSet(object: merged, schema: schema).members
        let changed = Set(after.filter { before[$0.key] != $0.value }.keys)
        let removed = Set(before.keys).subtracting(after.keys)
        var conflicts: [(manager: ManagedFieldsEntry, path: FieldSet.Path)] = []
        for (index, entry) in managers.enumerated() where index != selfIndex {
            for path in entry.fields.paths.intersection(changed).sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                conflicts.append((entry, path))
            }
        }
        if !conflicts.isEmpty && !force { throw conflictError(conflicts) }

        var updated = managers
        for index in updated.indices where index != selfIndex {
            updated[index].fields.remove(changed.union(removed))
        }
        let objectChanged = merged != liveObject
        if let selfIndex {
            updated[selfIndex].fields = FieldSet(members: appliedFields.members.mapValues { _ in .null })
            updated[selfIndex].apiVersion = apiVersion
            if objectChanged || updated[selfIndex].fields.paths != previous { updated[selfIndex].time = timestamp }
        } else {
            updated.append(ManagedFieldsEntry(manager: manager, operation: "Apply", apiVersion: apiVersion,
                                              time: timestamp, subresource: subresource,
                                              fields: FieldSet(members: appliedFields.members.mapValues { _ in .null })))
        }
        updated.removeAll { $0.fields.isEmpty }
        if let live, !objectChanged, ManagedFieldsEntry.encode(updated) == ManagedFieldsEntry.encode(ManagedFieldsEntry.decode(live)) {
            return live
        }
        return ManagedFieldsEntry.store(updated, in: merged)
    }

    /// Records a non-apply write by `manager` (operation `Update`): returns `new` with
    /// managedFields updated. `old` is nil for a create. Without `listMapKeys` the lists of the
    /// object's kind are looked up in ``BuiltinListTypes``.
    public static func recordUpdate(old: JSONValue?, new: JSONValue, manager: String, operation: String = "Update",
                                    now: Date, subresource: String = "",
                                    listMapKeys: ((_ path: [String]) -> [String]?)? = nil) -> JSONValue {
        let kind = new["kind"]?.stringValue ?? ""
        let schema = FieldSet.Schema(listMapKeys: listMapKeys ?? { BuiltinListTypes.listMapKeys(kind: kind, path: $0) },
                                     subresource: subresource)
        let oldObject = old ?? .object([:])
        // A client may write managedFields itself (kubectl edit sends them back); an empty list
        // keeps the live ones, as kube-apiserver protects clients that do not know the field.
        var managers = ManagedFieldsEntry.decode(new)
        if managers.isEmpty { managers = ManagedFieldsEntry.decode(oldObject) }

        let before = FieldSet(object: oldObject, schema: schema).members
        let after = FieldSet(object: new, schema: schema).members
        let changed = Set(after.filter { before[$0.key] != $0.value }.keys)
        let removed = Set(before.keys).subtracting(after.keys)
        let apiVersion = new["apiVersion"]?.stringValue ?? ""
        let selfIndex = managers.firstIndex {
            $0.manager == manager && $0.operation == operation && $0.apiVersion == apiVersion && $0.subresource == subresource
        }
        for index in managers.indices where index != selfIndex {
            managers[index].fields.remove(changed.union(removed))
        }
        if !changed.isEmpty {
            let timestamp = KubeTime.format(now)
            if let selfIndex {
                managers[selfIndex].fields.remove(removed)
                managers[selfIndex].fields.insert(changed)
                managers[selfIndex].time = timestamp
            } else {
                managers.append(ManagedFieldsEntry(manager: manager, operation: operation, apiVersion: apiVersion,
                                                   time: timestamp, subresource: subresource,
                                                   fields: FieldSet(members: Dictionary(uniqueKeysWithValues: changed.map { ($0, .null) }))))
            }
        } else if let selfIndex {
            managers[selfIndex].fields.remove(removed)
        }
        managers.removeAll { $0.fields.isEmpty }
        return ManagedFieldsEntry.store(managers, in: new)
    }

    // MARK: - Object surgery

    /// The applied configuration as it is merged: `status` dropped on the main resource, only
    /// `status` kept on the status subresource; managedFields never merged.
    private static func scoped(_ config: JSONValue, subresource: String) -> JSONValue {
        guard case .object(var fields) = config else { return config }
        if subresource == "status" {
            fields = fields.filter { ["apiVersion", "kind", "metadata", "status"].contains($0.key) }
        } else {
            fields.removeValue(forKey: "status")
        }
        if case .object(var metadata)? = fields["metadata"] {
            for key in ["managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink",
                        "deletionTimestamp", "deletionGracePeriodSeconds"] {
                metadata.removeValue(forKey: key)
            }
            fields["metadata"] = .object(metadata)
        }
        return .object(fields)
    }

    /// Nulls in an applied configuration mean "not set".
    private static func withoutNulls(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let fields): return .object(fields.filter { !$0.value.isNull }.mapValues(withoutNulls))
        case .array(let items): return .array(items.map(withoutNulls))
        default: return value
        }
    }

    static func merge(_ live: JSONValue?, _ config: JSONValue, names: [String], schema: FieldSet.Schema) -> JSONValue {
        switch config {
        case .object(let fields):
            var result = live?.objectValue ?? [:]
            for (name, value) in fields {
                result[name] = merge(result[name], value, names: names + [name], schema: schema)
            }
            return .object(result)
        case .array(let items):
            guard case .array(let liveItems)? = live else { return config }
            switch schema.listType(names) {
            case .atomic:
                return config
            case .set:
                return .array(liveItems + items.filter { !liveItems.contains($0) })
            case .map(let keys):
                guard FieldSet.itemTokens(items, keys: keys) != nil,
                      FieldSet.itemTokens(liveItems, keys: keys) != nil else { return config }
                var result = liveItems
                for item in items {
                    let key = FieldSet.itemKey(item, keys: keys)
                    if let index = result.firstIndex(where: { FieldSet.itemKey($0, keys: keys) == key }) {
                        result[index] = merge(result[index], item, names: names, schema: schema)
                    } else {
                        result.append(item)
                    }
                }
                return .array(result)
            }
        default:
            return config
        }
    }

    /// Removes the field at `path`; a map left empty by the removal goes too.
    static func remove(_ path: ArraySlice<String>, from value: inout JSONValue, names: [String], schema: FieldSet.Schema) {
        guard let token = path.first else { return }
        let rest = path.dropFirst()
        let body = String(token.dropFirst(2))
        if token.hasPrefix("f:"), case .object(var fields) = value, var child = fields[body] {
            if rest.isEmpty {
                fields.removeValue(forKey: body)
            } else {
                remove(rest, from: &child, names: names + [body], schema: schema)
                let emptied = (child.objectValue?.isEmpty ?? false) && !(fields[body]?.objectValue?.isEmpty ?? true)
                if emptied { fields.removeValue(forKey: body) } else { fields[body] = child }
            }
            value = .object(fields)
        } else if case .array(var items) = value, let target = try? JSONValue(parsing: body) {
            let index: Int?
            if token.hasPrefix("k:"), case .map(let keys) = schema.listType(names) {
                index = items.firstIndex { FieldSet.itemKey($0, keys: keys) == target }
            } else if token.hasPrefix("v:") {
                index = items.firstIndex(of: target)
            } else {
                index = nil
            }
            guard let index else { return }
            if rest.isEmpty {
                items.remove(at: index)
            } else {
                remove(rest, from: &items[index], names: names, schema: schema)
            }
            value = .array(items)
        }
    }

    // MARK: - Conflicts

    private static func conflictError(_ conflicts: [(manager: ManagedFieldsEntry, path: FieldSet.Path)]) -> PatchError {
        let causes = conflicts.map {
            StatusCause(reason: "FieldManagerConflict", message: "conflict with \($0.manager.printed)",
                        field: FieldSet.display($0.path))
        }
        let lines = conflicts.map { "conflict with \($0.manager.printed): \(FieldSet.display($0.path))" }
        let message: String
        if conflicts.count == 1 {
            message = "Apply failed with 1 conflict: \(lines[0])"
        } else {
            // Grouped per manager, managers sorted, as kube-apiserver prints them.
            let grouped = Dictionary(grouping: conflicts, by: { $0.manager.printed })
            let parts = grouped.keys.sorted().flatMap { manager in
                ["conflicts with \(manager):"] + (grouped[manager] ?? []).map { "- \(FieldSet.display($0.path))" }
            }
            message = "Apply failed with \(conflicts.count) conflicts: " + parts.joined(separator: "\n")
        }
        return PatchError(message: message, code: 409, reason: "Conflict", conflicts: lines, causes: causes)
    }
}
