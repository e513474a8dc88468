import ControllerRuntime
import Foundation
import KubeCore

/// kube-controller-manager's deployment controller: a ReplicaSet per pod template, rolled
/// out by the Deployment's strategy, and the Deployment's status and revision.
///
/// - The new ReplicaSet is the one (controlled by this Deployment) whose template equals the
///   Deployment's once `pod-template-hash` is set aside; none: one is created, named
///   `<deployment>-<pod-template-hash>`, with the hash in its labels, selector and template,
///   the Deployment's annotations, and `deployment.kubernetes.io/revision` one past the old
///   ReplicaSets' highest. An old ReplicaSet that becomes new again (`rollout undo`) takes the
///   next revision and remembers its earlier one in `revision-history`. The Deployment's own
///   revision annotation follows the new ReplicaSet's.
/// - RollingUpdate: the new ReplicaSet grows while all ReplicaSets together stay within
///   `replicas + maxSurge`, and old ones shrink while available pods stay at or above
///   `replicas - maxUnavailable` (25%/25% by default). Recreate: old ReplicaSets go to zero,
///   and the new one is created or grown once their pods are gone. Each resize records
///   `ScalingReplicaSet`. A paused Deployment is not rolled out; its status still is.
/// - Old ReplicaSets at zero beyond `revisionHistoryLimit` (default 10) are deleted, oldest first.
/// - Status: `replicas`, `updatedReplicas`, `readyReplicas`, `availableReplicas`,
///   `unavailableReplicas` summed from the ReplicaSets, `observedGeneration`, and the
///   conditions `kubectl rollout status` reads: Available (MinimumReplicasAvailable) and
///   Progressing (ReplicaSetUpdated, then NewReplicaSetAvailable once complete).
/// - Progress deadlines, proportional scaling of several live ReplicaSets and adoption of
///   orphaned ReplicaSets are not modelled.
struct DeploymentController: Reconciler {
    let store: ObjectStore
    let client: InProcessClient
    let events: ComponentEvents

    static let revisionAnnotation = "deployment.kubernetes.io/revision"
    static let revisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"
    static let desiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
    static let maxReplicasAnnotation = "deployment.kubernetes.io/max-replicas"
    static let hashLabel = "pod-template-hash"

    /// The Deployment being reconciled and what was read with it.
    struct Rollout {
        var deployment: JSONValue
        var namespace: String
        var name: String
        var desired: Int
        var maxSurge: Int
        var maxUnavailable: Int
    }

    func reconcile(_ request: ReconcileRequest) async throws -> ReconcileResult {
        guard let stored = store.get(APIResource.deployments.key, namespace: request.namespace, name: request.name) else { return .done }
        let deployment = stored.value()
        guard !WorkloadObjects.isDeleting(deployment), WorkloadObjects.selector(deployment) != nil,
              deployment[path: ["spec", "template"]] != nil else { return .done }
        let desired = Int(deployment[path: ["spec", "replicas"]]?.intValue ?? 1)
        let rolling = deployment[path: ["spec", "strategy", "type"]]?.stringValue != "Recreate"
        var maxSurge = 0, maxUnavailable = 0
        if rolling {
            let update = deployment[path: ["spec", "strategy", "rollingUpdate"]]
            maxSurge = WorkloadObjects.scaledValue(update?["maxSurge"], total: desired, default: "25%", roundUp: true)
            maxUnavailable = WorkloadObjects.scaledValue(update?["maxUnavailable"], total: desired, default: "25%", roundUp: false)
            if maxSurge == 0 && maxUnavailable == 0 { maxUnavailable = 1 }
        }
        let rollout = Rollout(deployment: deployment, namespace: request.namespace, name: request.name,
                              desired: desired, maxSurge: maxSurge, maxUnavailable: maxUnavailable)
        let paused = deployment[path: ["spec", "paused"]]?.boolValue == true
        if !paused {
            var (newRS, oldRSs) = replicaSets(of: deployment)
            if rolling {
                newRS = try await rollingUpdate(rollout, newRS: newRS, oldRSs: oldRSs)
            } else {
                newRS = try await recreate(rollout, newRS: newRS, oldRSs: oldRSs)
            }
            if let newRS { try await syncRevision(rollout, newRS: newRS, oldRSs: oldRSs) }
            try await cleanUpHistory(rollout)
        }
        guard let current = store.get(APIResource.deployments.key, namespace: request.namespace, name: request.name) else { return .done }
        try await updateStatus(rollout, deployment: current.value())
        return .done
    }

    // MARK: ReplicaSets

    /// The new ReplicaSet (template equal to the Deployment's) and the old ones, oldest first.
    func replicaSets(of deployment: JSONValue) -> (new: JSONValue?, old: [JSONValue]) {
        let namespace = deployment[path: ["metadata", "namespace"]]?.stringValue ?? ""
        let all = WorkloadObjects.owned(by: deployment, .replicaSets, in: store, namespace: namespace).sorted { a, b in
            let createdA = a[path: ["metadata", "creationTimestamp"]]?.stringValue ?? ""
            let createdB = b[path: ["metadata", "creationTimestamp"]]?.stringValue ?? ""
            return createdA == createdB ? WorkloadObjects.name(a) < WorkloadObjects.name(b) : createdA < createdB
        }
        let template = Self.comparable(deployment[path: ["spec", "template"]])
        let new = all.first { Self.comparable($0[path: ["spec", "template"]], droppingHash: true) == template }
        return (new, all.filter { WorkloadObjects.uid($0) != new.map(WorkloadObjects.uid) })
    }

    /// A template as compared for "same template": without the hash label, and without the
    /// empty values (`null`, `{}`, `[]`, `""`) that typed clients add (`creationTimestamp:
    /// null`, `resources: {}`) and that kube-apiserver's defaulting makes equal to absent.
    static func comparable(_ template: JSONValue?, droppingHash: Bool = false) -> JSONValue {
        var template = template ?? [:]
        if droppingHash { template.set(nil, at: ["metadata", "labels", hashLabel]) }
        return withoutEmptyValues(template) ?? [:]
    }

    static func withoutEmptyValues(_ value: JSONValue) -> JSONValue? {
        switch value {
        case .null: return nil
        case .string(let text): return text.isEmpty ? nil : value
        case .array(let items):
            let kept = items.map { withoutEmptyValues($0) ?? .null }
            return kept.isEmpty ? nil : .array(kept)
        case .object(let members):
            let kept = members.compactMapValues(withoutEmptyValues)
            return kept.isEmpty ? nil : .object(kept)
        default: return value
        }
    }

    static func replicas(_ replicaSet: JSONValue) -> Int { Int(replicaSet[path: ["spec", "replicas"]]?.intValue ?? 1) }
    static func statusCount(_ replicaSet: JSONValue, _ field: String) -> Int { Int(replicaSet[path: ["status", field]]?.intValue ?? 0) }
    static func revision(_ object: JSONValue) -> Int {
        Int(object[path: ["metadata", "annotations", revisionAnnotation]]?.stringValue ?? "") ?? 0
    }

    /// Creates the new ReplicaSet with `replicas`; a name taken by a different template bumps
    /// `status.collisionCount` (a new hash next time) and throws so the Deployment is retried.
    func createReplicaSet(_ rollout: Rollout, replicas: Int, oldRSs: [JSONValue]) async throws -> JSONValue {
        let deployment = rollout.deployment
        let collisionCount = deployment[path: ["status", "collisionCount"]]?.intValue
        var template = deployment[path: ["spec", "template"]] ?? [:]
        let hash = WorkloadObjects.templateHash(Self.comparable(template), collisionCount: collisionCount)
        template.set(.string(hash), at: ["metadata", "labels", Self.hashLabel])
        var selector = deployment[path: ["spec", "selector"]] ?? [:]
        selector.set(.string(hash), at: ["matchLabels", Self.hashLabel])
        var annotations = Self.copiedAnnotations(deployment)
        annotations[Self.revisionAnnotation] = .string(String((oldRSs.map(Self.revision).max() ?? 0) + 1))
        annotations[Self.desiredReplicasAnnotation] = .string(String(rollout.desired))
        annotations[Self.maxReplicasAnnotation] = .string(String(rollout.desired + rollout.maxSurge))
        var spec: JSONValue = ["replicas": .int(Int64(replicas)), "selector": selector, "template": template]
        spec["minReadySeconds"] = deployment[path: ["spec", "minReadySeconds"]]
        let replicaSet: JSONValue = [
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": ["name": .string("\(rollout.name)-\(hash)"), "namespace": .string(rollout.namespace),
                         "labels": template[path: ["metadata", "labels"]] ?? [:], "annotations": .object(annotations),
                         "ownerReferences": [WorkloadObjects.controllerReference(to: deployment, .deployments)]],
            "spec": spec,
        ]
        do {
            let created = try await client.create(.replicaSets, namespace: rollout.namespace, replicaSet)
            if replicas > 0 { await scaledEvent(rollout, created, from: 0, to: replicas) }
            return created
        } catch let failure as InProcessClient.Failure where failure.status == 409 {
            try await client.mergePatch(.deployments, namespace: rollout.namespace, name: rollout.name, subresource: "status",
                                        ["status": ["collisionCount": .int((collisionCount ?? 0) + 1)]])
            throw failure
        }
    }

    /// The Deployment's annotations that its ReplicaSets carry (`copyDeploymentAnnotationsToReplicaSet`).
    static func copiedAnnotations(_ deployment: JSONValue) -> [String: JSONValue] {
        let skipped: Set<String> = ["kubectl.kubernetes.io/last-applied-configuration", revisionAnnotation,
                                    revisionHistoryAnnotation, desiredReplicasAnnotation, maxReplicasAnnotation]
        return (deployment[path: ["metadata", "annotations"]]?.objectValue ?? [:]).filter { !skipped.contains($0.key) }
    }

    /// Sets a ReplicaSet's `spec.replicas` (and the annotations that record the Deployment's size).
    @discardableResult
    func scale(_ rollout: Rollout, _ replicaSet: JSONValue, to replicas: Int) async throws -> JSONValue {
        let from = Self.replicas(replicaSet)
        let patch: JSONValue = [
            "metadata": ["annotations": [Self.desiredReplicasAnnotation: .string(String(rollout.desired)),
                                         Self.maxReplicasAnnotation: .string(String(rollout.desired + rollout.maxSurge))]],
            "spec": ["replicas": .int(Int64(replicas))],
        ]
        let scaled = try await client.mergePatch(.replicaSets, namespace: rollout.namespace,
                                                 name: WorkloadObjects.name(replicaSet), patch)
        if from != replicas { await scaledEvent(rollout, replicaSet, from: from, to: replicas) }
        return scaled
    }

    func scaledEvent(_ rollout: Rollout, _ replicaSet: JSONValue, from: Int, to: Int) async {
        await events.record(rollout.deployment, .deployments, reason: "ScalingReplicaSet",
                            message: "Scaled \(to > from ? "up" : "down") replica set \(WorkloadObjects.name(replicaSet)) from \(from) to \(to)")
    }

    // MARK: Strategies

    func rollingUpdate(_ rollout: Rollout, newRS: JSONValue?, oldRSs: [JSONValue]) async throws -> JSONValue? {
        let allPods = (oldRSs + (newRS.map { [$0] } ?? [])).reduce(0) { $0 + Self.replicas($1) }
        let maxTotal = rollout.desired + rollout.maxSurge
        var newRS = newRS
        let newReplicas = newRS.map(Self.replicas) ?? 0
        if let current = newRS, newReplicas > rollout.desired {
            newRS = try await scale(rollout, current, to: rollout.desired)
        } else if newReplicas < rollout.desired {
            let scaleUp = min(max(0, maxTotal - allPods), rollout.desired - newReplicas)
            if let current = newRS {
                if scaleUp > 0 { newRS = try await scale(rollout, current, to: newReplicas + scaleUp) }
            } else {
                newRS = try await createReplicaSet(rollout, replicas: scaleUp, oldRSs: oldRSs)
            }
        } else if newRS == nil {
            newRS = try await createReplicaSet(rollout, replicas: rollout.desired, oldRSs: oldRSs)
        }
        // Old ReplicaSets shrink while the available pods stay at or above the minimum.
        let live = oldRSs.filter { Self.replicas($0) > 0 }
        guard !live.isEmpty else { return newRS }
        let available = (oldRSs + (newRS.map { [$0] } ?? [])).reduce(0) { $0 + Self.statusCount($1, "availableReplicas") }
        let minAvailable = rollout.desired - rollout.maxUnavailable
        var budget = available - minAvailable
        for replicaSet in live where budget > 0 {
            let down = min(Self.replicas(replicaSet), budget)
            try await scale(rollout, replicaSet, to: Self.replicas(replicaSet) - down)
            budget -= down
        }
        return newRS
    }

    func recreate(_ rollout: Rollout, newRS: JSONValue?, oldRSs: [JSONValue]) async throws -> JSONValue? {
        for replicaSet in oldRSs where Self.replicas(replicaSet) > 0 {
            try await scale(rollout, replicaSet, to: 0)
        }
        let podsLeft = oldRSs.compactMap { replicaSet -> Int? in
            let uid = WorkloadObjects.uid(replicaSet)
            return store.list(APIResource.pods.key, namespace: rollout.namespace).objects
                .filter { WorkloadObjects.controllerRef($0.value())?.uid == uid }.count
        }.reduce(0, +)
        guard podsLeft == 0 else { return newRS }
        guard let newRS else { return try await createReplicaSet(rollout, replicas: rollout.desired, oldRSs: oldRSs) }
        if Self.replicas(newRS) != rollout.desired { return try await scale(rollout, newRS, to: rollout.desired) }
        return newRS
    }

    // MARK: Revisions and history

    /// The new ReplicaSet's revision is above every old one's; the Deployment shows it.
    func syncRevision(_ rollout: Rollout, newRS: JSONValue, oldRSs: [JSONValue]) async throws {
        let maxOld = oldRSs.map(Self.revision).max() ?? 0
        var revision = Self.revision(newRS)
        if revision <= maxOld {
            var annotations: JSONValue = [Self.revisionAnnotation: .string(String(maxOld + 1))]
            if revision > 0 {
                let history = newRS[path: ["metadata", "annotations", Self.revisionHistoryAnnotation]]?.stringValue
                annotations[Self.revisionHistoryAnnotation] = .string(history.map { "\($0),\(revision)" } ?? String(revision))
            }
            try await client.mergePatch(.replicaSets, namespace: rollout.namespace, name: WorkloadObjects.name(newRS),
                                        ["metadata": ["annotations": annotations]])
            revision = maxOld + 1
        }
        if rollout.deployment[path: ["metadata", "annotations", Self.revisionAnnotation]]?.stringValue != String(revision) {
            try await client.mergePatch(.deployments, namespace: rollout.namespace, name: rollout.name,
                                        ["metadata": ["annotations": [Self.revisionAnnotation: .string(String(revision))]]])
        }
    }

    func cleanUpHistory(_ rollout: Rollout) async throws {
        let limit = Int(rollout.deployment[path: ["spec", "revisionHistoryLimit"]]?.intValue ?? 10)
        let (_, old) = replicaSets(of: rollout.deployment)
        let idle = old.filter { Self.replicas($0) == 0 && Self.statusCount($0, "replicas") == 0 && !WorkloadObjects.isDeleting($0) }
            .sorted { Self.revision($0) < Self.revision($1) }
        for replicaSet in idle.prefix(max(0, idle.count - limit)) {
            try await client.delete(.replicaSets, namespace: rollout.namespace, name: WorkloadObjects.name(replicaSet),
                                    uid: WorkloadObjects.uid(replicaSet))
        }
    }

    // MARK: Status

    func updateStatus(_ rollout: Rollout, deployment: JSONValue) async throws {
        let (newRS, oldRSs) = replicaSets(of: deployment)
        let all = oldRSs + (newRS.map { [$0] } ?? [])
        func sum(_ field: String) -> Int { all.reduce(0) { $0 + Self.statusCount($1, field) } }
        let replicas = sum("replicas"), available = sum("availableReplicas")
        let updated = newRS.map { Self.statusCount($0, "replicas") } ?? 0
        let specTotal = all.reduce(0) { $0 + Self.replicas($1) }
        let generation = deployment[path: ["metadata", "generation"]] ?? 1
        var status = deployment["status"]?.objectValue ?? [:]
        status["observedGeneration"] = generation
        status["replicas"] = replicas > 0 ? .int(Int64(replicas)) : nil
        status["updatedReplicas"] = updated > 0 ? .int(Int64(updated)) : nil
        status["readyReplicas"] = sum("readyReplicas") > 0 ? .int(Int64(sum("readyReplicas"))) : nil
        status["availableReplicas"] = available > 0 ? .int(Int64(available)) : nil
        status["unavailableReplicas"] = specTotal > available ? .int(Int64(specTotal - available)) : nil
        let now = Date()
        var conditions = status["conditions"]?.arrayValue ?? []
        if available >= rollout.desired - rollout.maxUnavailable {
            WorkloadObjects.setCondition(&conditions, type: "Available", status: "True", reason: "MinimumReplicasAvailable",
                                         message: "Deployment has minimum availability.", now: now)
        } else {
            WorkloadObjects.setCondition(&conditions, type: "Available", status: "False", reason: "MinimumReplicasUnavailable",
                                         message: "Deployment does not have minimum availability.", now: now)
        }
        if let newRS, deployment[path: ["spec", "paused"]]?.boolValue != true {
            let name = WorkloadObjects.name(newRS)
            let complete = updated == rollout.desired && replicas == rollout.desired && available == rollout.desired
                && Self.statusCount(newRS, "availableReplicas") == rollout.desired
            if complete {
                WorkloadObjects.setCondition(&conditions, type: "Progressing", status: "True", reason: "NewReplicaSetAvailable",
                                             message: "ReplicaSet \"\(name)\" has successfully progressed.", now: now)
            } else {
                WorkloadObjects.setCondition(&conditions, type: "Progressing", status: "True", reason: "ReplicaSetUpdated",
                                             message: "ReplicaSet \"\(name)\" is progressing.", now: now)
            }
        } else if deployment[path: ["spec", "paused"]]?.boolValue == true {
            WorkloadObjects.setCondition(&conditions, type: "Progressing", status: "Unknown", reason: "DeploymentPaused",
                                         message: "Deployment is paused", now: now)
        }
        status["conditions"] = .array(conditions)
        try await StatusWriter(client: client).write(deployment, .deployments, status: .object(status))
    }
}
