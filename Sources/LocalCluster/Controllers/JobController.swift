import ControllerRuntime
import Foundation
import KubeCore

/// kube-controller-manager's job controller, for pods the embedded kubelet runs to success:
///
/// - Keeps `min(parallelism, completions - succeeded)` pods active (both default to 1), named
///   `<job>-<five characters>` with the template's labels (which the API server gave the
///   Job's `batch.kubernetes.io/controller-uid` and `job-name` labels on create). Indexed Jobs
///   give each pod its `batch.kubernetes.io/job-completion-index`.
/// - Once `completions` pods have succeeded: conditions `SuccessCriteriaMet` and `Complete`,
///   `completionTime`, and a `Completed` event. A Job with `backoffLimit` failed pods or
///   more gets `Failed` (`BackoffLimitExceeded`). A suspended Job creates nothing.
/// - Status: `startTime`, `active`, `ready`, `succeeded`, `failed`, `terminating`,
///   `uncountedTerminatedPods`, `conditions`, `completedIndexes` for Indexed Jobs.
struct JobController: Reconciler {
    let store: ObjectStore
    let client: InProcessClient
    let events: ComponentEvents

    func reconcile(_ request: ReconcileRequest) async throws -> ReconcileResult {
        let resource = APIResource.jobs
        guard let stored = store.get(resource.key, namespace: request.namespace, name: request.name) else { return .done }
        let job = stored.value()
        guard !WorkloadObjects.isDeleting(job), let template = job[path: ["spec", "template"]] else { return .done }
        let conditions = job[path: ["status", "conditions"]]?.arrayValue ?? []
        let finished = conditions.contains {
            ["Complete", "Failed"].contains($0["type"]?.stringValue ?? "") && $0["status"]?.stringValue == "True"
        }
        if finished { return .done }
        let completions = Int(job[path: ["spec", "completions"]]?.intValue ?? 1)
        let parallelism = Int(job[path: ["spec", "parallelism"]]?.intValue ?? 1)
        let indexed = job[path: ["spec", "completionMode"]]?.stringValue == "Indexed"
        let suspended = job[path: ["spec", "suspend"]]?.boolValue == true
        let backoffLimit = Int(job[path: ["spec", "backoffLimit"]]?.intValue ?? 6)

        var pods = WorkloadObjects.owned(by: job, .pods, in: store, namespace: request.namespace)
        let succeeded = pods.filter { $0[path: ["status", "phase"]]?.stringValue == "Succeeded" }
        let failed = pods.filter { $0[path: ["status", "phase"]]?.stringValue == "Failed" }.count
        let active = pods.filter(WorkloadObjects.isActive)
        let wanted = suspended || failed > backoffLimit ? 0 : max(0, min(parallelism, completions - succeeded.count))
        if active.count < wanted {
            var busy = Set((succeeded + active).compactMap(Self.completionIndex))
            for _ in active.count..<wanted {
                var extra: [String: String] = [:]
                var annotations: [String: String] = [:]
                if indexed, let index = (0..<completions).first(where: { !busy.contains($0) }) {
                    busy.insert(index)
                    extra["batch.kubernetes.io/job-completion-index"] = String(index)
                    annotations["batch.kubernetes.io/job-completion-index"] = String(index)
                }
                var pod = WorkloadObjects.pod(from: template, namespace: request.namespace, generateName: "\(request.name)-",
                                              extraLabels: extra, owner: WorkloadObjects.controllerReference(to: job, resource))
                for (key, value) in annotations { pod.set(.string(value), at: ["metadata", "annotations", key]) }
                let created = try await client.create(.pods, namespace: request.namespace, pod)
                await events.record(job, resource, reason: "SuccessfulCreate",
                                    message: "Created pod: \(WorkloadObjects.name(created))")
            }
            pods = WorkloadObjects.owned(by: job, .pods, in: store, namespace: request.namespace)
        }
        try await updateStatus(job, pods: pods, completions: completions, indexed: indexed, backoffLimit: backoffLimit)
        return .done
    }

    static func completionIndex(_ pod: JSONValue) -> Int? {
        pod[path: ["metadata", "annotations", "batch.kubernetes.io/job-completion-index"]]?.stringValue.flatMap { Int($0) }
    }

    func updateStatus(_ job: JSONValue, pods: [JSONValue], completions: Int, indexed: Bool, backoffLimit: Int) async throws {
        let now = Date()
        let succeededPods = pods.filter { $0[path: ["status", "phase"]]?.stringValue == "Succeeded" }
        let failed = pods.filter { $0[path: ["status", "phase"]]?.stringValue == "Failed" }.count
        let active = pods.filter(WorkloadObjects.isActive)
        var status = job["status"]?.objectValue ?? [:]
        status["startTime"] = status["startTime"] ?? .string(KubeTime.format(now))
        status["active"] = active.isEmpty ? nil : .int(Int64(active.count))
        status["ready"] = .int(Int64(active.filter(WorkloadObjects.isReady).count))
        status["succeeded"] = succeededPods.isEmpty ? nil : .int(Int64(succeededPods.count))
        status["failed"] = failed == 0 ? nil : .int(Int64(failed))
        status["terminating"] = 0
        status["uncountedTerminatedPods"] = [:]
        if indexed {
            let done = succeededPods.compactMap(Self.completionIndex).sorted()
            status["completedIndexes"] = done.isEmpty ? nil : .string(done.map(String.init).joined(separator: ","))
        }
        var conditions = status["conditions"]?.arrayValue ?? []
        var event: (reason: String, message: String, type: ComponentEvents.EventType)?
        if succeededPods.count >= completions {
            WorkloadObjects.setCondition(&conditions, type: "SuccessCriteriaMet", status: "True", reason: "CompletionsReached",
                                         message: "Reached expected number of succeeded pods", now: now, updateTime: false)
            WorkloadObjects.setCondition(&conditions, type: "Complete", status: "True", reason: "CompletionsReached",
                                         message: "Reached expected number of succeeded pods", now: now, updateTime: false)
            status["completionTime"] = .string(KubeTime.format(now))
            event = ("Completed", "Job completed", .normal)
        } else if failed > backoffLimit {
            WorkloadObjects.setCondition(&conditions, type: "Failed", status: "True", reason: "BackoffLimitExceeded",
                                         message: "Job has reached the specified backoff limit", now: now, updateTime: false)
            event = ("BackoffLimitExceeded", "Job has reached the specified backoff limit", .warning)
        }
        conditions = conditions.map { condition in
            var condition = condition
            condition["lastProbeTime"] = condition["lastProbeTime"] ?? condition["lastTransitionTime"]
            return condition
        }
        status["conditions"] = conditions.isEmpty ? nil : .array(conditions)
        try await StatusWriter(client: client).write(job, .jobs, status: .object(status))
        if let event { await events.record(job, .jobs, event.type, reason: event.reason, message: event.message) }
    }
}
