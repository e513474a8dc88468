import Foundation
import KubeCore
import KubeMachinery

/// The set of resources the server serves: built-ins plus one entry per served version of
/// every established CustomResourceDefinition. Discovery and routing read it; CRD writes
/// change it. Thread-safe; readers get consistent snapshots.
public final class ResourceRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var byGroupVersion: [String: [String: ResourceDefinition]] = [:]
    private var customGroups: [String: [String]] = [:]   // CRD name -> groupVersions it added
    private let ruleEvaluator: ValidationRuleEvaluator?

    public init(ruleEvaluator: ValidationRuleEvaluator?) {
        self.ruleEvaluator = ruleEvaluator
        for definition in BuiltinResources.all { add(definition) }
    }

    private func add(_ definition: ResourceDefinition) {
        byGroupVersion[definition.groupVersion, default: [:]][definition.resource] = definition
    }

    /// The definition for `/apis/<group>/<version>/<resource>`.
    public func lookup(group: String, version: String, resource: String) -> ResourceDefinition? {
        lock.lock()
        defer { lock.unlock() }
        let groupVersion = group.isEmpty ? version : "\(group)/\(version)"
        return byGroupVersion[groupVersion]?[resource]
    }

    /// Every served definition, sorted by group version then resource.
    public func all() -> [ResourceDefinition] {
        lock.lock()
        defer { lock.unlock() }
        return byGroupVersion.keys.sorted().flatMap { key in
            byGroupVersion[key]!.keys.sorted().map { byGroupVersion[key]![$0]! }
        }
    }

    /// Definitions of one group version, or `nil` when the group version is not served.
    public func resources(groupVersion: String) -> [ResourceDefinition]? {
        lock.lock()
        defer { lock.unlock() }
        return byGroupVersion[groupVersion].map { dict in dict.keys.sorted().map { dict[$0]! } }
    }

    /// Any definition for a group/resource pair (used for storage keys across versions).
    public func anyVersion(group: String, resource: String) -> ResourceDefinition? {
        all().first { $0.group == group && $0.resource == resource }
    }

    /// Adds or replaces the resources of a CRD. Throws field errors for a CRD that cannot be served.
    public func install(crd: JSONValue) throws {
        let definitions = try CRDDefinitions.definitions(from: crd, ruleEvaluator: ruleEvaluator)
        let name = crd[path: ["metadata", "name"]]?.stringValue ?? ""
        lock.lock()
        defer { lock.unlock() }
        removeLocked(crdName: name)
        for definition in definitions { add(definition) }
        customGroups[name] = definitions.map { "\($0.groupVersion)|\($0.resource)" }
    }

    /// Removes the resources a CRD added.
    public func uninstall(crdName: String) {
        lock.lock()
        defer { lock.unlock() }
        removeLocked(crdName: crdName)
    }

    private func removeLocked(crdName: String) {
        for entry in customGroups[crdName] ?? [] {
            let parts = entry.split(separator: "|").map(String.init)
            byGroupVersion[parts[0]]?[parts[1]] = nil
            if byGroupVersion[parts[0]]?.isEmpty == true { byGroupVersion[parts[0]] = nil }
        }
        customGroups[crdName] = nil
    }
}

/// Reads a CustomResourceDefinition into served resource definitions.
enum CRDDefinitions {
    static func definitions(from crd: JSONValue, ruleEvaluator: ValidationRuleEvaluator?) throws -> [ResourceDefinition] {
        guard let spec = crd["spec"] else {
            throw ValidationErrors(errors: [FieldError(.required, field: "spec", detail: "")])
        }
        var errors: [FieldError] = []
        let group = spec["group"]?.stringValue ?? ""
        let names = spec["names"] ?? [:]
        let plural = names["plural"]?.stringValue ?? ""
        let kind = names["kind"]?.stringValue ?? ""
        if group.isEmpty { errors.append(FieldError(.required, field: "spec.group", detail: "")) }
        if plural.isEmpty { errors.append(FieldError(.required, field: "spec.names.plural", detail: "")) }
        if kind.isEmpty { errors.append(FieldError(.required, field: "spec.names.kind", detail: "")) }
        let expectedName = "\(plural).\(group)"
        if let name = crd[path: ["metadata", "name"]]?.stringValue, !plural.isEmpty, !group.isEmpty, name != expectedName {
            errors.append(FieldError(.invalid, field: "metadata.name", value: "\"\(name)\"",
                                     detail: "must be spec.names.plural+\".\"+spec.group"))
        }
        let scope = spec["scope"]?.stringValue ?? ""
        if scope != "Namespaced" && scope != "Cluster" {
            errors.append(FieldError(.notSupported, field: "spec.scope", value: "\"\(scope)\"",
                                     detail: "supported values: \"Cluster\", \"Namespaced\""))
        }
        let versions = spec["versions"]?.arrayValue ?? []
        if versions.isEmpty { errors.append(FieldError(.required, field: "spec.versions", detail: "must have exactly one version marked as storage version")) }
        var definitions: [ResourceDefinition] = []
        for (index, version) in versions.enumerated() where version["served"]?.boolValue != false {
            let versionName = version["name"]?.stringValue ?? ""
            var validator: SchemaValidator?
            if let schemaJSON = version[path: ["schema", "openAPIV3Schema"]] {
                do {
                    validator = SchemaValidator(schema: try JSONSchemaProps.from(schemaJSON), ruleEvaluator: ruleEvaluator)
                } catch {
                    errors.append(FieldError(.invalid, field: "spec.versions[\(index)].schema.openAPIV3Schema",
                                             value: "\"object\"", detail: "\(error)"))
                }
            }
            var subresources: Set<String> = []
            if version[path: ["subresources", "status"]] != nil { subresources.insert("status") }
            let scale = version[path: ["subresources", "scale"]]
            if scale != nil { subresources.insert("scale") }
            let columns = (version["additionalPrinterColumns"]?.arrayValue ?? []).compactMap { try? $0.decode(PrinterColumn.self) }
            var definition = ResourceDefinition(
                group: group, version: versionName, resource: plural,
                singular: names["singular"]?.stringValue ?? kind.lowercased(), kind: kind,
                namespaced: scope == "Namespaced",
                shortNames: names["shortNames"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                categories: names["categories"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                subresources: subresources, validator: validator, printerColumns: columns, isCustomResource: true)
            definition.listKind = names["listKind"]?.stringValue ?? kind + "List"
            if let scale {
                definition.scaleSpecReplicasPath = jsonPathComponents(scale["specReplicasPath"]?.stringValue)
                definition.scaleStatusReplicasPath = jsonPathComponents(scale["statusReplicasPath"]?.stringValue)
            }
            definitions.append(definition)
        }
        if !errors.isEmpty { throw ValidationErrors(errors: errors) }
        return definitions
    }

    /// `.spec.replicas` → ["spec", "replicas"].
    static func jsonPathComponents(_ path: String?) -> [String]? {
        guard let path, path.hasPrefix(".") else { return nil }
        return path.split(separator: ".").map(String.init)
    }
}
