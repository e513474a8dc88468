import AgentGateAPI
import ControllerRuntime
import Foundation
import KubeClient
import KubeCore

/// MaskingRule: compiles every pattern with the gateway's masking engine and reports the
/// count, or `InvalidSpec` naming the pattern and the compiler's reason. A bad rule is never
/// retried (only a spec change can fix it); connections that select it stop at
/// `MaskingRuleInvalid` and the gateway keeps serving their last good configuration.
struct MaskingRuleReconciler: Reconciler {
    let rules: Informer<MaskingRule>
    let status: StatusApplier
    let events: EventRecorder

    func reconcile(_ request: ReconcileRequest) async throws -> ReconcileResult {
        guard let rule = rules.cache.get(request) else {
            status.forget(MaskingRule.self, request)
            return .done
        }
        let (compiled, problems) = SpecValidation.compile(rule.spec)
        var conditions = rule.status?.conditions ?? []
        let state: KStatus.State = problems.isEmpty
            ? .ready(reason: "Compiled", message: "\(compiled) pattern(s) compiled")
            : .stalled(reason: "InvalidSpec", message: SpecValidation.summary(problems))
        KStatus.set(state, generation: rule.metadata.generation, on: &conditions)
        let desired = MaskingRuleStatus(observedGeneration: rule.metadata.generation, compiledPatterns: Int32(compiled),
                                        conditions: conditions)
        let wrote = try await status.apply(desired, to: rule) != nil
        if wrote, !problems.isEmpty {
            await events.record(.init(rule), type: .warning, reason: "InvalidSpec", action: "Compile", note: SpecValidation.summary(problems))
        }
        return .done
    }
}

/// RecordingPolicy: validates what the schema cannot (durations, alert rules) and keeps the
/// operator's part of the status; the gateway owns the counters (`sessionsRecorded`,
/// `bytesRecorded`, `lastPrune`).
struct RecordingPolicyReconciler: Reconciler {
    let policies: Informer<RecordingPolicy>
    let status: StatusApplier
    let events: EventRecorder

    func reconcile(_ request: ReconcileRequest) async throws -> ReconcileResult {
        guard let policy = policies.cache.get(request) else {
            status.forget(RecordingPolicy.self, request)
            return .done
        }
        let problems = SpecValidation.validate(policy.spec)
        var conditions = policy.status?.conditions ?? []
        let state: KStatus.State = problems.isEmpty
            ? .ready(reason: "Valid", message: "policy is valid")
            : .stalled(reason: "InvalidSpec", message: SpecValidation.summary(problems))
        KStatus.set(state, generation: policy.metadata.generation, on: &conditions)
        let desired = RecordingPolicyStatus(observedGeneration: policy.metadata.generation, conditions: conditions)
        let wrote = try await status.apply(desired, to: policy) != nil
        if wrote, !problems.isEmpty {
            await events.record(.init(policy), type: .warning, reason: "InvalidSpec", action: "Validate", note: SpecValidation.summary(problems))
        }
        return .done
    }
}
