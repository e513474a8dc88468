import Foundation
import KubeCore

/// Core `v1` Events as kube-controller-manager's controllers, the scheduler and the kubelet
/// record them (client-go's `record.EventRecorder`): named `<object>.<nanoseconds in hex>`,
/// `source.component` the component (`deployment-controller`, `default-scheduler`,
/// `kubelet`), `count` 1 and both timestamps now. `kubectl describe` and `kubectl events`
/// read them. Recording is best-effort: a failed write is dropped, never retried, and never
/// fails the reconcile that recorded it.
struct ComponentEvents: Sendable {
    let client: InProcessClient
    /// `source.component` and `reportingComponent`.
    let component: String
    /// `source.host` and `reportingInstance` (the node, for the kubelet).
    var host: String? = nil

    enum EventType: String { case normal = "Normal", warning = "Warning" }

    /// Records `reason`/`message` about `object` (of `resource`); `fieldPath` names a part of
    /// it (`spec.containers{web}`).
    func record(_ object: JSONValue, _ resource: APIResource, _ type: EventType = .normal, reason: String,
                message: String, fieldPath: String? = nil) async {
        let namespace = object[path: ["metadata", "namespace"]]?.stringValue ?? "default"
        let name = WorkloadObjects.name(object)
        let now = Date()
        var involved: JSONValue = [
            "apiVersion": .string(resource.apiVersion), "kind": .string(resource.kind),
            "namespace": .string(namespace), "name": .string(name),
            "uid": object[path: ["metadata", "uid"]] ?? "",
            "resourceVersion": object[path: ["metadata", "resourceVersion"]] ?? "",
        ]
        if let fieldPath { involved["fieldPath"] = .string(fieldPath) }
        var source: JSONValue = ["component": .string(component)]
        if let host { source["host"] = .string(host) }
        var nanos = UInt64(now.timeIntervalSince1970 * 1_000_000_000)
        let timestamp = JSONValue.string(KubeTime.format(now))
        var event: JSONValue = [
            "apiVersion": "v1", "kind": "Event",
            "metadata": ["name": .string("\(name).\(String(nanos, radix: 16))"), "namespace": .string(namespace)],
            "involvedObject": involved, "reason": .string(reason), "message": .string(message),
            "source": source, "firstTimestamp": timestamp, "lastTimestamp": timestamp, "count": 1,
            "type": .string(type.rawValue), "reportingComponent": .string(component),
            "reportingInstance": .string(host ?? ""),
        ]
        // Two events about one object within the clock's resolution would share a name: the
        // second takes the next nanosecond.
        for _ in 0..<3 {
            let reply = await client.send("POST", APIResource.events.path(namespace: namespace), body: event)
            guard reply.status == 409 else { return }
            nanos += 1
            event.set(.string("\(name).\(String(nanos, radix: 16))"), at: ["metadata", "name"])
        }
    }
}
