import Foundation
import KubeCore

/// What the workload controllers read from and write into objects, in kube-controller-manager's
/// terms: controller references, label selectors, pod readiness, pod templates and the hashes
/// that name ReplicaSets and StatefulSet revisions.
enum WorkloadObjects {
    /// The `ownerReferences` entry with `controller: true`, if any (`metav1.GetControllerOf`).
    static func controllerRef(_ object: JSONValue) -> (kind: String, name: String, uid: String)? {
        for owner in object[path: ["metadata", "ownerReferences"]]?.arrayValue ?? [] where owner["controller"]?.boolValue == true {
            return (owner["kind"]?.stringValue ?? "", owner["name"]?.stringValue ?? "", owner["uid"]?.stringValue ?? "")
        }
        return nil
    }

    /// An owner reference naming `owner` as the controller, as controllers set on what they create.
    static func controllerReference(to owner: JSONValue, _ resource: APIResource) -> JSONValue {
        ["apiVersion": .string(resource.apiVersion), "kind": .string(resource.kind),
         "name": owner[path: ["metadata", "name"]] ?? "", "uid": owner[path: ["metadata", "uid"]] ?? "",
         "controller": true, "blockOwnerDeletion": true]
    }

    static func uid(_ object: JSONValue) -> String { object[path: ["metadata", "uid"]]?.stringValue ?? "" }
    static func name(_ object: JSONValue) -> String { object[path: ["metadata", "name"]]?.stringValue ?? "" }
    static func isDeleting(_ object: JSONValue) -> Bool { object[path: ["metadata", "deletionTimestamp"]] != nil }

    /// A workload's `spec.selector` (a metav1.LabelSelector); nil when absent, empty or malformed,
    /// which the controllers treat as "manages nothing" (kube-apiserver would have refused it).
    static func selector(_ object: JSONValue) -> LabelSelector? {
        guard let json = object[path: ["spec", "selector"]], let selector = try? json.decode(LabelSelector.self),
              !selector.isEmpty else { return nil }
        return selector
    }

    /// The objects of `resource` in `namespace` whose controller is `owner`, parsed.
    static func owned(by owner: JSONValue, _ resource: APIResource, in store: ObjectStore, namespace: String) -> [JSONValue] {
        let uid = uid(owner)
        return store.list(resource.key, namespace: namespace).objects.map { $0.value() }
            .filter { controllerRef($0)?.uid == uid }
    }

    // MARK: Pods

    /// Not finished and not being deleted (`controller.IsPodActive`).
    static func isActive(_ pod: JSONValue) -> Bool {
        let phase = pod[path: ["status", "phase"]]?.stringValue
        return phase != "Succeeded" && phase != "Failed" && !isDeleting(pod)
    }

    /// The pod's Ready condition is True (`podutil.IsPodReady`).
    static func isReady(_ pod: JSONValue) -> Bool {
        (pod[path: ["status", "conditions"]]?.arrayValue ?? [])
            .contains { $0["type"]?.stringValue == "Ready" && $0["status"]?.stringValue == "True" }
    }

    /// Ready for at least `minReadySeconds` (`podutil.IsPodAvailable`).
    static func isAvailable(_ pod: JSONValue, minReadySeconds: Int64, now: Date) -> Bool {
        guard isReady(pod) else { return false }
        guard minReadySeconds > 0 else { return true }
        let ready = (pod[path: ["status", "conditions"]]?.arrayValue ?? []).first { $0["type"]?.stringValue == "Ready" }
        guard let since = ready?["lastTransitionTime"]?.stringValue.flatMap(KubeTime.parse) else { return false }
        return now.timeIntervalSince(since) >= Double(minReadySeconds)
    }

    /// A pod built from a workload's `spec.template`: its labels, annotations and spec, plus
    /// `extraLabels`, the controller reference, and a name or a generateName prefix.
    static func pod(from template: JSONValue, namespace: String, name: String? = nil, generateName: String? = nil,
                    extraLabels: [String: String] = [:], owner: JSONValue) -> JSONValue {
        var metadata: JSONValue = ["namespace": .string(namespace), "ownerReferences": [owner]]
        if let name { metadata["name"] = .string(name) }
        if let generateName { metadata["generateName"] = .string(generateName) }
        var labels = template[path: ["metadata", "labels"]]?.objectValue ?? [:]
        for (key, value) in extraLabels { labels[key] = .string(value) }
        if !labels.isEmpty { metadata["labels"] = .object(labels) }
        if let annotations = template[path: ["metadata", "annotations"]], annotations.objectValue?.isEmpty == false {
            metadata["annotations"] = annotations
        }
        return ["apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"] ?? [:]]
    }

    // MARK: Hashes

    /// FNV-1a, 32 bits: what `controller.ComputeHash` feeds the pod template into.
    static func fnv32a(_ bytes: [UInt8]) -> UInt32 {
        var hash: UInt32 = 2_166_136_261
        for byte in bytes {
            hash ^= UInt32(byte)
            hash = hash &* 16_777_619
        }
        return hash
    }

    /// `rand.SafeEncodeString`: each character of the text mapped into an alphabet without
    /// vowels (so no words) and without look-alikes.
    static let safeAlphabet = Array("bcdfghjklmnpqrstvwxz2456789")

    static func safeEncode(_ text: String) -> String {
        String(text.utf8.map { safeAlphabet[Int($0) % safeAlphabet.count] })
    }

    /// `pod-template-hash` / a ControllerRevision's hash: the template (keys sorted) and the
    /// collision count, FNV-1a hashed, the decimal number safe-encoded (`7c5ddbdf54`).
    static func templateHash(_ template: JSONValue, collisionCount: Int64? = nil) -> String {
        var bytes = template.serialized()
        if let collisionCount { bytes += Array(String(collisionCount).utf8) }
        return safeEncode(String(fnv32a(bytes)))
    }

    /// Five characters of ``safeAlphabet``: what kube-apiserver appends to a `generateName`.
    static func randomSuffix(length: Int = 5) -> String {
        String((0..<length).map { _ in safeAlphabet.randomElement()! })
    }
}

extension WorkloadObjects {
    /// Sets a workload condition (Deployment, Job, StatefulSet conditions: `lastTransitionTime`
    /// plus, where the kind has it, `lastUpdateTime`) as the workload controllers do: the
    /// transition time moves only when the status flips; an unchanged condition stays as is.
    static func setCondition(_ conditions: inout [JSONValue], type: String, status: String, reason: String,
                             message: String, now: Date, updateTime: Bool = true) {
        let time = JSONValue.string(KubeTime.format(now))
        var condition: JSONValue = ["type": .string(type), "status": .string(status), "reason": .string(reason),
                                    "message": .string(message), "lastTransitionTime": time]
        if updateTime { condition["lastUpdateTime"] = time }
        guard let index = conditions.firstIndex(where: { $0["type"]?.stringValue == type }) else {
            conditions.append(condition)
            return
        }
        let existing = conditions[index]
        if existing["status"]?.stringValue == status && existing["reason"]?.stringValue == reason
            && existing["message"]?.stringValue == message { return }
        if existing["status"]?.stringValue == status {
            condition["lastTransitionTime"] = existing["lastTransitionTime"]
        }
        conditions[index] = condition
    }

    /// An IntOrString such as `maxSurge: 25%` against `total`, rounding up or down.
    static func scaledValue(_ value: JSONValue?, total: Int, default fallback: String, roundUp: Bool) -> Int {
        let value = value ?? .string(fallback)
        if let number = value.intValue { return Int(number) }
        guard let text = value.stringValue, text.hasSuffix("%"), let percent = Double(text.dropLast()) else { return 0 }
        let scaled = percent * Double(total) / 100
        return Int(roundUp ? scaled.rounded(.up) : scaled.rounded(.down))
    }
}
