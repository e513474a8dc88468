import Foundation
import KubeCore

/// apiextensions.k8s.io/v1 `JSONSchemaProps`: the structural OpenAPI v3 subset that
/// CustomResourceDefinitions use, including the `x-kubernetes-*` extensions.
///
/// A class because the schema is recursive; every property is immutable, so instances are
/// safe to share across threads.
public final class JSONSchemaProps: Codable, @unchecked Sendable {
    public let type: String?
    public let format: String?
    public let description: String?
    public let properties: [String: JSONSchemaProps]?
    public let required: [String]?
    public let items: JSONSchemaProps?
    /// `additionalProperties`: either a schema for map values, or `false`.
    public let additionalProperties: AdditionalProperties?
    public let `enum`: [JSONValue]?
    public let pattern: String?
    public let minimum: Double?
    public let maximum: Double?
    public let exclusiveMinimum: Bool?
    public let exclusiveMaximum: Bool?
    public let minLength: Int?
    public let maxLength: Int?
    public let minItems: Int?
    public let maxItems: Int?
    public let minProperties: Int?
    public let maxProperties: Int?
    public let `default`: JSONValue?
    public let nullable: Bool?
    public let anyOf: [JSONSchemaProps]?
    public let allOf: [JSONSchemaProps]?
    public let oneOf: [JSONSchemaProps]?
    public let not: JSONSchemaProps?
    public let preserveUnknownFields: Bool?
    public let embeddedResource: Bool?
    public let intOrString: Bool?
    public let listType: String?
    public let listMapKeys: [String]?
    public let mapType: String?
    public let validations: [ValidationRule]?

    enum CodingKeys: String, CodingKey {
        case type, format, description, properties, required, items, additionalProperties
        case `enum`, pattern, minimum, maximum, exclusiveMinimum, exclusiveMaximum
        case minLength, maxLength, minItems, maxItems, minProperties, maxProperties
        case `default`, nullable, anyOf, allOf, oneOf, not
        case preserveUnknownFields = "x-kubernetes-preserve-unknown-fields"
        case embeddedResource = "x-kubernetes-embedded-resource"
        case intOrString = "x-kubernetes-int-or-string"
        case listType = "x-kubernetes-list-type"
        case listMapKeys = "x-kubernetes-list-map-keys"
        case mapType = "x-kubernetes-map-type"
        case validations = "x-kubernetes-validations"
    }

    /// Parses a schema from its JSON form (as found in a CRD's `openAPIV3Schema`).
    public static func from(_ value: JSONValue) throws -> JSONSchemaProps {
        try value.decode(JSONSchemaProps.self)
    }

    /// Whether unknown fields under this node are kept.
    public var keepsUnknownFields: Bool { preserveUnknownFields == true }
}

/// `additionalProperties` is `true`/`false` or a schema.
public enum AdditionalProperties: Codable, Sendable {
    case allowed(Bool)
    case schema(JSONSchemaProps)

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let allowed = try? container.decode(Bool.self) {
            self = .allowed(allowed)
        } else {
            self = .schema(try container.decode(JSONSchemaProps.self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .allowed(let b): try container.encode(b)
        case .schema(let s): try container.encode(s)
        }
    }

    public var schema: JSONSchemaProps? {
        if case .schema(let s) = self { return s }
        return nil
    }
}

/// One `x-kubernetes-validations` entry.
public struct ValidationRule: Codable, Sendable, Hashable {
    public var rule: String
    public var message: String?
    public var messageExpression: String?
    public var reason: String?
    public var fieldPath: String?
    public var optionalOldSelf: Bool?

    public init(rule: String, message: String? = nil, reason: String? = nil, fieldPath: String? = nil) {
        self.rule = rule
        self.message = message
        self.reason = reason
        self.fieldPath = fieldPath
    }
}
