import Crypto
import Foundation
import KubeCore

/// The status a kubelet would report for a pod, kwok-style: pods do not run here (their exec,
/// logs and port-forward are scripted), and this status is what makes clients treat them as
/// live.
///
/// - ``running(_:now:nodeName:hostIP:podIP:)``: bound to the node, phase Running, the
///   standard conditions True, the node's host IP and a pod IP, one running container
///   status per container (`containerd://` id, image digest, started, ready), the QoS class
///   from the containers' resources.
/// - ``succeeded(_:now:)``: what a container that exited 0 leaves (Job pods).
enum PodLifecycle {
    static func running(_ pod: JSONValue, now: Date, nodeName: String, hostIP: String, podIP: String) -> JSONValue {
        var pod = pod
        let time = JSONValue.string(KubeTime.format(now))
        if pod[path: ["spec", "nodeName"]]?.stringValue?.isEmpty ?? true {
            pod.set(.string(nodeName), at: ["spec", "nodeName"])
        }
        let conditions: [JSONValue] = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"].map {
            ["type": .string($0), "status": "True", "lastProbeTime": .null, "lastTransitionTime": time]
        }
        let uid = pod[path: ["metadata", "uid"]]?.stringValue ?? ""
        let containers = pod[path: ["spec", "containers"]]?.arrayValue ?? []
        let containerStatuses: [JSONValue] = containers.map { container in
            let name = container["name"]?.stringValue ?? ""
            let image = container["image"]?.stringValue ?? ""
            return [
                "name": .string(name), "image": .string(image), "imageID": .string(imageID(image)),
                "containerID": .string(containerID(uid: uid, name: name)), "ready": true, "started": true, "restartCount": 0,
                "state": ["running": ["startedAt": time]], "lastState": [:],
            ]
        }
        var status: JSONValue = [
            "phase": "Running",
            "conditions": .array(conditions),
            "hostIP": .string(hostIP), "hostIPs": [["ip": .string(hostIP)]],
            "podIP": .string(podIP), "podIPs": [["ip": .string(podIP)]],
            "startTime": time,
            "qosClass": .string(qosClass(containers)),
            "containerStatuses": .array(containerStatuses),
        ]
        let initContainers = pod[path: ["spec", "initContainers"]]?.arrayValue ?? []
        if !initContainers.isEmpty {
            status["initContainerStatuses"] = .array(initContainers.map { container in
                let name = container["name"]?.stringValue ?? ""
                let image = container["image"]?.stringValue ?? ""
                return [
                    "name": .string(name), "image": .string(image), "imageID": .string(imageID(image)),
                    "containerID": .string(containerID(uid: uid, name: name)), "ready": true, "started": false, "restartCount": 0,
                    "state": ["terminated": ["exitCode": 0, "reason": "Completed", "startedAt": time, "finishedAt": time,
                                             "containerID": .string(containerID(uid: uid, name: name))]],
                    "lastState": [:],
                ]
            })
        }
        pod.set(status, at: ["status"])
        return pod
    }

    /// The pod after its containers exited 0: phase Succeeded, not ready (`PodCompleted`).
    static func succeeded(_ pod: JSONValue, now: Date) -> JSONValue {
        var pod = pod
        let time = JSONValue.string(KubeTime.format(now))
        pod.set("Succeeded", at: ["status", "phase"])
        let conditions = (pod[path: ["status", "conditions"]]?.arrayValue ?? []).map { condition -> JSONValue in
            var condition = condition
            switch condition["type"]?.stringValue {
            case "Ready", "ContainersReady":
                condition["status"] = "False"
                condition["reason"] = "PodCompleted"
                condition["lastTransitionTime"] = time
            case "PodReadyToStartContainers":
                condition["status"] = "False"
                condition["lastTransitionTime"] = time
            default:
                break
            }
            return condition
        }
        pod.set(.array(conditions), at: ["status", "conditions"])
        let statuses = (pod[path: ["status", "containerStatuses"]]?.arrayValue ?? []).map { status -> JSONValue in
            var status = status
            let startedAt = status[path: ["state", "running", "startedAt"]] ?? time
            status["ready"] = false
            status["started"] = false
            status["state"] = ["terminated": ["exitCode": 0, "reason": "Completed", "startedAt": startedAt,
                                              "finishedAt": time, "containerID": status["containerID"] ?? ""]]
            return status
        }
        pod.set(.array(statuses), at: ["status", "containerStatuses"])
        return pod
    }

    /// `containerd://` and 64 hex characters, stable for a pod's container.
    static func containerID(uid: String, name: String) -> String {
        "containerd://" + hex(SHA256.hash(data: Array("\(uid)/\(name)".utf8)))
    }

    /// The image's fully qualified reference and a digest (`docker.io/library/nginx@sha256:…`),
    /// as the container runtime reports an image it pulled.
    static func imageID(_ image: String) -> String {
        if image.contains("@sha256:") { return image }
        var repository = image
        if let colon = repository.lastIndex(of: ":"), !repository[colon...].contains("/") {
            repository = String(repository[..<colon])
        }
        let first = repository.split(separator: "/").first.map(String.init) ?? ""
        if !repository.contains("/") {
            repository = "docker.io/library/" + repository
        } else if !first.contains(".") && !first.contains(":") && first != "localhost" {
            repository = "docker.io/" + repository
        }
        return repository + "@sha256:" + hex(SHA256.hash(data: Array(image.utf8)))
    }

    /// Guaranteed when every container limits CPU and memory and requests what it limits,
    /// BestEffort when none asks for anything, Burstable otherwise (`qos.GetPodQOS`, simplified).
    static func qosClass(_ containers: [JSONValue]) -> String {
        let resources = containers.map { $0["resources"] ?? [:] }
        let asks = resources.contains { !($0["requests"]?.objectValue?.isEmpty ?? true) || !($0["limits"]?.objectValue?.isEmpty ?? true) }
        guard asks else { return "BestEffort" }
        let guaranteed = resources.allSatisfy { resource in
            guard let limits = resource["limits"]?.objectValue, limits["cpu"] != nil, limits["memory"] != nil else { return false }
            let requests = resource["requests"]?.objectValue ?? limits
            return ["cpu", "memory"].allSatisfy { requests[$0] == nil || requests[$0] == limits[$0] }
        }
        return guaranteed ? "Guaranteed" : "Burstable"
    }

    private static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}
