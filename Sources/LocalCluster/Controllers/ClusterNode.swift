import Foundation
import KubeCore

/// The embedded cluster's one Node, `agentgate-dev`, as a kubelet registers it: Ready, the
/// machine's CPU count and memory as capacity (110 pods), the loopback address as its
/// InternalIP, `10.244.0.0/16` as its pod CIDR, and a `nodeInfo` that says what it is
/// (kubelet v1.32, container runtime `agentgate://`). Every pod is scheduled here.
enum ClusterNode {
    static let name = "agentgate-dev"
    static let internalIP = "127.0.0.1"
    static let podCIDR = "10.244.0.0/16"
    static let kubeletVersion = "v1.32.0"

    /// The Node object created at start (and refreshed on every start: its conditions carry
    /// the time the node came up).
    static func object(now: Date = Date()) -> JSONValue {
        let time = JSONValue.string(KubeTime.format(now))
        let processors = ProcessInfo.processInfo.activeProcessorCount
        let memoryKi = ProcessInfo.processInfo.physicalMemory / 1024
        let resources: JSONValue = ["cpu": .string(String(processors)), "memory": .string("\(memoryKi)Ki"),
                                    "pods": "110", "ephemeral-storage": "104857600Ki", "hugepages-2Mi": "0"]
        func condition(_ type: String, _ status: String, _ reason: String, _ message: String) -> JSONValue {
            ["type": .string(type), "status": .string(status), "reason": .string(reason), "message": .string(message),
             "lastHeartbeatTime": time, "lastTransitionTime": time]
        }
        let machineID = String(WorkloadObjects.templateHash(.string(name)).prefix(8))
        return [
            "apiVersion": "v1", "kind": "Node",
            "metadata": [
                "name": .string(name),
                "labels": ["kubernetes.io/hostname": .string(name), "kubernetes.io/os": "linux",
                           "kubernetes.io/arch": .string(architecture), "beta.kubernetes.io/os": "linux",
                           "beta.kubernetes.io/arch": .string(architecture), "node-role.kubernetes.io/control-plane": ""],
                "annotations": ["node.alpha.kubernetes.io/ttl": "0"],
            ],
            "spec": ["podCIDR": .string(podCIDR), "podCIDRs": [.string(podCIDR)]],
            "status": [
                "capacity": resources, "allocatable": resources,
                "conditions": [
                    condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                    condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                    condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
                ],
                "addresses": [["type": "InternalIP", "address": .string(internalIP)], ["type": "Hostname", "address": .string(name)]],
                "daemonEndpoints": ["kubeletEndpoint": ["Port": 10250]],
                "nodeInfo": [
                    "machineID": .string(machineID), "systemUUID": .string(machineID), "bootID": .string(machineID),
                    "kernelVersion": .string(kernelVersion), "osImage": "AgentGate embedded cluster",
                    "containerRuntimeVersion": "agentgate://0.1.0", "kubeletVersion": .string(kubeletVersion),
                    "kubeProxyVersion": .string(kubeletVersion), "operatingSystem": "linux", "architecture": .string(architecture),
                ],
                "images": [],
            ],
        ]
    }

    static var architecture: String {
        #if arch(arm64)
        return "arm64"
        #else
        return "amd64"
        #endif
    }

    static var kernelVersion: String {
        var info = utsname()
        uname(&info)
        return withUnsafeBytes(of: &info.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

/// Pod IPs from the node's pod CIDR (`10.244.0.1` onwards, wrapping after 65,534), handed
/// out in order. The first address after the highest one already held by a stored pod comes
/// first, so a restored cluster does not hand out its pods' addresses again.
final class PodIPAllocator: @unchecked Sendable {
    private let lock = NSLock()
    private var next: UInt32?

    func allocate(existing: () -> [String]) -> String {
        lock.withLock {
            let offset = next ?? (existing().compactMap(Self.offset).max().map { $0 % 65_534 + 1 } ?? 1)
            next = offset % 65_534 + 1
            return "10.244.\(offset >> 8).\(offset & 0xff)"
        }
    }

    static func offset(_ ip: String) -> UInt32? {
        let parts = ip.split(separator: ".").compactMap { UInt32($0) }
        guard parts.count == 4, parts[0] == 10, parts[1] == 244 else { return nil }
        return parts[2] << 8 | parts[3]
    }
}
