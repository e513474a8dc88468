import Foundation
import KubeCore

/// What the create path adds to workloads, standing in for kube-apiserver's strategies and
/// for a scheduler and kubelet that act at once:
/// - a Pod gets the pod and container defaults kubectl shows, is bound to the node (unless it
///   names one) and started (``PodLifecycle``) with the next pod IP;
/// - a Job without `manualSelector` gets the generated selector
///   (`batch.kubernetes.io/controller-uid`) and template labels, and the defaults of
///   `completions`, `parallelism`, `backoffLimit`, `completionMode`, `suspend` and
///   `podReplacementPolicy` (the job strategy's PrepareForCreate and SetDefaults_Job);
/// - a StatefulSet gets SetDefaults_StatefulSet's `replicas`, `podManagementPolicy`,
///   `updateStrategy` (RollingUpdate, partition 0), `revisionHistoryLimit` and
///   `persistentVolumeClaimRetentionPolicy` (`kubectl rollout status` needs the strategy).
extension ResourceHandlers {
    static let jobKey = ResourceKey(group: "batch", resource: "jobs")
    static let statefulSetKey = ResourceKey(group: "apps", resource: "statefulsets")

    static func defaultedStatefulSet(_ statefulSet: JSONValue) -> JSONValue {
        var statefulSet = statefulSet
        let defaults: [(String, JSONValue)] = [
            ("replicas", 1), ("podManagementPolicy", "OrderedReady"), ("revisionHistoryLimit", 10),
            ("updateStrategy", ["type": "RollingUpdate", "rollingUpdate": ["partition": 0]]),
            ("persistentVolumeClaimRetentionPolicy", ["whenDeleted": "Retain", "whenScaled": "Retain"]),
        ]
        for (field, value) in defaults where statefulSet[path: ["spec", field]] == nil {
            statefulSet.set(value, at: ["spec", field])
        }
        if statefulSet[path: ["spec", "updateStrategy", "type"]]?.stringValue == "RollingUpdate",
           statefulSet[path: ["spec", "updateStrategy", "rollingUpdate", "partition"]] == nil {
            statefulSet.set(0, at: ["spec", "updateStrategy", "rollingUpdate", "partition"])
        }
        return statefulSet
    }

    func scheduledAndStarted(_ pod: JSONValue) -> JSONValue {
        let pod = Self.defaultedPod(pod)
        let podIP = server.podIPs.allocate {
            store.list(Self.podKey, namespace: nil).objects.compactMap { $0.value()[path: ["status", "podIP"]]?.stringValue }
        }
        return PodLifecycle.running(pod, now: Date(), nodeName: ClusterNode.name, hostIP: ClusterNode.internalIP, podIP: podIP)
    }

    /// SetDefaults_Pod and SetDefaults_Container, the fields kubectl shows: `restartPolicy`,
    /// `dnsPolicy`, `schedulerName`, `terminationGracePeriodSeconds`, and per container
    /// `imagePullPolicy` (Always for `:latest` or no tag), the termination message fields and
    /// each port's `protocol`.
    static func defaultedPod(_ pod: JSONValue) -> JSONValue {
        var pod = pod
        let defaults: [(String, JSONValue)] = [("restartPolicy", "Always"), ("dnsPolicy", "ClusterFirst"),
                                               ("schedulerName", "default-scheduler"), ("terminationGracePeriodSeconds", 30)]
        for (field, value) in defaults where pod[path: ["spec", field]] == nil {
            pod.set(value, at: ["spec", field])
        }
        for list in ["initContainers", "containers"] {
            guard let containers = pod[path: ["spec", list]]?.arrayValue else { continue }
            pod.set(.array(containers.map(defaultedContainer)), at: ["spec", list])
        }
        return pod
    }

    static func defaultedContainer(_ container: JSONValue) -> JSONValue {
        var container = container
        if container["imagePullPolicy"] == nil {
            let image = container["image"]?.stringValue ?? ""
            let lastPart = image.split(separator: "/").last.map(String.init) ?? image
            let untagged = !lastPart.contains(":") && !image.contains("@")
            container["imagePullPolicy"] = untagged || image.hasSuffix(":latest") ? "Always" : "IfNotPresent"
        }
        container["terminationMessagePath"] = container["terminationMessagePath"] ?? "/dev/termination-log"
        container["terminationMessagePolicy"] = container["terminationMessagePolicy"] ?? "File"
        if let ports = container["ports"]?.arrayValue {
            container["ports"] = .array(ports.map { port in
                var port = port
                port["protocol"] = port["protocol"] ?? "TCP"
                return port
            })
        }
        return container
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
