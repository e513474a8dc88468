import ControllerRuntime
import Foundation
import KubeCore

/// The embedded node's kubelet, kwok-style: containers do not run, but pods report what a
/// kubelet would. A pod is bound and Running from the moment it is created (``PodLifecycle``,
/// in the create path, so a client never sees it Pending); this reconciler adds what follows:
///
/// - Events for each new pod: `Scheduled` from `default-scheduler`, then per container
///   `Pulled`, `Created` and `Started` from the kubelet, as `kubectl describe pod` lists them.
/// - Pods of Jobs run to completion: phase `Succeeded`, containers terminated with exit code 0
///   (`Completed`), Ready false (`PodCompleted`).
///
/// It is fed only pod creations and deletions, and remembers which pods it has announced, so
/// an event is recorded once per pod.
final class Kubelet: Reconciler, @unchecked Sendable {
    let store: ObjectStore
    let client: InProcessClient
    let kubeletEvents: ComponentEvents
    let schedulerEvents: ComponentEvents
    private let lock = NSLock()
    private var announced: [ReconcileRequest: String] = [:]

    init(store: ObjectStore, client: InProcessClient, nodeName: String) {
        self.store = store
        self.client = client
        kubeletEvents = ComponentEvents(client: client, component: "kubelet", host: nodeName)
        schedulerEvents = ComponentEvents(client: client, component: "default-scheduler")
    }

    /// Pods that existed before the kubelet started (a restored sandbox) are not announced again.
    func markAnnounced(_ request: ReconcileRequest, uid: String) {
        lock.withLock { announced[request] = uid }
    }

    func reconcile(_ request: ReconcileRequest) async throws -> ReconcileResult {
        guard let stored = store.get(APIResource.pods.key, namespace: request.namespace, name: request.name) else {
            lock.withLock { _ = announced.removeValue(forKey: request) }
            return .done
        }
        let pod = stored.value()
        let uid = WorkloadObjects.uid(pod)
        let isNew = lock.withLock {
            guard announced[request] != uid else { return false }
            announced[request] = uid
            return true
        }
        if isNew, let node = pod[path: ["spec", "nodeName"]]?.stringValue {
            await announce(pod, node: node)
        }
        if WorkloadObjects.controllerRef(pod)?.kind == "Job", pod[path: ["status", "phase"]]?.stringValue == "Running" {
            let completed = PodLifecycle.succeeded(pod, now: Date())
            do {
                try await client.mergePatch(.pods, namespace: request.namespace, name: request.name, subresource: "status",
                                            ["status": completed["status"] ?? [:]])
            } catch let failure as InProcessClient.Failure where failure.status == 404 {}
        }
        return .done
    }

    private func announce(_ pod: JSONValue, node: String) async {
        let namespace = pod[path: ["metadata", "namespace"]]?.stringValue ?? ""
        await schedulerEvents.record(pod, .pods, reason: "Scheduled",
                                     message: "Successfully assigned \(namespace)/\(WorkloadObjects.name(pod)) to \(node)")
        let containers = (pod[path: ["spec", "initContainers"]]?.arrayValue ?? []) + (pod[path: ["spec", "containers"]]?.arrayValue ?? [])
        for container in containers {
            let name = container["name"]?.stringValue ?? ""
            let image = container["image"]?.stringValue ?? ""
            let fieldPath = "spec.\(pod[path: ["spec", "initContainers"]]?.arrayValue?.contains(container) == true ? "initContainers" : "containers"){\(name)}"
            await kubeletEvents.record(pod, .pods, reason: "Pulled",
                                       message: "Container image \"\(image)\" already present on machine", fieldPath: fieldPath)
            await kubeletEvents.record(pod, .pods, reason: "Created", message: "Created container: \(name)", fieldPath: fieldPath)
            await kubeletEvents.record(pod, .pods, reason: "Started", message: "Started container \(name)", fieldPath: fieldPath)
        }
    }
}
