import Foundation
import KubeCore
import KubeMachinery

/// What the server does around writes, standing in for kube-apiserver's controllers:
/// CRDs become served resources (and lose their objects when deleted), owner references
/// are garbage-collected, a deleted namespace is emptied before it goes, and a new pod is
/// Running at once (there is no scheduler or kubelet; kubectl port-forward and exec ask
/// for a running pod).
extension ResourceHandlers {
    static let crdKey = ResourceKey(group: "apiextensions.k8s.io", resource: "customresourcedefinitions")
    static let podKey = ResourceKey(group: "", resource: "pods")
    static let namespaceKey = ResourceKey(group: "", resource: "namespaces")
    /// The finalizer in a namespace's `spec.finalizers` that its content keeps until it is gone.
    static let namespaceFinalizer = "kubernetes"

    /// What kube-apiserver's namespace strategy sets on create: phase Active, the `kubernetes`
    /// finalizer, and the `kubernetes.io/metadata.name` label.
    static func activeNamespace(_ namespace: JSONValue) -> JSONValue {
        var object = namespace
        let name = object[path: ["metadata", "name"]] ?? ""
        object.set(name, at: ["metadata", "labels", "kubernetes.io/metadata.name"])
        object.set([.string(namespaceFinalizer)], at: ["spec", "finalizers"])
        object["status"] = ["phase": "Active"]
        return object
    }

    func hooksOnCreate(_ definition: ResourceDefinition, object: JSONValue) -> JSONValue {
        if definition.key == Self.namespaceKey { return Self.activeNamespace(object) }
        if definition.key == Self.jobKey { return Self.defaultedJob(object) }
        if definition.key == Self.statefulSetKey { return Self.defaultedStatefulSet(object) }
        guard definition.key == Self.podKey, object[path: ["status", "phase"]] == nil else { return object }
        return scheduledAndStarted(object)
    }

    func hooksBeforeWrite(_ definition: ResourceDefinition, object: JSONValue) throws {
        try validateAdmissionConfiguration(definition, object: object)
        if definition.key == Self.crdKey {
            // Reject a CRD we could not serve before it is stored.
            do {
                _ = try CRDDefinitions.definitions(from: object, ruleEvaluator: nil)
            } catch let errors as ValidationErrors {
                let name = object[path: ["metadata", "name"]]?.stringValue ?? ""
                throw APIError(.invalid(group: definition.group, kind: definition.kind, name: name, errors: errors.errors))
            }
        }
    }

    func hooksAfterWrite(_ definition: ResourceDefinition, object: JSONValue) throws {
        if definition.key == Self.eventsKey {
            try mirrorToCoreEvent(object)
            return
        }
        guard definition.key == Self.crdKey else { return }
        let name = object[path: ["metadata", "name"]]?.stringValue ?? ""
        if object[path: ["metadata", "deletionTimestamp"]] != nil { return }
        try server.registry.install(crd: object)
        try markEstablished(name: name)
    }

    /// Sets the CRD's Established and NamesAccepted conditions, as apiextensions does.
    func markEstablished(name: String) throws {
        try store.mutate(Self.crdKey, namespace: "", name: name) { current in
            guard let current else { return .unchanged }
            var object = current.value()
            var conditions = (try? (object[path: ["status", "conditions"]] ?? .array([])).decode([Condition].self)) ?? []
            conditions.set(Condition(type: "NamesAccepted", status: "True", reason: "NoConflicts", message: "no conflicts found"))
            conditions.set(Condition(type: "Established", status: "True", reason: "InitialNamesAccepted",
                                     message: "the initial names have been accepted"))
            object.set(try JSONValue(encoding: conditions), at: ["status", "conditions"])
            object.set(object[path: ["spec", "names"]], at: ["status", "acceptedNames"])
            let storedVersions = (object[path: ["spec", "versions"]]?.arrayValue ?? [])
                .filter { $0["storage"]?.boolValue == true }.compactMap { $0["name"] }
            object.set(.array(storedVersions), at: ["status", "storedVersions"])
            return .put(object)
        }
    }

    static let eventsKey = ResourceKey(group: "events.k8s.io", resource: "events")
    static let coreEventsKey = ResourceKey(group: "", resource: "events")

    /// kube-apiserver serves one Event through both `events.k8s.io/v1` and `v1`; here the
    /// `events.k8s.io` object is mirrored into `v1` (fields converted as the API server's
    /// conversion does), so `kubectl describe` and `kubectl events` show what controllers
    /// record with the newer API.
    func mirrorToCoreEvent(_ event: JSONValue) throws {
        let namespace = event[path: ["metadata", "namespace"]]?.stringValue ?? ""
        let name = event[path: ["metadata", "name"]]?.stringValue ?? ""
        var core: JSONValue = ["apiVersion": "v1", "kind": "Event"]
        var metadata: JSONValue = ["name": .string(name), "namespace": .string(namespace)]
        metadata["labels"] = event[path: ["metadata", "labels"]]
        metadata["annotations"] = event[path: ["metadata", "annotations"]]
        core["metadata"] = metadata
        let renamed = [("regarding", "involvedObject"), ("note", "message"), ("reportingController", "reportingComponent"),
                       ("deprecatedSource", "source"), ("deprecatedCount", "count"),
                       ("deprecatedFirstTimestamp", "firstTimestamp"), ("deprecatedLastTimestamp", "lastTimestamp")]
        for (from, to) in renamed { core[to] = event[from] }
        for field in ["reason", "type", "action", "eventTime", "series", "related", "reportingInstance"] { core[field] = event[field] }
        // `kubectl describe` reads count and the timestamps; derive them from the series as the conversion does.
        let eventTime = event["eventTime"]?.stringValue.map { String($0.prefix(19)) + "Z" }
        if core["firstTimestamp"] == nil, let eventTime { core["firstTimestamp"] = .string(eventTime) }
        if core["count"] == nil { core["count"] = event[path: ["series", "count"]] ?? 1 }
        if core["lastTimestamp"] == nil {
            let last = event[path: ["series", "lastObservedTime"]]?.stringValue.map { String($0.prefix(19)) + "Z" } ?? eventTime
            if let last { core["lastTimestamp"] = .string(last) }
        }
        if core["source"] == nil, let component = event["reportingController"] { core["source"] = ["component": component] }
        try store.mutate(Self.coreEventsKey, namespace: namespace, name: name) { current in
            var value = core
            if let current {
                let existing = current.value()
                value.set(existing[path: ["metadata", "uid"]], at: ["metadata", "uid"])
                value.set(existing[path: ["metadata", "creationTimestamp"]], at: ["metadata", "creationTimestamp"])
            } else {
                value.set(.string(UUID().uuidString.lowercased()), at: ["metadata", "uid"])
                value.set(.string(KubeTime.format(Date())), at: ["metadata", "creationTimestamp"])
            }
            return .put(value)
        }
    }

    func hooksAfterDelete(_ definition: ResourceDefinition, object: JSONValue) throws {
        if definition.key == Self.eventsKey {
            let namespace = object[path: ["metadata", "namespace"]]?.stringValue ?? ""
            let name = object[path: ["metadata", "name"]]?.stringValue ?? ""
            _ = try? store.mutate(Self.coreEventsKey, namespace: namespace, name: name) { $0 == nil ? .unchanged : .delete }
        }
        if definition.key == Self.crdKey {
            let group = object[path: ["spec", "group"]]?.stringValue ?? ""
            let plural = object[path: ["spec", "names", "plural"]]?.stringValue ?? ""
            server.registry.uninstall(crdName: object[path: ["metadata", "name"]]?.stringValue ?? "")
            let key = ResourceKey(group: group, resource: plural)
            for stored in store.list(key, namespace: nil).objects {
                _ = try? store.mutate(key, namespace: stored.namespace, name: stored.name) { _ in .delete }
            }
        }
        if let uid = object[path: ["metadata", "uid"]]?.stringValue {
            collectDependents(ofUID: uid)
        }
    }

    /// Background propagation: objects whose ownerReferences name a deleted uid are deleted
    /// (or, with other owners left, lose that reference).
    func collectDependents(ofUID uid: String) {
        for resource in store.populatedResources() {
            for stored in store.list(resource, namespace: nil).objects {
                let value = stored.value()
                guard let owners = value[path: ["metadata", "ownerReferences"]]?.arrayValue,
                      owners.contains(where: { $0["uid"]?.stringValue == uid }) else { continue }
                let remaining = owners.filter { $0["uid"]?.stringValue != uid }
                let result = try? store.mutate(resource, namespace: stored.namespace, name: stored.name) { current in
                    guard let current else { return .unchanged }
                    var object = current.value()
                    if !remaining.isEmpty {
                        object.set(.array(remaining), at: ["metadata", "ownerReferences"])
                        return .put(object)
                    }
                    if !(object[path: ["metadata", "finalizers"]]?.arrayValue?.isEmpty ?? true) {
                        if object[path: ["metadata", "deletionTimestamp"]] != nil { return .unchanged }
                        object.set(.string(KubeTime.format(Date())), at: ["metadata", "deletionTimestamp"])
                        object.set(.int(0), at: ["metadata", "deletionGracePeriodSeconds"])
                        return .put(object)
                    }
                    return .delete
                }
                if let event = result?.event, event.kind == .deleted,
                   let childUID = event.object.value()[path: ["metadata", "uid"]]?.stringValue {
                    collectDependents(ofUID: childUID)
                }
            }
        }
    }

    /// The namespace controller: delete everything in the namespace, wait for finalizers to
    /// clear, then remove the namespace.
    func finishNamespaceDeletion(name: String, object: JSONValue) async {
        for _ in 0..<600 {
            var remaining = 0
            for definition in server.registry.all() where definition.namespaced {
                for stored in store.list(definition.key, namespace: name).objects {
                    remaining += 1
                    let value = stored.value()
                    if value[path: ["metadata", "deletionTimestamp"]] != nil { continue }
                    let result = try? store.mutate(definition.key, namespace: name, name: stored.name) { current in
                        guard let current else { return .unchanged }
                        var object = current.value()
                        if object[path: ["metadata", "finalizers"]]?.arrayValue?.isEmpty ?? true { return .delete }
                        object.set(.string(KubeTime.format(Date())), at: ["metadata", "deletionTimestamp"])
                        object.set(.int(0), at: ["metadata", "deletionGracePeriodSeconds"])
                        return .put(object)
                    }
                    if let event = result?.event, event.kind == .deleted {
                        try? hooksAfterDelete(definition, object: event.object.value())
                    }
                }
            }
            if remaining == 0 { break }
            try? await Task.sleep(for: .milliseconds(100))
        }
        let nsKey = ResourceKey(group: "", resource: "namespaces")
        _ = try? store.mutate(nsKey, namespace: "", name: name) { current in
            guard let current else { return .unchanged }
            var object = current.value()
            let finalizers = (object[path: ["spec", "finalizers"]]?.arrayValue ?? [])
                .filter { $0.stringValue != Self.namespaceFinalizer }
            object.set(.array(finalizers), at: ["spec", "finalizers"])
            if finalizers.isEmpty, object[path: ["metadata", "finalizers"]]?.arrayValue?.isEmpty ?? true { return .delete }
            return .put(object)
        }
        if let uid = object[path: ["metadata", "uid"]]?.stringValue { collectDependents(ofUID: uid) }
    }
}
