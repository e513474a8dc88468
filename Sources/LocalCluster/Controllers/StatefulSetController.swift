import ControllerRuntime
import Foundation
import KubeCore

/// kube-controller-manager's statefulset controller, for pods that start at once:
///
/// - Pods are named `<statefulset>-<ordinal>` for ordinals `0..<replicas`, created in order
///   (`OrderedReady`: the next only once every lower one is Running and Ready; `Parallel`: all
///   at once) with `spec.hostname` their name, `spec.subdomain` the `serviceName`, and labels
///   `controller-revision-hash`, `statefulset.kubernetes.io/pod-name` and
///   `apps.kubernetes.io/pod-index`. Each `volumeClaimTemplates` entry becomes a
///   PersistentVolumeClaim `<claim>-<pod>` (kept when the pod goes) and a volume of the pod.
/// - Scaling down deletes from the highest ordinal. A changed template is a new revision
///   (`<statefulset>-<hash>`): with the `RollingUpdate` strategy, pods at or above the
///   partition that run an older revision are replaced from the highest ordinal down;
///   `OnDelete` leaves them until someone deletes them.
/// - Events: `SuccessfulCreate` "create Pod web-0 in StatefulSet web successful", and
///   `SuccessfulDelete` likewise. Status: `replicas`, `readyReplicas`, `availableReplicas`,
///   `currentReplicas`, `updatedReplicas`, `currentRevision`, `updateRevision`,
///   `observedGeneration`, `collisionCount` — what `kubectl rollout status sts` reads.
/// - No ControllerRevision objects are kept (so no `rollout undo` for StatefulSets).
struct StatefulSetController: Reconciler {
    let store: ObjectStore
    let client: InProcessClient
    let events: ComponentEvents

    static let revisionLabel = "controller-revision-hash"

    func reconcile(_ request: ReconcileRequest) async throws -> ReconcileResult {
        let resource = APIResource.statefulSets
        guard let stored = store.get(resource.key, namespace: request.namespace, name: request.name) else { return .done }
        let statefulSet = stored.value()
        guard !WorkloadObjects.isDeleting(statefulSet), WorkloadObjects.selector(statefulSet) != nil,
              let template = statefulSet[path: ["spec", "template"]] else { return .done }
        let replicas = Int(statefulSet[path: ["spec", "replicas"]]?.intValue ?? 1)
        let updateRevision = "\(request.name)-\(WorkloadObjects.templateHash(template))"
        let parallel = statefulSet[path: ["spec", "podManagementPolicy"]]?.stringValue == "Parallel"
        let onDelete = statefulSet[path: ["spec", "updateStrategy", "type"]]?.stringValue == "OnDelete"
        let partition = Int(statefulSet[path: ["spec", "updateStrategy", "rollingUpdate", "partition"]]?.intValue ?? 0)

        var pods = podsByOrdinal(statefulSet, namespace: request.namespace)
        // Pods past the end go first, highest ordinal first.
        for ordinal in pods.keys.sorted(by: >) where ordinal >= replicas {
            try await deletePod(statefulSet, pods[ordinal]!)
            pods[ordinal] = nil
        }
        // Outdated pods are replaced from the highest ordinal down.
        if !onDelete {
            for ordinal in pods.keys.sorted(by: >) where ordinal >= partition {
                let pod = pods[ordinal]!
                guard pod[path: ["metadata", "labels", Self.revisionLabel]]?.stringValue != updateRevision else { continue }
                try await deletePod(statefulSet, pod)
                pods[ordinal] = nil
            }
        }
        for ordinal in 0..<replicas where pods[ordinal] == nil {
            if !parallel, (0..<ordinal).contains(where: { pods[$0].map { !WorkloadObjects.isReady($0) } ?? true }) {
                break
            }
            // Below the partition a missing pod comes back at the revision it had.
            let revision = ordinal < partition ? (statefulSet[path: ["status", "currentRevision"]]?.stringValue ?? updateRevision)
                                               : updateRevision
            pods[ordinal] = try await createPod(statefulSet, ordinal: ordinal, revision: revision, template: template)
        }
        try await updateStatus(statefulSet, pods: Array(pods.values), replicas: replicas, updateRevision: updateRevision)
        return .done
    }

    /// Pods controlled by the StatefulSet, by the ordinal at the end of their name.
    func podsByOrdinal(_ statefulSet: JSONValue, namespace: String) -> [Int: JSONValue] {
        let prefix = WorkloadObjects.name(statefulSet) + "-"
        var pods: [Int: JSONValue] = [:]
        for pod in WorkloadObjects.owned(by: statefulSet, .pods, in: store, namespace: namespace) where !WorkloadObjects.isDeleting(pod) {
            let name = WorkloadObjects.name(pod)
            guard name.hasPrefix(prefix), let ordinal = Int(name.dropFirst(prefix.count)) else { continue }
            pods[ordinal] = pod
        }
        return pods
    }

    func createPod(_ statefulSet: JSONValue, ordinal: Int, revision: String, template: JSONValue) async throws -> JSONValue {
        let namespace = statefulSet[path: ["metadata", "namespace"]]?.stringValue ?? ""
        let setName = WorkloadObjects.name(statefulSet)
        let name = "\(setName)-\(ordinal)"
        var pod = WorkloadObjects.pod(from: template, namespace: namespace, name: name,
                                      extraLabels: [Self.revisionLabel: revision, "statefulset.kubernetes.io/pod-name": name,
                                                    "apps.kubernetes.io/pod-index": String(ordinal)],
                                      owner: WorkloadObjects.controllerReference(to: statefulSet, .statefulSets))
        pod.set(.string(name), at: ["spec", "hostname"])
        if let service = statefulSet[path: ["spec", "serviceName"]]?.stringValue, !service.isEmpty {
            pod.set(.string(service), at: ["spec", "subdomain"])
        }
        var volumes = pod[path: ["spec", "volumes"]]?.arrayValue ?? []
        for claim in statefulSet[path: ["spec", "volumeClaimTemplates"]]?.arrayValue ?? [] {
            let claimName = "\(WorkloadObjects.name(claim))-\(name)"
            try await ensureClaim(claim, name: claimName, namespace: namespace, statefulSet: statefulSet)
            volumes.removeAll { $0["name"]?.stringValue == WorkloadObjects.name(claim) }
            volumes.append(["name": claim[path: ["metadata", "name"]] ?? "", "persistentVolumeClaim": ["claimName": .string(claimName)]])
        }
        if !volumes.isEmpty { pod.set(.array(volumes), at: ["spec", "volumes"]) }
        let created = try await client.create(.pods, namespace: namespace, pod)
        await events.record(statefulSet, .statefulSets, reason: "SuccessfulCreate",
                            message: "create Pod \(name) in StatefulSet \(setName) successful")
        return created
    }

    /// A claim from a `volumeClaimTemplates` entry, created once and then left alone (its
    /// data outlives the pod), reported Bound with the requested capacity (no provisioner here).
    func ensureClaim(_ template: JSONValue, name: String, namespace: String, statefulSet: JSONValue) async throws {
        guard store.get(APIResource.persistentVolumeClaims.key, namespace: namespace, name: name) == nil else { return }
        var labels = template[path: ["metadata", "labels"]]?.objectValue ?? [:]
        for (key, value) in statefulSet[path: ["spec", "selector", "matchLabels"]]?.objectValue ?? [:] { labels[key] = value }
        var claim: JSONValue = ["apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                "metadata": ["name": .string(name), "namespace": .string(namespace), "labels": .object(labels)],
                                "spec": template["spec"] ?? [:]]
        claim["status"] = ["phase": "Bound", "accessModes": template[path: ["spec", "accessModes"]] ?? ["ReadWriteOnce"],
                           "capacity": template[path: ["spec", "resources", "requests"]] ?? [:]]
        do {
            try await client.create(.persistentVolumeClaims, namespace: namespace, claim)
        } catch let failure as InProcessClient.Failure where failure.status == 409 {}
    }

    func deletePod(_ statefulSet: JSONValue, _ pod: JSONValue) async throws {
        let namespace = statefulSet[path: ["metadata", "namespace"]]?.stringValue ?? ""
        try await client.delete(.pods, namespace: namespace, name: WorkloadObjects.name(pod), uid: WorkloadObjects.uid(pod))
        await events.record(statefulSet, .statefulSets, reason: "SuccessfulDelete",
                            message: "delete Pod \(WorkloadObjects.name(pod)) in StatefulSet \(WorkloadObjects.name(statefulSet)) successful")
    }

    func updateStatus(_ statefulSet: JSONValue, pods: [JSONValue], replicas: Int, updateRevision: String) async throws {
        func revision(_ pod: JSONValue) -> String? { pod[path: ["metadata", "labels", Self.revisionLabel]]?.stringValue }
        let updated = pods.filter { revision($0) == updateRevision }.count
        var currentRevision = statefulSet[path: ["status", "currentRevision"]]?.stringValue ?? updateRevision
        // Once every pod runs the update revision, it is the current one.
        if updated == replicas && pods.count == replicas { currentRevision = updateRevision }
        let ready = pods.filter(WorkloadObjects.isReady).count
        let minReady = statefulSet[path: ["spec", "minReadySeconds"]]?.intValue ?? 0
        let available = pods.filter { WorkloadObjects.isAvailable($0, minReadySeconds: minReady, now: Date()) }.count
        var status = statefulSet["status"]?.objectValue ?? [:]
        status["observedGeneration"] = statefulSet[path: ["metadata", "generation"]] ?? 1
        status["replicas"] = .int(Int64(pods.count))
        status["readyReplicas"] = .int(Int64(ready))
        status["availableReplicas"] = .int(Int64(available))
        status["currentReplicas"] = .int(Int64(pods.filter { revision($0) == currentRevision }.count))
        status["updatedReplicas"] = .int(Int64(updated))
        status["currentRevision"] = .string(currentRevision)
        status["updateRevision"] = .string(updateRevision)
        status["collisionCount"] = status["collisionCount"] ?? 0
        try await StatusWriter(client: client).write(statefulSet, .statefulSets, status: .object(status))
    }
}
