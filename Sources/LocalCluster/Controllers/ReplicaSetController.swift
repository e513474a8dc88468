import ControllerRuntime
import Foundation
import KubeCore

/// kube-controller-manager's replicaset controller: keeps `spec.replicas` active pods of the
/// template for each ReplicaSet and reports them in its status.
///
/// - Pods are the ReplicaSet's when their controller reference names its uid; they are
///   created with `generateName: <replicaset>-` (the API server adds five characters), the
///   template's labels and annotations, and that reference. Orphans are not adopted.
/// - Too many: the excess goes, not-ready pods first, then the newest (`ActivePodsWithRanks`,
///   simplified). Each create and delete records `SuccessfulCreate`/`SuccessfulDelete`.
/// - Status: `replicas` (active pods), `fullyLabeledReplicas`, `readyReplicas`,
///   `availableReplicas` (ready for `minReadySeconds`; a pod not yet there requeues the
///   ReplicaSet for when it will be), `observedGeneration`.
/// - Reads come from the store, which a write has updated before it returns, so no
///   "expectations" are needed to avoid creating twice.
struct ReplicaSetController: Reconciler {
    let store: ObjectStore
    let client: InProcessClient
    let events: ComponentEvents

    func reconcile(_ request: ReconcileRequest) async throws -> ReconcileResult {
        let resource = APIResource.replicaSets
        guard let stored = store.get(resource.key, namespace: request.namespace, name: request.name) else { return .done }
        let replicaSet = stored.value()
        guard !WorkloadObjects.isDeleting(replicaSet), let selector = WorkloadObjects.selector(replicaSet),
              let template = replicaSet[path: ["spec", "template"]] else { return .done }
        let desired = Int(replicaSet[path: ["spec", "replicas"]]?.intValue ?? 1)
        var pods = WorkloadObjects.owned(by: replicaSet, .pods, in: store, namespace: request.namespace)
        let active = pods.filter(WorkloadObjects.isActive)
        if active.count < desired {
            let owner = WorkloadObjects.controllerReference(to: replicaSet, resource)
            for _ in active.count..<desired {
                let pod = WorkloadObjects.pod(from: template, namespace: request.namespace,
                                              generateName: "\(request.name)-", owner: owner)
                let created = try await client.create(.pods, namespace: request.namespace, pod)
                await events.record(replicaSet, resource, reason: "SuccessfulCreate",
                                    message: "Created pod: \(WorkloadObjects.name(created))")
            }
        } else if active.count > desired {
            for pod in Self.deletionOrder(active).prefix(active.count - desired) {
                try await client.delete(.pods, namespace: request.namespace, name: WorkloadObjects.name(pod),
                                        uid: WorkloadObjects.uid(pod))
                await events.record(replicaSet, resource, reason: "SuccessfulDelete",
                                    message: "Deleted pod: \(WorkloadObjects.name(pod))")
            }
        }
        if active.count != desired {
            pods = WorkloadObjects.owned(by: replicaSet, .pods, in: store, namespace: request.namespace)
        }
        return try await updateStatus(replicaSet, pods: pods.filter(WorkloadObjects.isActive), selector: selector)
    }

    /// Not ready before ready, then newest first.
    static func deletionOrder(_ pods: [JSONValue]) -> [JSONValue] {
        pods.sorted { a, b in
            let (readyA, readyB) = (WorkloadObjects.isReady(a), WorkloadObjects.isReady(b))
            if readyA != readyB { return !readyA }
            let createdA = a[path: ["metadata", "creationTimestamp"]]?.stringValue ?? ""
            let createdB = b[path: ["metadata", "creationTimestamp"]]?.stringValue ?? ""
            if createdA != createdB { return createdA > createdB }
            return WorkloadObjects.name(a) > WorkloadObjects.name(b)
        }
    }

    private func updateStatus(_ replicaSet: JSONValue, pods: [JSONValue], selector: LabelSelector) async throws -> ReconcileResult {
        let now = Date()
        let minReady = replicaSet[path: ["spec", "minReadySeconds"]]?.intValue ?? 0
        let templateLabels = (replicaSet[path: ["spec", "template", "metadata", "labels"]]?.objectValue ?? [:])
            .compactMapValues(\.stringValue)
        let fullyLabeled = pods.filter { pod in
            let labels = (pod[path: ["metadata", "labels"]]?.objectValue ?? [:]).compactMapValues(\.stringValue)
            return templateLabels.allSatisfy { labels[$0.key] == $0.value }
        }
        let ready = pods.filter(WorkloadObjects.isReady)
        let available = pods.filter { WorkloadObjects.isAvailable($0, minReadySeconds: minReady, now: now) }
        var status = replicaSet["status"]?.objectValue ?? [:]
        status["replicas"] = .int(Int64(pods.count))
        status["fullyLabeledReplicas"] = .int(Int64(fullyLabeled.count))
        status["readyReplicas"] = .int(Int64(ready.count))
        status["availableReplicas"] = .int(Int64(available.count))
        status["observedGeneration"] = replicaSet[path: ["metadata", "generation"]] ?? 1
        try await StatusWriter(client: client).write(replicaSet, .replicaSets, status: .object(status))
        // A ready pod becomes available once minReadySeconds have passed: look again then.
        return ready.count > available.count ? .requeueAfter(.seconds(max(1, minReady))) : .done
    }
}

/// Writes a workload's whole `status` as a merge patch of `/status`: fields no longer in the
/// new status are sent as null, so they go. Nothing is sent when the status is unchanged.
struct StatusWriter {
    let client: InProcessClient

    func write(_ object: JSONValue, _ resource: APIResource, status: JSONValue) async throws {
        let old = object["status"]?.objectValue ?? [:]
        guard var patch = status.objectValue, status != object["status"] else { return }
        for key in old.keys where patch[key] == nil { patch[key] = .null }
        let namespace = object[path: ["metadata", "namespace"]]?.stringValue ?? ""
        do {
            try await client.mergePatch(resource, namespace: namespace, name: WorkloadObjects.name(object),
                                        subresource: "status", ["status": .object(patch)])
        } catch let failure as InProcessClient.Failure where failure.status == 404 {
            // Deleted meanwhile: nothing to report on.
        }
    }
}
