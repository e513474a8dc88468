import Foundation
import KubeCore

/// Masks secrets in everything the gateway returns to an agent or records: JSON bodies
/// (objects, lists, Tables, watch events), YAML, plain text, request bodies and error messages.
///
/// Contract:
/// - Pure and thread-safe: a `Masker` holds only the compiled ``MaskingPolicy``.
/// - JSON in, JSON out: bytes that are not rewritten are copied as they are, so a body with
///   nothing to mask comes back byte-identical and valid JSON stays valid JSON.
/// - Fail closed: a body announced as JSON that does not parse is masked as text, and withheld
///   entirely when it mentions a Secret (its structure cannot be trusted to find the values).
/// - The gateway's own credentials (``MaskingPolicy/alwaysScrub``) are replaced everywhere.
public struct Masker: Sendable {
    let engine: MaskingEngine

    public init(policy: MaskingPolicy) {
        engine = MaskingEngine(policy: policy)
    }

    public var policy: MaskingPolicy { engine.policy }

    /// What replaces a JSON body that does not parse and mentions a Secret.
    public static let withheldBody = Array(#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"agentgate: a response body that is not valid JSON and mentions a Secret was withheld by masking"}"#.utf8)

    // MARK: - JSON

    /// Masks a JSON body: one object, a `*List`, a `meta.k8s.io` Table, one watch event, or a
    /// stream of whitespace-separated events. `kindHint` is the kind the request addressed
    /// (`Secret` for `/api/v1/secrets`), used for objects that do not state their own kind.
    /// `resource` (the request's group and resource) selects the policy's field rules.
    public func maskJSON(_ body: [UInt8], kindHint: String? = nil, resource: MaskedResource? = nil) -> [UInt8] {
        if let masked = engine.maskDocument(body, kindHint: kindHint, credentialDocument: false, forcedSecret: nil, nesting: 0,
                                            fieldRules: engine.fieldRules(for: resource)) {
            return masked
        }
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) { return body }
        if MaskingEngine.contains(body, Array("Secret".utf8)) || kindHint == "Secret" { return Masker.withheldBody }
        return body.withUnsafeBufferPointer { engine.maskText($0) }
    }

    public func maskJSON(_ body: Data, kindHint: String? = nil) -> Data {
        Data(maskJSON([UInt8](body), kindHint: kindHint))
    }

    /// Masks one watch event line (`{"type":"ADDED","object":{...}}`).
    public func maskWatchEvent(_ line: [UInt8], kindHint: String? = nil, resource: MaskedResource? = nil) -> [UInt8] {
        maskJSON(line, kindHint: kindHint, resource: resource)
    }

    /// What replaces a value whose masked form cannot be read back.
    public static let withheldValue: JSONValue = [
        "kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": "agentgate: a document nested too deeply to read back after masking was withheld",
    ]

    /// Masks a value in place (through the same byte engine, so both paths agree). A value
    /// whose masked text does not parse back (nested deeper than KubeCore's parser goes) is
    /// withheld rather than left as it was, unmasked.
    public func mask(_ value: inout JSONValue, kindHint: String? = nil, resource: MaskedResource? = nil) {
        let masked = maskJSON(value.serialized(), kindHint: kindHint, resource: resource)
        value = (try? JSONValue(parsing: masked)) ?? Masker.withheldValue
    }

    // MARK: - YAML and text

    /// Masks a YAML stream (`kubectl get -o yaml`, `apply` bodies). Documents are converted to
    /// JSON, masked and written back as YAML; text that is not YAML is masked as text.
    public func maskYAML(_ text: String, kindHint: String? = nil, resource: MaskedResource? = nil) -> String {
        guard let documents = try? JSONValue.parseYAMLDocuments(text) else { return maskText(text) }
        var parts: [String] = []
        for var document in documents {
            mask(&document, kindHint: kindHint, resource: resource)
            parts.append(document.yamlString())
        }
        return parts.joined(separator: "---\n")
    }

    /// Masks plain text in one piece (a whole log, an exec transcript). For a stream use
    /// ``textStream(maxHeldBytes:)``.
    public func maskText(_ text: [UInt8]) -> [UInt8] {
        text.withUnsafeBufferPointer { engine.maskText($0) }
    }

    public func maskText(_ text: String) -> String {
        String(decoding: maskText(Array(text.utf8)), as: UTF8.self)
    }

    /// An error message (upstream `metav1.Status` message, a transport error) before it is
    /// returned or recorded.
    public func maskErrorMessage(_ message: String) -> String { maskText(message) }

    /// A masker for a chunked text stream (`pods/log?follow`, exec output).
    public func textStream(maxHeldBytes: Int = TextStreamMasker.defaultMaxHeldBytes) -> TextStreamMasker {
        TextStreamMasker(engine: engine, maxHeldBytes: maxHeldBytes)
    }

    // MARK: - Bodies by content type

    /// Masks a response or request body by its content type: JSON (and `*+json` patches), YAML
    /// (`application/apply-patch+yaml`, `*yaml*`), anything else as text.
    public func maskBody(_ body: [UInt8], contentType: String?, kindHint: String? = nil, resource: MaskedResource? = nil) -> [UInt8] {
        if MediaType.mentions(contentType, "yaml") {
            return Array(maskYAML(String(decoding: body, as: UTF8.self), kindHint: kindHint, resource: resource).utf8)
        }
        if MediaType.mentions(contentType, "json") || (contentType ?? "").isEmpty, let first = body.first(where: { $0 > 0x20 }),
           first == UInt8(ascii: "{") || first == UInt8(ascii: "[") {
            return maskJSON(body, kindHint: kindHint, resource: resource)
        }
        return maskText(body)
    }

    /// Masks a request body before it is recorded: a created or applied Secret is recorded
    /// masked. `kindHint` is the kind of the addressed resource; with `Secret`, JSON-patch
    /// operations (`[{"op":"add","path":"/data/x","value":...}]`) have every `value` masked,
    /// because a patch does not say which fields it touches in a way we could trust.
    public func maskRequestBody(_ body: [UInt8], contentType: String?, kindHint: String? = nil,
                                resource: MaskedResource? = nil) -> [UInt8] {
        if kindHint == "Secret", MediaType.mentions(contentType, "json-patch") || body.first(where: { $0 > 0x20 }) == UInt8(ascii: "["),
           case .array(var operations)? = try? JSONValue(parsing: body) {
            let rule = engine.rule(.secretData) ?? .mask
            for index in operations.indices {
                guard case .object(var operation) = operations[index], let value = operation["value"] else { continue }
                operation["value"] = Masker.maskLeaves(value) { engine.scanner.replacer.render(rule, value: Array($0.utf8)) }
                operations[index] = .object(operation)
            }
            return maskJSON(JSONValue.array(operations).serialized(), kindHint: kindHint, resource: resource)
        }
        return maskBody(body, contentType: contentType, kindHint: kindHint, resource: resource)
    }

    private static func maskLeaves(_ value: JSONValue, _ render: (String) -> [UInt8]) -> JSONValue {
        switch value {
        case .null: return .null
        case .object(let o): return .object(o.mapValues { maskLeaves($0, render) })
        case .array(let a): return .array(a.map { maskLeaves($0, render) })
        case .string(let s): return .string(String(decoding: render(s), as: UTF8.self))
        default: return .string(String(decoding: render(value.serializedString()), as: UTF8.self))
        }
    }
}
