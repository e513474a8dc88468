import Foundation
import KubeCore

/// Decodes the Kubernetes protobuf request bodies kubectl sends for a few built-in kinds
/// (`kubectl create token` posts a TokenRequest as `application/vnd.kubernetes.protobuf`
/// and does not fall back to JSON; so do `kubectl create role` and `rolebinding`), turning
/// them into the JSON the handlers work on.
///
/// Wire format: the 4-byte magic `k8s\0`, then a `runtime.Unknown` message (1: typeMeta
/// {1: apiVersion, 2: kind}, 2: raw object bytes). Only the fields of the kinds below are
/// known; unknown fields are skipped, as protobuf readers do. Responses are always JSON.
enum KubernetesProtobuf {
    struct DecodeError: Error, CustomStringConvertible {
        var description: String
    }

    static let magic: [UInt8] = [0x6b, 0x38, 0x73, 0x00]

    static func decode(_ bytes: [UInt8]) throws -> JSONValue {
        guard bytes.count >= 4, Array(bytes.prefix(4)) == magic else {
            throw DecodeError(description: "protobuf body does not start with the k8s magic")
        }
        var unknown = WireReader(bytes[4...])
        var apiVersion = ""
        var kind = ""
        var raw: ArraySlice<UInt8> = []
        while let (field, value) = try unknown.next() {
            switch (field, value) {
            case (1, .bytes(let typeMeta)):
                var reader = WireReader(typeMeta)
                while let (f, v) = try reader.next() {
                    if f == 1, case .bytes(let b) = v { apiVersion = String(decoding: b, as: UTF8.self) }
                    if f == 2, case .bytes(let b) = v { kind = String(decoding: b, as: UTF8.self) }
                }
            case (2, .bytes(let b)):
                raw = b
            default:
                continue
            }
        }
        guard let schema = schemas[kind] else {
            throw DecodeError(description: "protobuf is not supported for kind \(kind.isEmpty ? "<unknown>" : kind); send application/json")
        }
        var object = try decodeMessage(raw, schema: schema)
        object["apiVersion"] = .string(apiVersion)
        object["kind"] = .string(kind)
        return object
    }

    /// How a field decodes: its JSON name and shape.
    indirect enum Field {
        case string(String)
        case int(String)
        case bool(String)
        case bytesBase64(String)
        case repeatedString(String)
        case stringMap(String)
        case bytesMap(String)
        case message(String, [Int: Field])
        case repeatedMessage(String, [Int: Field])
    }

    static let objectMeta: [Int: Field] = [
        1: .string("name"), 2: .string("generateName"), 3: .string("namespace"), 5: .string("uid"),
        6: .string("resourceVersion"), 7: .int("generation"), 11: .stringMap("labels"), 12: .stringMap("annotations"),
        13: .repeatedMessage("ownerReferences", [1: .string("kind"), 3: .string("name"), 4: .string("uid"),
                                                 5: .string("apiVersion"), 6: .bool("controller"), 7: .bool("blockOwnerDeletion")]),
        14: .repeatedString("finalizers"),
    ]

    static let policyRule: [Int: Field] = [1: .repeatedString("verbs"), 2: .repeatedString("apiGroups"), 3: .repeatedString("resources"),
                                           4: .repeatedString("resourceNames"), 5: .repeatedString("nonResourceURLs")]
    static let roleBinding: [Int: Field] = [
        1: .message("metadata", objectMeta),
        2: .repeatedMessage("subjects", [1: .string("kind"), 2: .string("apiGroup"), 3: .string("name"), 4: .string("namespace")]),
        3: .message("roleRef", [1: .string("apiGroup"), 2: .string("kind"), 3: .string("name")]),
    ]

    static let accessReviewAttributes: [Int: Field] = [
        1: .message("resourceAttributes", [1: .string("namespace"), 2: .string("verb"), 3: .string("group"), 4: .string("version"),
                                           5: .string("resource"), 6: .string("subresource"), 7: .string("name")]),
        2: .message("nonResourceAttributes", [1: .string("path"), 2: .string("verb")]),
    ]
    static let subjectAccessReviewSpec: [Int: Field] = accessReviewAttributes.merging([
        3: .string("user"), 4: .repeatedString("groups"), 6: .string("uid"),
    ]) { first, _ in first }

    static let schemas: [String: [Int: Field]] = [
        "TokenRequest": [
            1: .message("metadata", objectMeta),
            2: .message("spec", [1: .repeatedString("audiences"), 4: .int("expirationSeconds"),
                                 3: .message("boundObjectRef", [1: .string("kind"), 2: .string("apiVersion"),
                                                                 3: .string("name"), 4: .string("uid")])]),
        ],
        "ServiceAccount": [1: .message("metadata", objectMeta), 3: .bool("automountServiceAccountToken")],
        "Namespace": [1: .message("metadata", objectMeta)],
        "ConfigMap": [1: .message("metadata", objectMeta), 2: .stringMap("data"), 3: .bytesMap("binaryData"), 4: .bool("immutable")],
        "Secret": [1: .message("metadata", objectMeta), 2: .bytesMap("data"), 3: .string("type"), 4: .stringMap("stringData"),
                   5: .bool("immutable")],
        // rbac.authorization.k8s.io/v1 (`kubectl create role|rolebinding|clusterrole|clusterrolebinding`).
        "Role": [1: .message("metadata", objectMeta), 2: .repeatedMessage("rules", policyRule)],
        "ClusterRole": [1: .message("metadata", objectMeta), 2: .repeatedMessage("rules", policyRule),
                        3: .message("aggregationRule", [1: .repeatedMessage("clusterRoleSelectors", [1: .stringMap("matchLabels")])])],
        "RoleBinding": roleBinding,
        "ClusterRoleBinding": roleBinding,
        // authorization.k8s.io/v1 and authentication.k8s.io/v1 reviews (`kubectl auth can-i`, `auth whoami`).
        "SelfSubjectAccessReview": [1: .message("metadata", objectMeta), 2: .message("spec", accessReviewAttributes)],
        "SubjectAccessReview": [1: .message("metadata", objectMeta), 2: .message("spec", subjectAccessReviewSpec)],
        "LocalSubjectAccessReview": [1: .message("metadata", objectMeta), 2: .message("spec", subjectAccessReviewSpec)],
        "SelfSubjectRulesReview": [1: .message("metadata", objectMeta), 2: .message("spec", [1: .string("namespace")])],
        "SelfSubjectReview": [1: .message("metadata", objectMeta)],
        "TokenReview": [1: .message("metadata", objectMeta), 2: .message("spec", [1: .string("token"), 2: .repeatedString("audiences")])],
        // autoscaling/v1 Scale (client-go's scale client may PUT it as protobuf).
        "Scale": [1: .message("metadata", objectMeta), 2: .message("spec", [1: .int("replicas")])],
        // The body of a DELETE from a client-go client that speaks protobuf.
        "DeleteOptions": [1: .int("gracePeriodSeconds"), 2: .message("preconditions", [1: .string("uid"), 2: .string("resourceVersion")]),
                          3: .bool("orphanDependents"), 4: .string("propagationPolicy"), 5: .repeatedString("dryRun")],
    ]

    static func decodeMessage(_ bytes: ArraySlice<UInt8>, schema: [Int: Field]) throws -> JSONValue {
        var reader = WireReader(bytes)
        var object: [String: JSONValue] = [:]
        while let (number, value) = try reader.next() {
            guard let field = schema[number] else { continue }
            switch (field, value) {
            // gogo protobuf writes every non-pointer scalar, set or not; Go's JSON leaves the empty
            // ones out (`omitempty`), so an unset `generateName` must not become `""` here.
            case (.string(let name), .bytes(let b)):
                if !b.isEmpty { object[name] = .string(String(decoding: b, as: UTF8.self)) }
            case (.bytesBase64(let name), .bytes(let b)):
                object[name] = .string(Data(b).base64EncodedString())
            case (.int(let name), .varint(let v)):
                if v != 0 { object[name] = .int(Int64(bitPattern: v)) }
            case (.bool(let name), .varint(let v)):
                object[name] = .bool(v != 0)
            case (.repeatedString(let name), .bytes(let b)):
                object[name] = .array((object[name]?.arrayValue ?? []) + [.string(String(decoding: b, as: UTF8.self))])
            case (.stringMap(let name), .bytes(let b)), (.bytesMap(let name), .bytes(let b)):
                var entry = WireReader(b)
                var key = ""
                var entryValue: ArraySlice<UInt8> = []
                while let (f, v) = try entry.next() {
                    if f == 1, case .bytes(let k) = v { key = String(decoding: k, as: UTF8.self) }
                    if f == 2, case .bytes(let e) = v { entryValue = e }
                }
                var map = object[name]?.objectValue ?? [:]
                if case .bytesMap = field {
                    map[key] = .string(Data(entryValue).base64EncodedString())
                } else {
                    map[key] = .string(String(decoding: entryValue, as: UTF8.self))
                }
                object[name] = .object(map)
            case (.message(let name, let nested), .bytes(let b)):
                object[name] = try decodeMessage(b, schema: nested)
            case (.repeatedMessage(let name, let nested), .bytes(let b)):
                object[name] = .array((object[name]?.arrayValue ?? []) + [try decodeMessage(b, schema: nested)])
            default:
                throw DecodeError(description: "protobuf field \(number) has an unexpected wire type")
            }
        }
        return .object(object)
    }
}

/// Reads protobuf wire-format fields: varints, fixed 32/64-bit and length-delimited.
struct WireReader {
    enum Value {
        case varint(UInt64)
        case bytes(ArraySlice<UInt8>)
        case fixed
    }

    private var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }

    mutating func next() throws -> (Int, Value)? {
        guard !bytes.isEmpty else { return nil }
        let key = try varint()
        let number = Int(key >> 3)
        switch key & 7 {
        case 0: return (number, .varint(try varint()))
        case 1: try skip(8); return (number, .fixed)
        case 5: try skip(4); return (number, .fixed)
        case 2:
            let length = Int(try varint())
            guard length >= 0, length <= bytes.count else { throw KubernetesProtobuf.DecodeError(description: "truncated protobuf field") }
            let value = bytes.prefix(length)
            bytes = bytes.dropFirst(length)
            return (number, .bytes(value))
        default:
            throw KubernetesProtobuf.DecodeError(description: "unsupported protobuf wire type \(key & 7)")
        }
    }

    private mutating func skip(_ count: Int) throws {
        guard bytes.count >= count else { throw KubernetesProtobuf.DecodeError(description: "truncated protobuf field") }
        bytes = bytes.dropFirst(count)
    }

    private mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while let byte = bytes.first {
            bytes = bytes.dropFirst()
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { break }
        }
        throw KubernetesProtobuf.DecodeError(description: "malformed protobuf varint")
    }
}
