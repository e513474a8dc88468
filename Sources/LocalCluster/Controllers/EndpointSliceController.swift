import ControllerRuntime
import Foundation
import KubeCore

/// kube-controller-manager's endpointslice controller: one `discovery.k8s.io/v1`
/// EndpointSlice per Service with a selector, listing the pods the selector matches.
///
/// - The slice is named `<service>-<five characters>`, labelled
///   `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by:
///   endpointslice-controller.k8s.io` (plus the Service's labels), and controlled by the
///   Service, so it goes when the Service does. A Service without a selector gets none (its
///   slices are someone else's to write).
/// - Endpoints: each pod with an IP that is not finished, in name order: `addresses`
///   (`status.podIP`), `conditions` (`ready`, `serving`: the pod is Ready; `terminating`:
///   it is being deleted), `nodeName`, `targetRef`. No pods: the slice stays, with no endpoints.
/// - Ports: each Service port with its `targetPort` (a number, or a name looked up in the
///   first pod's containers; the port number when unset), `name` and `protocol`.
struct EndpointSliceController: Reconciler {
    let store: ObjectStore
    let client: InProcessClient

    static let serviceNameLabel = "kubernetes.io/service-name"
    static let managedByLabel = "endpointslice.kubernetes.io/managed-by"
    static let managedBy = "endpointslice-controller.k8s.io"

    func reconcile(_ request: ReconcileRequest) async throws -> ReconcileResult {
        let existing = store.list(APIResource.endpointSlices.key, namespace: request.namespace).objects
            .filter { $0.labels[Self.serviceNameLabel] == request.name && $0.labels[Self.managedByLabel] == Self.managedBy }
            .map { $0.value() }
        guard let stored = store.get(APIResource.services.key, namespace: request.namespace, name: request.name),
              let selector = stored.value()[path: ["spec", "selector"]]?.objectValue?.compactMapValues(\.stringValue),
              !selector.isEmpty else {
            for slice in existing {
                try await client.delete(.endpointSlices, namespace: request.namespace, name: WorkloadObjects.name(slice))
            }
            return .done
        }
        let service = stored.value()
        let pods = store.list(APIResource.pods.key, namespace: request.namespace).objects
            .filter { pod in selector.allSatisfy { pod.labels[$0.key] == $0.value } }
            .map { $0.value() }
            .filter { phase in !["Succeeded", "Failed"].contains(phase[path: ["status", "phase"]]?.stringValue ?? "") }
            .filter { $0[path: ["status", "podIP"]]?.stringValue?.isEmpty == false }
        var labels = service[path: ["metadata", "labels"]]?.objectValue ?? [:]
        labels[Self.serviceNameLabel] = .string(request.name)
        labels[Self.managedByLabel] = .string(Self.managedBy)
        var slice: JSONValue = [
            "addressType": "IPv4",
            "endpoints": .array(pods.map(Self.endpoint)),
            "ports": .array(Self.ports(service, pods: pods)),
        ]
        slice.set(.object(labels), at: ["metadata", "labels"])
        if let current = existing.first {
            var wanted = current
            for key in ["addressType", "endpoints", "ports"] { wanted[key] = slice[key] }
            wanted.set(slice[path: ["metadata", "labels"]], at: ["metadata", "labels"])
            if wanted != current {
                var patch = slice
                patch.set(.string(KubeTime.format(Date())), at: ["metadata", "annotations", "endpoints.kubernetes.io/last-change-trigger-time"])
                try await client.mergePatch(.endpointSlices, namespace: request.namespace, name: WorkloadObjects.name(current), patch)
            }
            for extra in existing.dropFirst() {
                try await client.delete(.endpointSlices, namespace: request.namespace, name: WorkloadObjects.name(extra))
            }
        } else {
            slice["apiVersion"] = "discovery.k8s.io/v1"
            slice["kind"] = "EndpointSlice"
            slice.set(.string("\(request.name)-"), at: ["metadata", "generateName"])
            slice.set(.array([WorkloadObjects.controllerReference(to: service, .services)]), at: ["metadata", "ownerReferences"])
            slice.set(.string(KubeTime.format(Date())), at: ["metadata", "annotations", "endpoints.kubernetes.io/last-change-trigger-time"])
            try await client.create(.endpointSlices, namespace: request.namespace, slice)
        }
        return .done
    }

    static func endpoint(_ pod: JSONValue) -> JSONValue {
        let ready = WorkloadObjects.isReady(pod) && !WorkloadObjects.isDeleting(pod)
        var endpoint: JSONValue = [
            "addresses": [pod[path: ["status", "podIP"]] ?? ""],
            "conditions": ["ready": .bool(ready), "serving": .bool(WorkloadObjects.isReady(pod)),
                           "terminating": .bool(WorkloadObjects.isDeleting(pod))],
            "targetRef": ["kind": "Pod", "namespace": pod[path: ["metadata", "namespace"]] ?? "",
                          "name": pod[path: ["metadata", "name"]] ?? "", "uid": pod[path: ["metadata", "uid"]] ?? ""],
        ]
        endpoint["nodeName"] = pod[path: ["spec", "nodeName"]]
        if let hostname = pod[path: ["spec", "hostname"]], pod[path: ["spec", "subdomain"]] != nil { endpoint["hostname"] = hostname }
        return endpoint
    }

    static func ports(_ service: JSONValue, pods: [JSONValue]) -> [JSONValue] {
        let containerPorts = (pods.first?[path: ["spec", "containers"]]?.arrayValue ?? []).flatMap { $0["ports"]?.arrayValue ?? [] }
        return (service[path: ["spec", "ports"]]?.arrayValue ?? []).compactMap { port in
            var target = port["targetPort"] ?? port["port"] ?? 0
            if let name = target.stringValue {
                guard let match = containerPorts.first(where: { $0["name"]?.stringValue == name }) else { return nil }
                target = match["containerPort"] ?? 0
            }
            var entry: JSONValue = ["port": target, "protocol": port["protocol"] ?? "TCP", "name": port["name"] ?? ""]
            entry["appProtocol"] = port["appProtocol"]
            return entry
        }
    }
}
