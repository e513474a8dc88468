import HTTPServing
import Foundation
import KubeCore

/// Discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/<group>[/<version>]`) and the
/// OpenAPI v3 documents kubectl downloads for `apply` validation, all derived from the
/// registry so CRDs appear and disappear as they are created and deleted.
///
/// Aggregated discovery (apidiscovery.k8s.io/v2) is not offered: kubectl accepts the plain
/// `application/json` lists it also asks for.
struct Discovery {
    let registry: ResourceRegistry
    let serverAddress: String

    static let version: JSONValue = [
        "major": "1", "minor": "32", "gitVersion": "v1.32.0-agentgate", "gitCommit": "agentgate",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "n/a", "compiler": "swift",
        "platform": "linux/amd64",
    ]

    func serve(path: String, request: HTTPRequest) -> HTTPResponse? {
        let parts = path.split(separator: "/").map(String.init)
        switch parts.count {
        case 1 where parts[0] == "api":
            return .object(200, ["kind": "APIVersions", "versions": ["v1"],
                                 "serverAddressByClientCIDRs": [["clientCIDR": "0.0.0.0/0", "serverAddress": .string(serverAddress)]]])
        case 1 where parts[0] == "apis":
            return .object(200, ["kind": "APIGroupList", "apiVersion": "v1", "groups": .array(groups().map(\.value))])
        case 2 where parts[0] == "api" && parts[1] == "v1":
            return resourceList(groupVersion: "v1")
        case 2 where parts[0] == "apis":
            guard let group = groups().first(where: { $0.name == parts[1] }) else { return nil }
            var value = group.value
            value["kind"] = "APIGroup"
            value["apiVersion"] = "v1"
            return .object(200, value)
        case 3 where parts[0] == "apis":
            return resourceList(groupVersion: "\(parts[1])/\(parts[2])")
        default:
            if parts.first == "openapi" { return OpenAPIDocuments(registry: registry).serve(parts: parts) }
            return nil
        }
    }

    private func groups() -> [(name: String, value: JSONValue)] {
        var versionsByGroup: [String: [String]] = [:]
        for definition in registry.all() where !definition.group.isEmpty {
            if !(versionsByGroup[definition.group]?.contains(definition.version) ?? false) {
                versionsByGroup[definition.group, default: []].append(definition.version)
            }
        }
        return versionsByGroup.keys.sorted().map { group in
            let versions = versionsByGroup[group]!.sorted(by: Self.kubeVersionOrder)
            let entries: [JSONValue] = versions.map { ["groupVersion": .string("\(group)/\($0)"), "version": .string($0)] }
            return (group, ["name": .string(group), "versions": .array(entries), "preferredVersion": entries[0]])
        }
    }

    /// v1 > v1beta2 > v1beta1 > v1alpha1, as kube-apiserver orders versions.
    static func kubeVersionOrder(_ a: String, _ b: String) -> Bool {
        func rank(_ v: String) -> (Int, Int, Int) {
            let scanner = v.dropFirst()
            let major = Int(scanner.prefix { $0.isNumber }) ?? 0
            let rest = scanner.drop { $0.isNumber }
            if rest.isEmpty { return (3, major, 0) }
            let stability = rest.hasPrefix("beta") ? 2 : 1
            let minor = Int(rest.drop { !$0.isNumber }) ?? 0
            return (stability, major, minor)
        }
        return rank(a) > rank(b)
    }

    private func resourceList(groupVersion: String) -> HTTPResponse? {
        guard let definitions = registry.resources(groupVersion: groupVersion) else { return nil }
        var resources: [JSONValue] = []
        for definition in definitions {
            var entry: JSONValue = [
                "name": .string(definition.resource), "singularName": .string(definition.singular),
                "namespaced": .bool(definition.namespaced), "kind": .string(definition.kind),
                "verbs": .array(definition.verbs.map { .string($0) }),
                "storageVersionHash": .string(String(definition.qualifiedResource.hashValue & 0xffffff, radix: 36)),
            ]
            if !definition.shortNames.isEmpty { entry["shortNames"] = .array(definition.shortNames.map { .string($0) }) }
            if !definition.categories.isEmpty { entry["categories"] = .array(definition.categories.map { .string($0) }) }
            resources.append(entry)
            for subresource in definition.subresources.sorted() {
                let (kind, verbs): (String, [String])
                switch subresource {
                case "status": (kind, verbs) = (definition.kind, ["get", "patch", "update"])
                case "scale": (kind, verbs) = ("Scale", ["get", "patch", "update"])
                case "token": (kind, verbs) = ("TokenRequest", ["create"])
                case "log": (kind, verbs) = ("Pod", ["get"])
                default: (kind, verbs) = ("PodExecOptions", ["create", "get"])
                }
                var sub: JSONValue = ["name": .string("\(definition.resource)/\(subresource)"), "singularName": "",
                                      "namespaced": .bool(definition.namespaced), "kind": .string(kind),
                                      "verbs": .array(verbs.map { .string($0) })]
                if subresource == "scale" || subresource == "token" {
                    sub["group"] = subresource == "scale" ? "autoscaling" : "authentication.k8s.io"
                    sub["version"] = "v1"
                }
                resources.append(sub)
            }
        }
        return .object(200, ["kind": "APIResourceList", "apiVersion": "v1", "groupVersion": .string(groupVersion),
                             "resources": .array(resources)])
    }
}

/// `/openapi/v3` and its per-group-version documents. Custom resources carry their CRD
/// schema; built-in kinds get an open schema (any fields) so client-side validation finds
/// every kind it is asked about.
struct OpenAPIDocuments {
    let registry: ResourceRegistry

    func serve(parts: [String]) -> HTTPResponse? {
        guard parts.count >= 2, parts[1] == "v3" else {
            // kubectl falls back from v3 to v2; v2 is not served.
            return nil
        }
        var byGroupVersion: [String: [ResourceDefinition]] = [:]
        for definition in registry.all() {
            let key = definition.group.isEmpty ? "api/\(definition.version)" : "apis/\(definition.group)/\(definition.version)"
            byGroupVersion[key, default: []].append(definition)
        }
        if parts.count == 2 {
            var paths: [String: JSONValue] = [:]
            for (key, definitions) in byGroupVersion {
                let hash = String(document(for: definitions).serialized().hashValue & 0x7fffffff, radix: 16).uppercased()
                paths[key] = ["serverRelativeURL": .string("/openapi/v3/\(key)?hash=\(hash)")]
            }
            return .object(200, ["paths": .object(paths)])
        }
        let key = parts.dropFirst(2).joined(separator: "/")
        guard let definitions = byGroupVersion[key] else { return nil }
        return .object(200, document(for: definitions))
    }

    private func document(for definitions: [ResourceDefinition]) -> JSONValue {
        var schemas: [String: JSONValue] = [:]
        for definition in definitions.sorted(by: { $0.resource < $1.resource }) {
            let gvk: JSONValue = [["group": .string(definition.group), "version": .string(definition.version),
                                   "kind": .string(definition.kind)]]
            var schema: JSONValue
            if let validator = definition.validator, let encoded = try? JSONValue(encoding: validator.schema) {
                schema = encoded
                var properties = schema["properties"]?.objectValue ?? [:]
                properties["apiVersion"] = ["type": "string"]
                properties["kind"] = ["type": "string"]
                properties["metadata"] = ["type": "object", "x-kubernetes-preserve-unknown-fields": true]
                schema["properties"] = .object(properties)
            } else {
                schema = ["type": "object", "x-kubernetes-preserve-unknown-fields": true]
            }
            schema["x-kubernetes-group-version-kind"] = gvk
            let prefix = definition.group.isEmpty ? "io.k8s.api.core" : definition.group.split(separator: ".").reversed().joined(separator: ".")
            schemas["\(prefix).\(definition.version).\(definition.kind)"] = schema
        }
        return ["openapi": "3.0.0", "info": ["title": "Kubernetes", "version": "v1.32.0"], "paths": .object(paths(for: definitions)),
                "components": ["schemas": .object(schemas)]]
    }

    /// One item path per resource with a PATCH operation that declares the GVK and the
    /// `fieldValidation` parameter: how kubectl decides the server validates fields itself.
    private func paths(for definitions: [ResourceDefinition]) -> [String: JSONValue] {
        var paths: [String: JSONValue] = [:]
        let parameters: JSONValue = .array(["dryRun", "fieldManager", "fieldValidation", "force"].map { name in
            ["name": .string(name), "in": "query", "schema": ["type": .string(name == "force" ? "boolean" : "string")]]
        })
        for definition in definitions {
            let prefix = definition.group.isEmpty ? "/api/\(definition.version)" : "/apis/\(definition.group)/\(definition.version)"
            let scope = definition.namespaced ? "/namespaces/{namespace}" : ""
            let path = "\(prefix)\(scope)/\(definition.resource)/{name}"
            let gvk: JSONValue = ["group": .string(definition.group), "version": .string(definition.version), "kind": .string(definition.kind)]
            paths[path] = ["patch": ["x-kubernetes-group-version-kind": gvk, "parameters": parameters,
                                     "responses": ["200": ["description": "OK"]]]]
        }
        return paths
    }
}
