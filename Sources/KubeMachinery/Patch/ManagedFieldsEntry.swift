import Foundation
import KubeCore

/// One `metadata.managedFields` entry (metav1.ManagedFieldsEntry) and its round trip.
///
/// Contract: entries are written as kube-apiserver writes them — `manager`, `operation`
/// (`Apply`/`Update`), `apiVersion`, `time` (RFC 3339, seconds), `fieldsType: FieldsV1`, `fieldsV1`,
/// and `subresource` when not empty — sorted by operation, then time, then manager. Entries this
/// code cannot read are dropped rather than failing the write. A manager's identity is its name,
/// operation and subresource, plus the apiVersion for `Update` (appliers keep one entry across
/// versions), as in apiserver's `BuildManagerIdentifier`.
struct ManagedFieldsEntry {
    var manager: String
    var operation: String
    var apiVersion: String
    var time: String?
    var subresource: String = ""
    var fields: FieldSet

    init(manager: String, operation: String, apiVersion: String, time: String?, subresource: String = "",
         fields: FieldSet) {
        self.manager = manager
        self.operation = operation
        self.apiVersion = apiVersion
        self.time = time
        self.subresource = subresource
        self.fields = fields
    }

    init?(_ json: JSONValue) {
        guard let manager = json["manager"]?.stringValue, let operation = json["operation"]?.stringValue else { return nil }
        self.manager = manager
        self.operation = operation
        self.apiVersion = json["apiVersion"]?.stringValue ?? ""
        self.time = json["time"]?.stringValue
        self.subresource = json["subresource"]?.stringValue ?? ""
        self.fields = FieldSet(fieldsV1: json["fieldsV1"] ?? .object([:]))
    }

    func isApplier(_ name: String, subresource: String) -> Bool {
        manager == name && operation == "Apply" && self.subresource == subresource
    }

    var json: JSONValue {
        var entry: [String: JSONValue] = [
            "manager": .string(manager), "operation": .string(operation), "apiVersion": .string(apiVersion),
            "fieldsType": "FieldsV1", "fieldsV1": fields.fieldsV1,
        ]
        if let time { entry["time"] = .string(time) }
        if !subresource.isEmpty { entry["subresource"] = .string(subresource) }
        return .object(entry)
    }

    /// The manager as conflict messages name it: `"kubectl"`, `"kubectl-edit" using apps/v1`.
    var printed: String {
        var text = quoted(manager)
        if !subresource.isEmpty { text += " with subresource \(quoted(subresource))" }
        if operation == "Update" { text += " using \(apiVersion)" }
        return text
    }

    private func quoted(_ text: String) -> String { JSONValue.string(text).serializedString() }

    static func decode(_ object: JSONValue) -> [ManagedFieldsEntry] {
        (object[path: ["metadata", "managedFields"]]?.arrayValue ?? []).compactMap(ManagedFieldsEntry.init)
    }

    static func encode(_ entries: [ManagedFieldsEntry]) -> JSONValue {
        let sorted = entries.sorted { a, b in
            if a.operation != b.operation { return a.operation < b.operation }
            let (ta, tb) = (a.time.flatMap(KubeTime.parse) ?? .distantPast, b.time.flatMap(KubeTime.parse) ?? .distantPast)
            if ta != tb { return ta < tb }
            if a.manager != b.manager { return a.manager < b.manager }
            if a.apiVersion != b.apiVersion { return a.apiVersion < b.apiVersion }
            return a.subresource < b.subresource
        }
        return .array(sorted.map(\.json))
    }

    /// `object` with its managedFields replaced; none at all when no manager owns anything.
    static func store(_ entries: [ManagedFieldsEntry], in object: JSONValue) -> JSONValue {
        var result = object
        if entries.isEmpty {
            if result[path: ["metadata", "managedFields"]] != nil {
                var metadata = result["metadata"]?.objectValue ?? [:]
                metadata.removeValue(forKey: "managedFields")
                result["metadata"] = .object(metadata)
            }
            return result
        }
        result.set(encode(entries), at: ["metadata", "managedFields"])
        return result
    }
}
