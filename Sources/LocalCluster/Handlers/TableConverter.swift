import Foundation
import KubeCore

/// Builds `meta.k8s.io/v1` Tables (what `kubectl get` asks for): a CRD's
/// `additionalPrinterColumns` (date columns humanized, as apiextensions does), a built-in
/// kind's printer (``BuiltinPrinters``, kube-apiserver's columns), or else kube-apiserver's
/// default table, NAME and CREATED AT. Rows carry the object's metadata as
/// PartialObjectMetadata, as kube-apiserver's default `includeObject=Metadata` does.
struct TableConverter {
    let definition: ResourceDefinition
    var now = Date()

    init(definition: ResourceDefinition) {
        self.definition = definition
    }

    private var builtinPrinter: BuiltinPrinter? {
        guard !definition.isCustomResource else { return nil }
        return BuiltinPrinters.printer(group: definition.group, resource: definition.resource)
    }

    var columns: [PrinterColumn] {
        if let printer = builtinPrinter {
            return printer.namesFirst ? [BuiltinPrinters.name] + printer.columns : printer.columns
        }
        var columns = [PrinterColumn(name: "Name", type: "string", format: "name",
                                     description: "Name must be unique within a namespace.", priority: 0, jsonPath: ".metadata.name")]
        if definition.printerColumns.isEmpty && !definition.isCustomResource {
            columns.append(PrinterColumn(name: "Created At", type: "date", description: "CreationTimestamp", priority: 0,
                                         jsonPath: ".metadata.creationTimestamp"))
        } else if definition.printerColumns.isEmpty {
            columns.append(PrinterColumn(name: "Age", type: "date", description: "CreationTimestamp", priority: 0,
                                         jsonPath: ".metadata.creationTimestamp"))
        } else {
            columns += definition.printerColumns
            if !definition.printerColumns.contains(where: { $0.jsonPath == ".metadata.creationTimestamp" }) {
                columns.append(PrinterColumn(name: "Age", type: "date", priority: 0, jsonPath: ".metadata.creationTimestamp"))
            }
        }
        return columns
    }

    func table(for objects: [StoredObject], resourceVersion: String) -> JSONValue {
        let columns = self.columns
        let printer = builtinPrinter
        let definitions: [JSONValue] = columns.map { column in
            ["name": .string(column.name), "type": .string(column.type), "format": .string(column.format ?? ""),
             "description": .string(column.description ?? ""), "priority": .int(Int64(column.priority ?? 0))]
        }
        let defaultTable = printer == nil && definition.printerColumns.isEmpty && !definition.isCustomResource
        let rows: [JSONValue] = objects.map { stored in
            let object = stored.value()
            var row: JSONValue = [:]
            if let printer {
                let name: [JSONValue] = printer.namesFirst ? [.string(stored.name)] : []
                row["cells"] = .array(name + printer.cells(object, now))
                let conditions = printer.conditions(object)
                if !conditions.isEmpty { row["conditions"] = .array(conditions) }
            } else {
                row["cells"] = .array(columns.map { column in
                    let value = JSONPathLite.evaluate(column.jsonPath, on: object)
                    switch column.type {
                    case "date":
                        guard let text = value?.stringValue, let date = KubeTime.parse(text) else { return .null }
                        // The default table shows CREATED AT as a time; printer columns show an age.
                        return .string(defaultTable ? KubeTime.format(date) : Self.humanDuration(now.timeIntervalSince(date)))
                    case "integer", "number", "boolean":
                        return value ?? .null
                    default:
                        guard let value else { return .string("") }
                        if let text = value.stringValue { return .string(text) }
                        return .string(value.serializedString())
                    }
                })
            }
            var metadata = object["metadata"] ?? [:]
            metadata["managedFields"] = nil
            row["object"] = ["kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata]
            return row
        }
        return ["kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": ["resourceVersion": .string(resourceVersion)],
                "columnDefinitions": .array(definitions), "rows": .array(rows)]
    }

    /// kube's `duration.HumanDuration`: 45s, 5m10s, 3h, 2d5h, 400d.
    static func humanDuration(_ interval: TimeInterval) -> String {
        let seconds = Int(max(0, interval))
        if seconds < 120 { return "\(seconds)s" }
        let minutes = seconds / 60
        if minutes < 10 { return seconds % 60 == 0 ? "\(minutes)m" : "\(minutes)m\(seconds % 60)s" }
        if minutes < 180 { return "\(minutes)m" }
        let hours = minutes / 60
        if hours < 8 { return minutes % 60 == 0 ? "\(hours)h" : "\(hours)h\(minutes % 60)m" }
        if hours < 48 { return "\(hours)h" }
        let days = hours / 24
        if hours < 24 * 8 { return hours % 24 == 0 ? "\(days)d" : "\(days)d\(hours % 24)h" }
        return "\(days)d"
    }
}

/// The JSONPath subset printer columns use: `.a.b`, `.a[0]`, `.a[*].b`, and filters
/// `.conditions[?(@.type=="Ready")].status`. Returns the first match.
enum JSONPathLite {
    static func evaluate(_ path: String, on value: JSONValue) -> JSONValue? {
        var text = Substring(path.trimmingCharacters(in: CharacterSet(charactersIn: "{}")))
        var current: [JSONValue] = [value]
        while !text.isEmpty {
            if text.hasPrefix(".") {
                text = text.dropFirst()
                let name = text.prefix { $0 != "." && $0 != "[" }
                text = text.dropFirst(name.count)
                if name.isEmpty { continue }
                current = current.compactMap { $0[String(name)] }
            } else if text.hasPrefix("[") {
                guard let close = text.firstIndex(of: "]") else { return nil }
                let inner = text[text.index(after: text.startIndex)..<close]
                text = text[text.index(after: close)...]
                if inner == "*" {
                    current = current.flatMap { $0.arrayValue ?? [] }
                } else if let index = Int(inner) {
                    current = current.compactMap { element in
                        guard let array = element.arrayValue, index >= 0, index < array.count else { return nil }
                        return array[index]
                    }
                } else if inner.hasPrefix("?(@.") && inner.hasSuffix(")") {
                    let expression = inner.dropFirst(4).dropLast()
                    let pieces = expression.components(separatedBy: "==")
                    guard pieces.count == 2 else { return nil }
                    let field = pieces[0].trimmingCharacters(in: .whitespaces)
                    let expected = pieces[1].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
                    current = current.flatMap { element in
                        (element.arrayValue ?? []).filter { item in
                            let found = item[path: field.split(separator: ".").map(String.init)]
                            return found?.stringValue == expected || found.map { $0.serializedString() } == expected
                        }
                    }
                } else {
                    return nil
                }
            } else {
                return nil
            }
        }
        return current.first
    }
}
