import Foundation
import Yams

/// A YAML document that is not valid, with Yams' explanation.
public struct YAMLSyntaxError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

extension JSONValue {
    /// Parses every document of a YAML stream (`---` separated). Empty documents are skipped.
    public static func parseYAMLDocuments(_ text: String) throws -> [JSONValue] {
        do {
            var documents: [JSONValue] = []
            var nodes = try Yams.compose_all(yaml: text)
            while let node = nodes.next() {
                let value = try JSONValue(yamlNode: node)
                if !value.isNull { documents.append(value) }
            }
            // The sequence ends at a syntax error and keeps it: an invalid document is an
            // error, not the end of the stream.
            if let error = nodes.error { throw YAMLSyntaxError(message: "error converting YAML to JSON: \(error)") }
            return documents
        } catch let error as YAMLSyntaxError {
            throw error
        } catch {
            throw YAMLSyntaxError(message: "error converting YAML to JSON: \(error)")
        }
    }

    /// Parses a single YAML document (JSON is YAML too).
    public init(yaml text: String) throws {
        let documents = try JSONValue.parseYAMLDocuments(text)
        guard documents.count <= 1 else {
            throw YAMLSyntaxError(message: "expected one YAML document, found \(documents.count)")
        }
        self = documents.first ?? .null
    }

    init(yamlNode node: Node) throws {
        switch node {
        case .scalar(let scalar):
            switch node.tag.rawValue {
            case Tag.Name.null.rawValue: self = .null
            case Tag.Name.bool.rawValue: self = .bool(Bool.construct(from: scalar) ?? false)
            case Tag.Name.int.rawValue:
                if let i = Int64(scalar.string.replacingOccurrences(of: "_", with: "")) {
                    self = .int(i)
                } else if let i = Int.construct(from: scalar) {
                    self = .int(Int64(i))
                } else {
                    self = .double(Double.construct(from: scalar) ?? 0)
                }
            case Tag.Name.float.rawValue: self = .double(Double.construct(from: scalar) ?? 0)
            default: self = .string(scalar.string)
            }
        case .sequence(let sequence):
            self = .array(try sequence.map { try JSONValue(yamlNode: $0) })
        case .mapping(let mapping):
            var object: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard let keyString = key.string else {
                    throw YAMLSyntaxError(message: "error converting YAML to JSON: mapping key is not a string")
                }
                object[keyString] = try JSONValue(yamlNode: value)
            }
            self = .object(object)
        case .alias:
            throw YAMLSyntaxError(message: "error converting YAML to JSON: aliases are not supported")
        }
    }

    /// YAML text for this value (block style, keys sorted), as `kubectl get -o yaml` prints.
    public func yamlString() -> String {
        let node = yamlNode()
        return (try? Yams.serialize(node: node, sortKeys: true)) ?? prettyPrinted()
    }

    func yamlNode() -> Node {
        switch self {
        case .null: return Node("null", Tag(.null))
        case .bool(let b): return Node(b ? "true" : "false", Tag(.bool))
        case .int(let i): return Node(String(i), Tag(.int))
        case .double(let d): return Node("\(d)", Tag(.float))
        case .string(let s): return Node(s, Tag(.str), .plain)
        case .array(let a): return Node(a.map { $0.yamlNode() })
        case .object(let o):
            return Node(o.keys.sorted().map { (Node($0, Tag(.str)), o[$0]!.yamlNode()) })
        }
    }
}
