import AgentGateAPI
import ControllerRuntime
import Foundation
import KubeClient
import KubeCore
import Logging

/// The operator's half of "binding a ServiceAccount requires the right to use it".
///
/// The API server's half is the ValidatingAdmissionPolicy `agentgate-serviceaccount-binding`
/// (``ServiceAccountBindingPolicy``, shipped in `config/admission`): it refuses an
/// AgentConnection whose author may not `use` (or `impersonate`) the ServiceAccount it names.
/// Without that policy and its binding, anyone who may create a connection could borrow any
/// ServiceAccount of the namespace, so the operator does not mint tokens then:
///
/// - While either object is missing, every AgentConnection that is not being deleted is
///   `Stalled` with reason `BindingPolicyMissing` and a message saying how to install it; no
///   TokenRequest is made and no credential is rotated (an already issued one runs out at its
///   expiry). Deletions still run, so finalizers and Secrets are cleaned up.
/// - When both appear (their informers requeue every connection), reconciling resumes.
/// - `--allow-missing-binding-policy` (``OperatorOptions/allowMissingBindingPolicy``) turns the
///   check off, for clusters that enforce the same rule another way.
///
/// It wraps the AgentConnection reconciler, so the check runs before anything else it does.
final class BindingPolicyCheck: Reconciler, @unchecked Sendable {
    static let reason = "BindingPolicyMissing"

    let inner: any Reconciler
    let policies: Informer<ValidatingAdmissionPolicy>
    let bindings: Informer<ValidatingAdmissionPolicyBinding>
    let connections: Informer<AgentConnection>
    let status: StatusApplier
    let events: EventRecorder

    init(wrapping inner: any Reconciler, policies: Informer<ValidatingAdmissionPolicy>,
         bindings: Informer<ValidatingAdmissionPolicyBinding>, connections: Informer<AgentConnection>,
         status: StatusApplier, events: EventRecorder) {
        self.inner = inner
        self.policies = policies
        self.bindings = bindings
        self.connections = connections
        self.status = status
        self.events = events
    }

    /// What is missing, worded for a status message; nil when both objects are installed.
    var missing: String? {
        let name = ServiceAccountBindingPolicy.name
        var absent: [String] = []
        if policies.cache.get(namespace: "", name: name) == nil { absent.append("ValidatingAdmissionPolicy \(name)") }
        if bindings.cache.get(namespace: "", name: name) == nil { absent.append("ValidatingAdmissionPolicyBinding \(name)") }
        return absent.isEmpty ? nil : absent.joined(separator: " and ")
    }

    static func message(missing: String) -> String {
        "\(missing) not found: without it anyone who may create an AgentConnection could borrow any ServiceAccount "
            + "of its namespace, so no token is requested; install it with kubectl apply -k config/admission "
            + "(part of config/default), or run the operator with --allow-missing-binding-policy"
    }

    func reconcile(_ request: ReconcileRequest) async throws -> ReconcileResult {
        guard let connection = connections.cache.get(request), connection.metadata.deletionTimestamp == nil,
              let missing else {
            return try await inner.reconcile(request)
        }
        let message = Self.message(missing: missing)
        let current = connection.status
        var conditions = current?.conditions ?? []
        KStatus.set(.stalled(reason: Self.reason, message: message), generation: connection.metadata.generation, on: &conditions)
        let newStatus = AgentConnectionStatus(observedGeneration: connection.metadata.generation, endpoint: current?.endpoint,
                                              credential: current?.credential, appliedMaskingRules: current?.appliedMaskingRules,
                                              conditions: conditions)
        if try await status.apply(newStatus, to: connection) != nil {
            await events.record(.init(connection), type: .warning, reason: Self.reason, action: "Reconcile", note: message)
        }
        return .done
    }

    /// Requeues every connection when the policy or its binding comes or goes.
    func requeueAll(into controller: Controller) {
        let enqueueAll: @Sendable () -> Void = { [connections] in
            for connection in connections.cache.list() {
                controller.enqueue(ReconcileRequest(namespace: connection.metadata.namespace ?? "", name: connection.metadata.name ?? ""))
            }
        }
        policies.addHandler { event in if event.object.metadata.name == ServiceAccountBindingPolicy.name { enqueueAll() } }
        bindings.addHandler { event in if event.object.metadata.name == ServiceAccountBindingPolicy.name { enqueueAll() } }
    }
}

/// admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy, as far as the operator reads it (that it exists).
public struct ValidatingAdmissionPolicy: KubernetesResource, Hashable {
    public static let group = "admissionregistration.k8s.io", version = "v1", plural = "validatingadmissionpolicies"
    public static let kind = "ValidatingAdmissionPolicy"
    public static let namespaced = false
    public var apiVersion = "admissionregistration.k8s.io/v1"
    public var kind = "ValidatingAdmissionPolicy"
    public var metadata: ObjectMeta
}

/// admissionregistration.k8s.io/v1 ValidatingAdmissionPolicyBinding, as far as the operator reads it.
public struct ValidatingAdmissionPolicyBinding: KubernetesResource, Hashable {
    public static let group = "admissionregistration.k8s.io", version = "v1", plural = "validatingadmissionpolicybindings"
    public static let kind = "ValidatingAdmissionPolicyBinding"
    public static let namespaced = false
    public var apiVersion = "admissionregistration.k8s.io/v1"
    public var kind = "ValidatingAdmissionPolicyBinding"
    public var metadata: ObjectMeta
}
