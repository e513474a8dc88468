import Foundation
import KubeCore

/// The status a kubelet would report for a pod whose containers all started: phase
/// Running, the standard conditions True, loopback pod and host IPs, one running
/// container status per container. Pods do not run here; their exec, logs and
/// port-forward are scripted, and this status is what makes clients treat them as live.
enum PodLifecycle {
    static let podIP = "127.0.0.1"

    static func running(_ pod: JSONValue, now: Date) -> JSONValue {
        var pod = pod
        let time = JSONValue.string(KubeTime.format(now))
        let uid = pod[path: ["metadata", "uid"]]?.stringValue ?? ""
        let conditions: [JSONValue] = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"].map {
            ["type": .string($0), "status": "True", "lastProbeTime": .null, "lastTransitionTime": time]
        }
        let containerStatuses: [JSONValue] = (pod[path: ["spec", "containers"]]?.arrayValue ?? []).map { container in
            let name = container["name"]?.stringValue ?? ""
            return [
                "name": .string(name), "image": container["image"] ?? .string(""), "imageID": .string(""),
                "containerID": .string("agentgate://\(uid)/\(name)"), "ready": true, "started": true, "restartCount": 0,
                "state": ["running": ["startedAt": time]],
            ]
        }
        pod.set([
            "phase": "Running",
            "conditions": .array(conditions),
            "hostIP": .string(podIP), "hostIPs": [["ip": .string(podIP)]],
            "podIP": .string(podIP), "podIPs": [["ip": .string(podIP)]],
            "startTime": time,
            "qosClass": "BestEffort",
            "containerStatuses": .array(containerStatuses),
        ], at: ["status"])
        return pod
    }
}
