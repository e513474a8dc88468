import Foundation
import KubeClient
import KubeCore

/// Runs a reconcile under a finalizer, so cleanup always happens before the object goes away.
///
/// Flow (kube-rs's `finalizer`):
/// 1. The object is not being deleted and lacks the finalizer: add it, then `apply`.
/// 2. The object is not being deleted and has it: `apply`.
/// 3. The object is being deleted and has it: `cleanup`, then remove the finalizer. If
///    cleanup throws, the finalizer stays and the reconcile is retried, so nothing is leaked.
/// 4. The object is being deleted and lacks it: nothing to do.
///
/// Guarantees: every finalizer write is a JSON patch guarded by a `test` operation (of the
/// finalizer list it read, or of the resourceVersion when the list is empty), so a stale
/// cache can never drop another controller's finalizer or re-add one after removal; a failed
/// test makes the API server answer 422 and the reconcile is retried with fresh state.
/// Assumption: `cleanup` is idempotent (it may run again if removal fails).
public enum Finalizer {
    public static func reconcile<T: KubernetesResource>(
        _ object: T, finalizer: String, client: KubernetesClient,
        apply: (T) async throws -> ReconcileResult,
        cleanup: (T) async throws -> ReconcileResult
    ) async throws -> ReconcileResult {
        let finalizers = object.metadata.finalizers ?? []
        let present = finalizers.contains(finalizer)
        if object.metadata.deletionTimestamp != nil {
            guard present else { return .done }
            let outcome = try await cleanup(object)
            guard outcome == .done else { return outcome }
            try await remove(finalizer, from: object, client: client)
            return .done
        }
        var current = object
        if !present {
            current = try await add(finalizer, to: object, client: client)
        }
        return try await apply(current)
    }

    /// Adds `finalizer`; returns the object as the server now has it.
    public static func add<T: KubernetesResource>(_ finalizer: String, to object: T, client: KubernetesClient) async throws -> T {
        let finalizers = object.metadata.finalizers ?? []
        let operations: [JSONValue]
        if finalizers.isEmpty {
            operations = [
                ["op": "test", "path": "/metadata/resourceVersion", "value": .string(object.metadata.resourceVersion ?? "")],
                ["op": "add", "path": "/metadata/finalizers", "value": [.string(finalizer)]],
            ]
        } else {
            operations = [
                ["op": "test", "path": "/metadata/finalizers", "value": .array(finalizers.map { .string($0) })],
                ["op": "add", "path": "/metadata/finalizers/-", "value": .string(finalizer)],
            ]
        }
        return try await client.jsonPatch(T.self, name: object.metadata.name ?? "", namespace: object.metadata.namespace, operations)
    }

    /// Removes `finalizer` (a no-op when absent).
    public static func remove<T: KubernetesResource>(_ finalizer: String, from object: T, client: KubernetesClient) async throws {
        guard let index = object.metadata.finalizers?.firstIndex(of: finalizer) else { return }
        let operations: [JSONValue] = [
            ["op": "test", "path": .string("/metadata/finalizers/\(index)"), "value": .string(finalizer)],
            ["op": "remove", "path": .string("/metadata/finalizers/\(index)")],
        ]
        do {
            _ = try await client.jsonPatch(T.resourceType, name: object.metadata.name ?? "", namespace: object.metadata.namespace, operations)
        } catch KubeError.notFound {
            // Already gone: another finalizer was the last, or the object was removed meanwhile.
        }
    }
}
