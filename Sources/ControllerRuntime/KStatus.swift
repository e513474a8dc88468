import Foundation
import KubeCore

/// Sets the three kstatus conditions together, so `kubectl wait --for=condition=Ready`,
/// Flux's and Argo CD's health checks read one consistent answer.
///
/// kstatus rules followed here:
/// - `Ready=True` only when the object is fully reconciled at its current generation;
///   `Reconciling` and `Stalled` are then removed (kstatus treats them as "abnormal-true"
///   conditions that are present only while true).
/// - Work in progress (waiting for a ServiceAccount, say): `Ready=False` and
///   `Reconciling=True` with the same reason and message.
/// - A spec that cannot work until someone changes it: `Ready=False` and `Stalled=True`.
/// - Every condition carries `observedGeneration`; `lastTransitionTime` changes only when a
///   condition's status flips (`[Condition].set`).
public enum KStatus {
    public enum State: Sendable, Equatable {
        case ready(reason: String, message: String)
        case reconciling(reason: String, message: String)
        case stalled(reason: String, message: String)
    }

    /// Applies `state` to `conditions` for `generation`; returns whether anything changed.
    @discardableResult
    public static func set(_ state: State, generation: Int64?, on conditions: inout [Condition], now: Date = Date()) -> Bool {
        var changed = false
        switch state {
        case .ready(let reason, let message):
            changed = conditions.set(Condition(type: ConditionType.ready, status: ConditionStatus.true, observedGeneration: generation,
                                               reason: reason, message: message), now: now) || changed
            changed = conditions.remove(ConditionType.reconciling) || changed
            changed = conditions.remove(ConditionType.stalled) || changed
        case .reconciling(let reason, let message):
            changed = conditions.set(Condition(type: ConditionType.ready, status: ConditionStatus.false, observedGeneration: generation,
                                               reason: reason, message: message), now: now) || changed
            changed = conditions.set(Condition(type: ConditionType.reconciling, status: ConditionStatus.true,
                                               observedGeneration: generation, reason: reason, message: message), now: now) || changed
            changed = conditions.remove(ConditionType.stalled) || changed
        case .stalled(let reason, let message):
            changed = conditions.set(Condition(type: ConditionType.ready, status: ConditionStatus.false, observedGeneration: generation,
                                               reason: reason, message: message), now: now) || changed
            changed = conditions.set(Condition(type: ConditionType.stalled, status: ConditionStatus.true,
                                               observedGeneration: generation, reason: reason, message: message), now: now) || changed
            changed = conditions.remove(ConditionType.reconciling) || changed
        }
        return changed
    }
}
