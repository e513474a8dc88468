import Foundation

/// metav1.ObjectMeta. Every optional is omitted when `nil`, never sent as `null`.
public struct ObjectMeta: Codable, Sendable, Hashable {
    public var name: String?
    public var generateName: String?
    public var namespace: String?
    public var uid: String?
    public var resourceVersion: String?
    public var generation: Int64?
    public var creationTimestamp: String?
    public var deletionTimestamp: String?
    public var deletionGracePeriodSeconds: Int64?
    public var labels: [String: String]?
    public var annotations: [String: String]?
    public var ownerReferences: [OwnerReference]?
    public var finalizers: [String]?
    public var managedFields: [JSONValue]?

    public init(name: String? = nil, namespace: String? = nil, labels: [String: String]? = nil,
                annotations: [String: String]? = nil) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.annotations = annotations
    }
}

/// metav1.OwnerReference.
public struct OwnerReference: Codable, Sendable, Hashable {
    public var apiVersion: String
    public var kind: String
    public var name: String
    public var uid: String
    public var controller: Bool?
    public var blockOwnerDeletion: Bool?

    public init(apiVersion: String, kind: String, name: String, uid: String, controller: Bool? = nil,
                blockOwnerDeletion: Bool? = nil) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.name = name
        self.uid = uid
        self.controller = controller
        self.blockOwnerDeletion = blockOwnerDeletion
    }
}

/// metav1.ListMeta.
public struct ListMeta: Codable, Sendable, Hashable {
    public var resourceVersion: String?
    public var `continue`: String?
    public var remainingItemCount: Int64?
    public init(resourceVersion: String? = nil, continue: String? = nil) {
        self.resourceVersion = resourceVersion
        self.continue = `continue`
    }
}

/// RFC 3339 timestamps as the API writes them (`2026-11-27T05:22:48Z`, second precision).
public enum KubeTime {
    // Format styles are values (thread-safe, cheap); a DateFormatter per call cost ~0.4 ms,
    // which dominated Table rendering of large lists.
    private static let seconds = Date.ISO8601FormatStyle()
    private static let fractional = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    public static func format(_ date: Date) -> String {
        seconds.format(date)
    }

    /// Micro-second precision (`metav1.MicroTime`), used by Events and Leases.
    public static func formatMicro(_ date: Date) -> String {
        let whole = floor(date.timeIntervalSince1970)
        let micros = Int((date.timeIntervalSince1970 - whole) * 1_000_000)
        let base = format(Date(timeIntervalSince1970: whole))
        return String(base.dropLast()) + String(format: ".%06dZ", micros)
    }

    public static func parse(_ text: String) -> Date? {
        if let date = try? seconds.parse(text) { return date }
        return try? fractional.parse(text)
    }
}
