import Foundation
import KubeCore
import KubeMachinery

/// What a write asks to do, as validating admission sees it (apiserver's
/// `admission.Attributes`), and the CEL `request` variable built from it (an
/// `admission.k8s.io/v1` AdmissionRequest as unstructured JSON: fields Go omits when empty are
/// absent, so `request.namespace` of a cluster-scoped request is an error, as there).
struct AdmissionAttributes: Sendable {
    /// `CREATE`, `UPDATE`, `DELETE`.
    var operation: String
    var group: String
    var version: String
    var resource: String
    var subresource: String
    var kind: String
    var namespace: String
    /// The request's name; on a create, the object's (empty with generateName).
    var name: String
    /// The object after the write; nil on DELETE.
    var object: JSONValue?
    /// The stored object; nil on CREATE.
    var oldObject: JSONValue?
    /// The request's Namespace object (nil for cluster-scoped requests).
    var namespaceObject: JSONValue?
    var user: UserInfo
    var dryRun: Bool
    var fieldManager: String?

    func labels(of object: JSONValue?) -> [String: String] {
        var labels: [String: String] = [:]
        for (key, value) in object?[path: ["metadata", "labels"]]?.objectValue ?? [:] {
            if let text = value.stringValue { labels[key] = text }
        }
        return labels
    }

    /// The name a denial names: the request's, else the object's, else its generateName.
    var nameForMessages: String {
        if !name.isEmpty { return name }
        let metadata = (object ?? oldObject)?["metadata"]
        if let objectName = metadata?["name"]?.stringValue, !objectName.isEmpty { return objectName }
        return metadata?["generateName"]?.stringValue ?? "Unknown"
    }

    /// The CEL `request` variable.
    var request: CELValue {
        var userInfo: [String: CELValue] = ["username": .string(user.username)]
        if !user.uid.isEmpty { userInfo["uid"] = .string(user.uid) }
        if !user.groups.isEmpty { userInfo["groups"] = .list(user.groups.map(CELValue.string)) }
        if !user.extra.isEmpty { userInfo["extra"] = .map(user.extra.mapValues { .list($0.map(CELValue.string)) }) }
        let kindValue: CELValue = .map(["group": .string(group), "version": .string(version), "kind": .string(kind)])
        let resourceValue: CELValue = .map(["group": .string(group), "version": .string(version), "resource": .string(resource)])
        var request: [String: CELValue] = [
            "uid": .string(UUID().uuidString.lowercased()),
            "kind": kindValue, "resource": resourceValue, "requestKind": kindValue, "requestResource": resourceValue,
            "operation": .string(operation), "userInfo": .map(userInfo), "dryRun": .bool(dryRun),
        ]
        if !subresource.isEmpty {
            request["subResource"] = .string(subresource)
            request["requestSubResource"] = .string(subresource)
        }
        if !name.isEmpty { request["name"] = .string(name) }
        if !namespace.isEmpty { request["namespace"] = .string(namespace) }
        let optionsKind = ["CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"][operation]
        if let optionsKind {
            var options: [String: CELValue] = ["kind": .string(optionsKind), "apiVersion": .string("meta.k8s.io/v1")]
            if let fieldManager, !fieldManager.isEmpty, operation != "DELETE" { options["fieldManager"] = .string(fieldManager) }
            request["options"] = .map(options)
        }
        return .map(request)
    }

    /// What `authorizer.requestResource` checks.
    var requestResourceCheck: CELAuthorizationCheck {
        CELAuthorizationCheck(verb: "", group: group, resource: resource, subresource: subresource,
                              namespace: namespace, name: name)
    }
}
