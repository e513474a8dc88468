import Foundation
import KubeCore

/// The containers behind ``SchemaDrivenDecoder``. They record which schema nodes the Swift
/// type visits and report mismatches to the shared ``DriftRecorder``; they throw only when
/// decoding truly cannot go on.

struct SchemaKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: SchemaDrivenDecoder
    var codingPath: [CodingKey] { decoder.codingPath }
    private var recorder: DriftRecorder { decoder.recorder }

    /// Root fields every object carries whatever the schema's `required` says.
    private static var alwaysPresentRootFields: Set<String> { ["apiVersion", "kind", "metadata"] }

    var allKeys: [Key] {
        if let properties = decoder.schema["properties"]?.objectValue {
            return properties.keys.sorted().compactMap { Key(stringValue: $0) }
        }
        if decoder.schema["additionalProperties"]?.objectValue != nil {
            return [Key(stringValue: "key")].compactMap { $0 }
        }
        return []
    }

    /// The schema of a member, or `nil` when the schema has no such member.
    private func memberSchema(_ key: Key) -> (schema: JSONValue, segment: String, isMapValue: Bool)? {
        if decoder.isOutsideSchema { return (.null, key.stringValue, false) }
        if let property = decoder.schema["properties"]?[key.stringValue] {
            return (property, key.stringValue, false)
        }
        if let values = decoder.schema["additionalProperties"], values.objectValue != nil {
            return (values, "*", true)
        }
        return nil
    }

    private func path(_ key: Key) -> String { DriftRecorder.display(decoder.path + [key.stringValue]) }

    func contains(_ key: Key) -> Bool {
        recorder.askedOptionally.insert(path(key))
        guard let member = memberSchema(key) else {
            recorder.problems.insert("Swift field \(path(key)) is not in the CRD schema")
            return false
        }
        if decoder.isOutsideSchema { return false }
        let displayPath = DriftRecorder.display(decoder.path + [member.segment])
        recorder.visited.insert(displayPath)
        if !member.isMapValue && isRequired(key) && !(decoder.path.isEmpty && Self.alwaysPresentRootFields.contains(key.stringValue)) {
            recorder.problems.insert("CRD requires \(displayPath) but the Swift field is optional")
        }
        return true
    }

    private func isRequired(_ key: Key) -> Bool {
        (decoder.schema["required"]?.arrayValue ?? []).contains(.string(key.stringValue))
    }

    func decodeNil(forKey key: Key) throws -> Bool { false }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let optional = recorder.askedOptionally.contains(path(key))
        guard let member = memberSchema(key) else {
            recorder.problems.insert("Swift field \(path(key)) is not in the CRD schema")
            return try decoder.child(schema: .null, segment: key.stringValue, key: key).decodeValue(T.self)
        }
        if !decoder.isOutsideSchema {
            let displayPath = DriftRecorder.display(decoder.path + [member.segment])
            recorder.visited.insert(displayPath)
            let exempt = member.isMapValue || (decoder.path.isEmpty && Self.alwaysPresentRootFields.contains(key.stringValue))
            if !optional && !exempt && !isRequired(key) {
                recorder.problems.insert("Swift field \(displayPath) is non-optional but the CRD does not require it")
            }
        }
        return try decoder.child(schema: member.schema, segment: member.segment, key: key).decodeValue(T.self)
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decode(Wrapped<Bool>.self, forKey: key).value }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try decode(Wrapped<String>.self, forKey: key).value }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decode(Wrapped<Double>.self, forKey: key).value }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try decode(Wrapped<Float>.self, forKey: key).value }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decode(Wrapped<Int>.self, forKey: key).value }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try decode(Wrapped<Int8>.self, forKey: key).value }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try decode(Wrapped<Int16>.self, forKey: key).value }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try decode(Wrapped<Int32>.self, forKey: key).value }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try decode(Wrapped<Int64>.self, forKey: key).value }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try decode(Wrapped<UInt>.self, forKey: key).value }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try decode(Wrapped<UInt8>.self, forKey: key).value }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try decode(Wrapped<UInt16>.self, forKey: key).value }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try decode(Wrapped<UInt32>.self, forKey: key).value }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try decode(Wrapped<UInt64>.self, forKey: key).value }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try superDecoder(forKey: key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer {
        try superDecoder(forKey: key).unkeyedContainer()
    }

    func superDecoder() throws -> Decoder { decoder }

    func superDecoder(forKey key: Key) throws -> Decoder {
        guard let member = memberSchema(key) else {
            recorder.problems.insert("Swift field \(path(key)) is not in the CRD schema")
            return decoder.child(schema: .null, segment: key.stringValue, key: key)
        }
        recorder.visited.insert(DriftRecorder.display(decoder.path + [member.segment]))
        return decoder.child(schema: member.schema, segment: member.segment, key: key)
    }
}

/// Routes a primitive through the single-value container so the type check lives in one place.
private struct Wrapped<Value: Decodable>: Decodable {
    var value: Value
    init(from decoder: Decoder) throws {
        value = try decoder.singleValueContainer().decode(Value.self)
    }
}

/// Arrays hold exactly one element, decoded from the `items` schema.
struct SchemaUnkeyedContainer: UnkeyedDecodingContainer {
    let decoder: SchemaDrivenDecoder
    var codingPath: [CodingKey] { decoder.codingPath }
    var count: Int? { 1 }
    var isAtEnd: Bool { currentIndex >= 1 }
    var currentIndex = 0

    private var itemSchema: JSONValue { decoder.isOutsideSchema ? .null : (decoder.schema["items"] ?? .null) }

    mutating func decodeNil() throws -> Bool { false }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(T.self, .init(codingPath: codingPath, debugDescription: "array has one element"))
        }
        let key = SchemaCodingKey(intValue: currentIndex)
        currentIndex += 1
        return try decoder.child(schema: itemSchema, segment: "[]", key: key).decodeValue(T.self)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try superDecoder().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer {
        try superDecoder().unkeyedContainer()
    }

    mutating func superDecoder() throws -> Decoder {
        let key = SchemaCodingKey(intValue: currentIndex)
        currentIndex += 1
        return decoder.child(schema: itemSchema, segment: "[]", key: key)
    }
}

/// Scalars: checks the Swift type against the schema's `type`/`format` and answers with a
/// value the schema allows.
struct SchemaSingleValueContainer: SingleValueDecodingContainer {
    let decoder: SchemaDrivenDecoder
    var codingPath: [CodingKey] { decoder.codingPath }

    func decodeNil() -> Bool { false }

    private func expect(_ schemaType: String, swiftType: String) {
        guard !decoder.isOutsideSchema else { return }
        let declared = decoder.schema["type"]?.stringValue
        if declared != schemaType {
            decoder.recorder.problems.insert(
                "Swift field \(decoder.displayPath) is \(swiftType) but the CRD declares type \(declared ?? "none")")
        }
    }

    private func expectInteger(_ swiftType: String, bits: Int) {
        expect("integer", swiftType: swiftType)
        guard !decoder.isOutsideSchema, decoder.schema["type"]?.stringValue == "integer" else { return }
        let format = decoder.schema["format"]?.stringValue
        let schemaBits = format == "int32" ? 32 : 64
        if bits < schemaBits {
            decoder.recorder.problems.insert(
                "Swift field \(decoder.displayPath) is \(swiftType) but the CRD allows \(format ?? "unbounded") integers")
        }
    }

    private var sampleInteger: Int64 {
        decoder.schema["default"]?.intValue ?? decoder.schema["minimum"]?.intValue ?? 1
    }

    func decode(_ type: Bool.Type) throws -> Bool {
        expect("boolean", swiftType: "Bool")
        return decoder.schema["default"]?.boolValue ?? true
    }

    func decode(_ type: String.Type) throws -> String {
        expect("string", swiftType: "String")
        if let first = decoder.schema["enum"]?.arrayValue?.first?.stringValue { return first }
        if let value = decoder.schema["default"]?.stringValue { return value }
        return decoder.schema["format"]?.stringValue == "date-time" ? "2026-01-01T00:00:00Z" : "sample"
    }

    func decode(_ type: Double.Type) throws -> Double {
        expect("number", swiftType: "Double")
        return decoder.schema["default"]?.doubleValue ?? 1
    }

    func decode(_ type: Float.Type) throws -> Float {
        expect("number", swiftType: "Float")
        return Float(decoder.schema["default"]?.doubleValue ?? 1)
    }

    func decode(_ type: Int.Type) throws -> Int { expectInteger("Int", bits: 64); return Int(sampleInteger) }
    func decode(_ type: Int8.Type) throws -> Int8 { expectInteger("Int8", bits: 8); return 1 }
    func decode(_ type: Int16.Type) throws -> Int16 { expectInteger("Int16", bits: 16); return 1 }
    func decode(_ type: Int32.Type) throws -> Int32 { expectInteger("Int32", bits: 32); return Int32(clamping: sampleInteger) }
    func decode(_ type: Int64.Type) throws -> Int64 { expectInteger("Int64", bits: 64); return sampleInteger }
    func decode(_ type: UInt.Type) throws -> UInt { expectInteger("UInt", bits: 64); return 1 }
    func decode(_ type: UInt8.Type) throws -> UInt8 { expectInteger("UInt8", bits: 8); return 1 }
    func decode(_ type: UInt16.Type) throws -> UInt16 { expectInteger("UInt16", bits: 16); return 1 }
    func decode(_ type: UInt32.Type) throws -> UInt32 { expectInteger("UInt32", bits: 32); return 1 }
    func decode(_ type: UInt64.Type) throws -> UInt64 { expectInteger("UInt64", bits: 64); return 1 }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try decoder.decodeValue(T.self)
    }
}
