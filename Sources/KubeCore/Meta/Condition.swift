import Foundation

/// metav1.Condition, as kstatus and `kubectl wait --for=condition=...` read it.
public struct Condition: Codable, Sendable, Hashable {
    public var type: String
    /// "True", "False" or "Unknown".
    public var status: String
    public var observedGeneration: Int64?
    public var lastTransitionTime: String
    public var reason: String
    public var message: String

    public init(type: String, status: String, observedGeneration: Int64? = nil, lastTransitionTime: String = "",
                reason: String, message: String) {
        self.type = type
        self.status = status
        self.observedGeneration = observedGeneration
        self.lastTransitionTime = lastTransitionTime
        self.reason = reason
        self.message = message
    }
}

/// Condition types and statuses shared by every AgentGate kind (kstatus vocabulary).
public enum ConditionType {
    public static let ready = "Ready"
    public static let reconciling = "Reconciling"
    public static let stalled = "Stalled"
}

public enum ConditionStatus {
    public static let `true` = "True"
    public static let `false` = "False"
    public static let unknown = "Unknown"
}

extension Array where Element == Condition {
    /// The condition of a type, if present.
    public func condition(_ type: String) -> Condition? {
        first { $0.type == type }
    }

    /// Whether the condition of `type` is "True".
    public func isTrue(_ type: String) -> Bool {
        condition(type)?.status == ConditionStatus.true
    }

    /// Sets a condition, keeping `lastTransitionTime` unless the status flips (as
    /// apimachinery's `meta.SetStatusCondition` does). Returns whether anything changed.
    @discardableResult
    public mutating func set(_ condition: Condition, now: Date = Date()) -> Bool {
        var updated = condition
        if let index = firstIndex(where: { $0.type == condition.type }) {
            let existing = self[index]
            updated.lastTransitionTime = existing.status == condition.status && !existing.lastTransitionTime.isEmpty
                ? existing.lastTransitionTime : KubeTime.format(now)
            if existing == updated { return false }
            self[index] = updated
            return true
        }
        if updated.lastTransitionTime.isEmpty { updated.lastTransitionTime = KubeTime.format(now) }
        append(updated)
        return true
    }

    /// Removes the condition of a type. Returns whether one was removed.
    @discardableResult
    public mutating func remove(_ type: String) -> Bool {
        let before = count
        removeAll { $0.type == type }
        return count != before
    }
}
