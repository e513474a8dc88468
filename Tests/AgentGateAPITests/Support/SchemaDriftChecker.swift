import Foundation
import KubeCore

/// Checks a Swift Codable type against a CRD's `openAPIV3Schema`, in both directions.
///
/// It decodes the type with ``SchemaDrivenDecoder``, a `Decoder` whose values come from the
/// schema instead of a document: every key the Swift type asks for must be a property of the
/// schema node at that path, with a compatible type, the same optionality (non-optional Swift
/// field ⇔ listed in `required`) and, for `CaseIterable` string enums, the same values as the
/// schema's `enum`. The decoder answers with a value the schema allows (the first enum value,
/// the default, a one-element array), so decoding reaches every field. Afterwards each schema
/// property the type never asked for is reported. `metadata` is opaque at the top level (it
/// is metav1.ObjectMeta, which the CRD cannot restrict), and `additionalProperties` maps are
/// checked through their value schema (path segment `*`).
enum SchemaDriftChecker {
    /// Problems found, sorted; empty when the type and the schema agree.
    static func check<T: Decodable>(_ type: T.Type, against schema: JSONValue) -> [String] {
        let recorder = DriftRecorder()
        let decoder = SchemaDrivenDecoder(recorder: recorder, schema: schema, path: [], codingPath: [])
        do {
            _ = try T(from: decoder)
        } catch {
            recorder.problems.insert("decoding \(T.self) stopped: \(error)")
            return recorder.problems.sorted()
        }
        for path in schemaPaths(schema, prefix: []) where !recorder.visited.contains(path) {
            recorder.problems.insert("CRD field \(path) has no Swift field")
        }
        return recorder.problems.sorted()
    }

    /// Every property path in a schema (`spec.identity.audiences`, `status.conditions[].type`).
    static func schemaPaths(_ schema: JSONValue, prefix: [String]) -> [String] {
        var paths: [String] = []
        if let properties = schema["properties"]?.objectValue {
            for (name, child) in properties {
                let childPath = prefix + [name]
                paths.append(DriftRecorder.display(childPath))
                if prefix.isEmpty && name == "metadata" { continue }
                paths += schemaPaths(child, prefix: childPath)
            }
        }
        if let items = schema["items"], items.objectValue != nil {
            paths += schemaPaths(items, prefix: prefix + ["[]"])
        }
        if let values = schema["additionalProperties"], values.objectValue != nil {
            paths += schemaPaths(values, prefix: prefix + ["*"])
        }
        return paths
    }
}

/// Shared, mutable state of one check (decoders and containers are values).
final class DriftRecorder {
    var problems: Set<String> = []
    /// Display paths of schema nodes the Swift type asked for.
    var visited: Set<String> = []
    /// Paths the Swift type asked about with `contains` (synthesised `decodeIfPresent`), so
    /// a later `decode` at the same path belongs to an optional field.
    var askedOptionally: Set<String> = []

    static func display(_ path: [String]) -> String {
        var text = ""
        for segment in path {
            if segment == "[]" { text += "[]" } else { text += text.isEmpty ? segment : "." + segment }
        }
        return text.isEmpty ? "<root>" : text
    }
}

/// Index keys for unkeyed containers and the synthetic map key.
struct SchemaCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) {
        self.stringValue = "\(intValue)"
        self.intValue = intValue
    }
}

struct SchemaDrivenDecoder: Decoder {
    let recorder: DriftRecorder
    /// The schema node for the value being decoded; `.null` once outside the schema (after a
    /// reported problem), where any shape is accepted silently so decoding can go on.
    let schema: JSONValue
    let path: [String]
    var codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    var displayPath: String { DriftRecorder.display(path) }
    var schemaType: String? { schema["type"]?.stringValue }
    var isOutsideSchema: Bool { schema.isNull }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        if !isOutsideSchema && schemaType != "object" {
            recorder.problems.insert("Swift field \(displayPath) is an object but the CRD declares type \(schemaType ?? "none")")
        }
        return KeyedDecodingContainer(SchemaKeyedContainer<Key>(decoder: self))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        if !isOutsideSchema && schemaType != "array" {
            recorder.problems.insert("Swift field \(displayPath) is an array but the CRD declares type \(schemaType ?? "none")")
        }
        return SchemaUnkeyedContainer(decoder: self)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer {
        SchemaSingleValueContainer(decoder: self)
    }

    func child(schema: JSONValue, segment: String, key: CodingKey) -> SchemaDrivenDecoder {
        SchemaDrivenDecoder(recorder: recorder, schema: schema, path: path + [segment], codingPath: codingPath + [key])
    }

    /// Decodes `T` at this node, with the checks that need the Swift type itself: opaque
    /// `metadata`, free-form `JSONValue`, and enum cases against the schema's `enum`.
    func decodeValue<T: Decodable>(_ type: T.Type) throws -> T {
        if path == ["metadata"] {
            // metav1.ObjectMeta is opaque to the CRD schema; decode it from a real object.
            let metadata: JSONValue = ["name": "sample", "namespace": "default"]
            return try metadata.decode(T.self)
        }
        if T.self == JSONValue.self, let value = JSONValue.object([:]) as? T {
            if !isOutsideSchema && schema["x-kubernetes-preserve-unknown-fields"]?.boolValue != true {
                recorder.problems.insert("Swift field \(displayPath) is free-form JSON but the CRD does not preserve unknown fields")
            }
            return value
        }
        if let enumType = T.self as? any (CaseIterable & RawRepresentable).Type, !isOutsideSchema {
            checkEnum(swiftValues: Self.rawValues(enumType), swiftType: "\(T.self)")
        }
        return try T(from: self)
    }

    private static func rawValues<E: CaseIterable & RawRepresentable>(_ type: E.Type) -> [String] {
        E.allCases.compactMap { $0.rawValue as? String }
    }

    private func checkEnum(swiftValues: [String], swiftType: String) {
        guard let schemaValues = schema["enum"]?.arrayValue?.compactMap(\.stringValue) else {
            recorder.problems.insert("Swift enum \(swiftType) at \(displayPath) has no enum in the CRD schema")
            return
        }
        let onlySwift = Set(swiftValues).subtracting(schemaValues).sorted()
        let onlyCRD = Set(schemaValues).subtracting(swiftValues).sorted()
        if !onlySwift.isEmpty {
            recorder.problems.insert("Swift enum \(swiftType) values \(onlySwift) are not in the CRD enum at \(displayPath)")
        }
        if !onlyCRD.isEmpty {
            recorder.problems.insert("CRD enum values \(onlyCRD) at \(displayPath) have no case in Swift enum \(swiftType)")
        }
    }
}
