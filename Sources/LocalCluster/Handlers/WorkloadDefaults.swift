import Foundation
import KubeCore

/// What the create path adds to workloads, standing in for kube-apiserver's strategies and
/// for a scheduler and kubelet that act at once:
/// - a Pod is bound to the node (unless it names one) and started (``PodLifecycle``) with the
///   next pod IP;
/// - a Job without `manualSelector` gets the generated selector
///   (`batch.kubernetes.io/controller-uid`) and template labels, and the defaults of
///   `completions`, `parallelism`, `backoffLimit`, `completionMode`, `suspend` and
///   `podReplacementPolicy` (the job strategy's PrepareForCreate and SetDefaults_Job).
extension ResourceHandlers {
    static let jobKey = ResourceKey(group: "batch", resource: "jobs")

    func scheduledAndStarted(_ pod: JSONValue) -> JSONValue {
        let podIP = server.podIPs.allocate {
            store.list(Self.podKey, namespace: nil).objects.compactMap { $0.value()[path: ["status", "podIP"]]?.stringValue }
        }
        return PodLifecycle.running(pod, now: Date(), nodeName: ClusterNode.name, hostIP: ClusterNode.internalIP, podIP: podIP)
    }

    static func defaultedJob(_ job: JSONValue) -> JSONValue {
        var job = job
        if job[path: ["spec", "manualSelector"]]?.boolValue != true, let uid = job[path: ["metadata", "uid"]] {
            let name = job[path: ["metadata", "name"]] ?? ""
            let labels: [(String, JSONValue)] = [("batch.kubernetes.io/controller-uid", uid), ("batch.kubernetes.io/job-name", name),
                                                 ("controller-uid", uid), ("job-name", name)]
            for (key, value) in labels { job.set(value, at: ["spec", "template", "metadata", "labels", key]) }
            job.set(["matchLabels": ["batch.kubernetes.io/controller-uid": uid]], at: ["spec", "selector"])
        }
        if job[path: ["spec", "completions"]] == nil && job[path: ["spec", "parallelism"]] == nil {
            job.set(1, at: ["spec", "completions"])
        }
        let defaults: [(String, JSONValue)] = [("parallelism", 1), ("backoffLimit", 6), ("completionMode", "NonIndexed"),
                                               ("suspend", false), ("podReplacementPolicy", "TerminatingOrFailed")]
        for (field, value) in defaults where job[path: ["spec", field]] == nil {
            job.set(value, at: ["spec", field])
        }
        return job
    }
}
