import AgentGateAPI
import ControllerRuntime
import Foundation
import KubeClient
import KubeCore

/// Writes the operator's part of a status with server-side apply under its own field manager,
/// and only when it changed.
///
/// Why server-side apply: the gateway owns other status fields of the same objects
/// (`status.sessions`, `status.pendingApprovals`, a RecordingPolicy's counters) under its own
/// field manager; an apply that lists only the operator's fields can never overwrite them.
///
/// Why the memory: the informer's copy of an object can lag the operator's own last write
/// (the event for it has not arrived yet). Without remembering what was written, the next
/// reconcile would apply the same status again; with it, an unchanged status costs no request.
/// resourceVersions are compared for equality only (see `OwnWrites`).
final class StatusApplier: @unchecked Sendable {
    private let client: KubernetesClient
    private let fieldManager: String
    private let lock = NSLock()
    private var written: [Key: (status: JSONValue, versions: OwnWrites)] = [:]

    private struct Key: Hashable {
        var resource: String
        var request: ReconcileRequest
    }

    init(client: KubernetesClient, fieldManager: String) {
        self.client = client
        self.fieldManager = fieldManager
    }

    /// Applies `status` (the operator's fields only) to `object` unless the cached object
    /// already shows it, or it is what this operator last wrote and the cache has not caught up.
    /// Returns the resourceVersion written, or nil when nothing needed writing.
    @discardableResult
    func apply<T: AgentGateObject>(_ status: T.Status, to object: T) async throws -> String? {
        let desired = try JSONValue(encoding: status)
        let request = ReconcileRequest(namespace: object.metadata.namespace ?? "", name: object.metadata.name ?? "")
        let key = Key(resource: T.plural, request: request)
        let current = try object.status.map { try JSONValue(encoding: $0) } ?? [:]
        if Self.owned(desired, in: current) { return nil }
        let cachedVersion = object.metadata.resourceVersion
        let behind = lock.withLock { () -> Bool in
            guard written[key]?.status == desired else { return false }
            return written[key]?.versions.isBehind(cachedVersion) ?? false
        }
        if behind { return nil }
        let body: JSONValue = [
            "apiVersion": .string(AgentGateGroup.apiVersion), "kind": .string(T.kind),
            "metadata": ["name": .string(request.name), "namespace": .string(request.namespace)],
            "status": desired,
        ]
        let answer = try await client.apply(T.resourceType, body, namespace: request.namespace, fieldManager: fieldManager,
                                            force: true, subresource: "status")
        let version = answer[path: ["metadata", "resourceVersion"]]?.stringValue ?? ""
        lock.withLock {
            var versions = written[key]?.versions ?? OwnWrites()
            versions.wrote(version, over: cachedVersion)
            written[key] = (desired, versions)
        }
        return version
    }

    /// Forgets a deleted object.
    func forget<T: AgentGateObject>(_ type: T.Type, _ request: ReconcileRequest) {
        _ = lock.withLock { written.removeValue(forKey: Key(resource: T.plural, request: request)) }
    }

    /// Whether every field of `desired` has the same value in `current`, and `current` has no
    /// operator-owned field that `desired` dropped.
    static func owned(_ desired: JSONValue, in current: JSONValue) -> Bool {
        guard let fields = desired.objectValue else { return false }
        for (name, value) in fields where current[name] != value { return false }
        for name in operatorFields where fields[name] == nil && current[name] != nil { return false }
        return true
    }

    /// Status fields the operator writes, across the three kinds.
    static let operatorFields = ["observedGeneration", "endpoint", "credential", "appliedMaskingRules", "conditions", "compiledPatterns"]
}
