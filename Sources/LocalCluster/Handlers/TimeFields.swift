import Foundation
import KubeCore

/// `metav1.Time` and `metav1.MicroTime` values written in their canonical form, as
/// kube-apiserver stores them after decoding into typed objects.
///
/// Clients write the same instant in several ways: the official Python client sends
/// `2026-12-07T15:42:32+00:00` for what the server returned as `2026-12-07T15:42:32Z`, and
/// other clients add fractional seconds or a local offset. kube-apiserver decodes each into a
/// Go `time.Time` and encodes it back as RFC 3339 in UTC (seconds for Time, microseconds for
/// MicroTime), so a read-modify-write of an unchanged object stores the same bytes and
/// time fields compare as instants, never as spellings.
///
/// Which values are times:
/// - every object: `metadata.creationTimestamp`, `metadata.deletionTimestamp` and
///   `metadata.managedFields[].time` (custom resources too: apiextensions coerces metadata
///   through the typed ObjectMeta);
/// - built-in kinds: the fields the core API types declare as Time or MicroTime, by name,
///   anywhere in the object except inside user maps (`data`, `annotations`, ...), whose
///   strings are the user's. Custom resources' own fields are stored as sent, as
///   kube-apiserver does.
/// A value that does not parse as a time is left as is: validation, not this, reports it.
enum TimeFields {
    /// Field names the built-in API types declare as `metav1.Time`.
    static let timeNames: Set<String> = [
        "creationTimestamp", "deletionTimestamp", "lastTransitionTime", "lastProbeTime", "lastUpdateTime",
        "lastHeartbeatTime", "startedAt", "finishedAt", "startTime", "completionTime", "lastScheduleTime",
        "lastSuccessfulTime", "firstTimestamp", "lastTimestamp", "expirationTimestamp", "lastScaleTime",
    ]
    /// Field names the built-in API types declare as `metav1.MicroTime` (Events, Leases).
    static let microTimeNames: Set<String> = ["eventTime", "lastObservedTime", "acquireTime", "renewTime"]
    /// Maps whose values are the user's strings, never reinterpreted.
    static let userMaps: Set<String> = ["data", "binaryData", "stringData", "annotations", "labels", "matchLabels",
                                        "selector", "nodeSelector", "parameters", "extra"]

    /// The object with its time fields in canonical form.
    static func canonicalized(_ object: JSONValue, isCustomResource: Bool) -> JSONValue {
        var result = object
        guard var metadata = object["metadata"]?.objectValue else {
            return isCustomResource ? result : canonicalizedFields(result)
        }
        for key in ["creationTimestamp", "deletionTimestamp"] {
            if let value = metadata[key] { metadata[key] = canonicalTime(value, micro: false) }
        }
        if let entries = metadata["managedFields"]?.arrayValue {
            metadata["managedFields"] = .array(entries.map { entry in
                var entry = entry
                if let time = entry["time"] { entry["time"] = canonicalTime(time, micro: false) }
                return entry
            })
        }
        result["metadata"] = .object(metadata)
        guard !isCustomResource else { return result }
        for (key, value) in result.objectValue ?? [:] where key != "metadata" && !userMaps.contains(key) {
            result[key] = canonicalizedFields(value)
        }
        return result
    }

    private static func canonicalizedFields(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(var fields):
            for (key, child) in fields where !userMaps.contains(key) {
                if timeNames.contains(key) {
                    fields[key] = canonicalTime(child, micro: false)
                } else if microTimeNames.contains(key) {
                    fields[key] = canonicalTime(child, micro: true)
                } else if case .object = child {
                    fields[key] = canonicalizedFields(child)
                } else if case .array = child {
                    fields[key] = canonicalizedFields(child)
                }
            }
            return .object(fields)
        case .array(let items):
            return .array(items.map(canonicalizedFields))
        default:
            return value
        }
    }

    /// A time string in the form kube-apiserver writes; anything else unchanged.
    static func canonicalTime(_ value: JSONValue, micro: Bool) -> JSONValue {
        guard let text = value.stringValue, let date = KubeTime.parse(text) else { return value }
        return .string(micro ? KubeTime.formatMicro(date) : KubeTime.format(date))
    }

    /// Whether two time values name the same instant (same second for Time), whatever their spelling.
    static func sameInstant(_ a: JSONValue?, _ b: JSONValue?) -> Bool {
        guard let a, let b, let x = a.stringValue.flatMap(KubeTime.parse), let y = b.stringValue.flatMap(KubeTime.parse) else {
            return a == b
        }
        return x.timeIntervalSince1970.rounded(.down) == y.timeIntervalSince1970.rounded(.down)
    }
}
