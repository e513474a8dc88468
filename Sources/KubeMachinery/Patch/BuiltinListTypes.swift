import KubeCore

/// How the lists of built-in kinds merge: the Go struct tags kube-apiserver reads.
///
/// Contract: a list is named by its path of field names from the object root, list items not
/// counted (`["spec", "template", "spec", "containers", "ports"]`). For strategic merge patch a
/// list either merges by a `patchMergeKey`, merges as a set of primitives (`metadata.finalizers`),
/// or is replaced whole; for server-side apply a list is a map keyed by `listMapKeys`, a set
/// (`[]`), or atomic (`nil`). Only the lists of the kinds the local cluster serves (Pods,
/// Deployments and other pod templates, Services, ServiceAccounts, ConfigMaps, Secrets, Roles,
/// Namespaces, Events, Leases) are listed; every other list (tolerations, args, command, envFrom,
/// RBAC rules, ...) is atomic, as it is in Kubernetes.
public enum BuiltinListTypes {
    /// The strategic merge patch behaviour of a list.
    public enum MergeStrategy: Equatable, Sendable {
        case replace
        case mergeByKey(String)
        case mergePrimitives
    }

    private struct Entry {
        var mergeKey: String?
        var mapKeys: [String]?
    }

    private static let containerLists: Set<String> = ["containers", "initContainers", "ephemeralContainers"]

    private static func entry(kind: String, path: [String]) -> Entry? {
        guard let field = path.last else { return nil }
        let parent = path.count >= 2 ? path[path.count - 2] : ""
        switch (parent, field) {
        case ("metadata", "ownerReferences"): return Entry(mergeKey: "uid", mapKeys: ["uid"])
        case ("metadata", "finalizers"): return Entry(mergeKey: nil, mapKeys: [])
        case ("status", "conditions"): return Entry(mergeKey: "type", mapKeys: ["type"])
        case ("status", "podIPs"), ("status", "hostIPs"): return Entry(mergeKey: "ip", mapKeys: ["ip"])
        case ("", "secrets") where kind == "ServiceAccount": return Entry(mergeKey: "name", mapKeys: ["name"])
        default: break
        }
        if parent == "spec" {
            switch field {
            case "containers", "initContainers", "ephemeralContainers", "volumes", "imagePullSecrets",
                 "resourceClaims", "schedulingGates":
                return Entry(mergeKey: "name", mapKeys: ["name"])
            case "hostAliases": return Entry(mergeKey: "ip", mapKeys: ["ip"])
            case "topologySpreadConstraints":
                return Entry(mergeKey: "topologyKey", mapKeys: ["topologyKey", "whenUnsatisfiable"])
            case "ports" where kind == "Service" && path.count == 2:
                return Entry(mergeKey: "port", mapKeys: ["port", "protocol"])
            default: return nil
            }
        }
        if containerLists.contains(parent) {
            switch field {
            case "ports": return Entry(mergeKey: "containerPort", mapKeys: ["containerPort", "protocol"])
            case "env": return Entry(mergeKey: "name", mapKeys: ["name"])
            case "volumeMounts": return Entry(mergeKey: "mountPath", mapKeys: ["mountPath"])
            case "volumeDevices": return Entry(mergeKey: "devicePath", mapKeys: ["devicePath"])
            case "resizePolicy": return Entry(mergeKey: nil, mapKeys: nil)
            default: return nil
            }
        }
        return nil
    }

    /// Strategic merge patch behaviour of the list at `path` in an object of `kind`.
    public static func mergeStrategy(kind: String, path: [String]) -> MergeStrategy {
        guard let entry = entry(kind: kind, path: path) else { return .replace }
        if let key = entry.mergeKey { return .mergeByKey(key) }
        return entry.mapKeys == [] ? .mergePrimitives : .replace
    }

    /// Server-side apply list type of the list at `path`: map keys, `[]` for a set, `nil` for atomic.
    /// Pass `{ BuiltinListTypes.listMapKeys(kind: kind, path: $0) }` to ``ServerSideApply``.
    public static func listMapKeys(kind: String, path: [String]) -> [String]? {
        entry(kind: kind, path: path)?.mapKeys
    }

    /// Lists every object has, whatever its kind, custom resources included.
    static func metadataListMapKeys(path: [String]) -> [String]?? {
        guard path.count == 2, path[0] == "metadata" else { return nil }
        switch path[1] {
        case "finalizers": return .some([])
        case "ownerReferences": return .some(["uid"])
        default: return nil
        }
    }
}
