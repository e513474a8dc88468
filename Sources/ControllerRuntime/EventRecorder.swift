import Foundation
import KubeClient
import KubeCore
import Logging

/// Records `events.k8s.io/v1` Events about objects, folding repeats into a series.
///
/// Contract:
/// - The first occurrence of an event (same object, type, reason, action and note) creates
///   an Event named `<object>.<random hex>`; a repeat within ``Configuration/seriesWindow``
///   patches that Event's `series` (`count`, `lastObservedTime`) instead of creating another,
///   so a reconcile loop that fails every few seconds leaves one Event with a growing count,
///   as client-go's events broadcaster does.
/// - Recording never throws and never blocks a reconcile on failure: a failed write is
///   logged (Events are best-effort in Kubernetes too).
/// - Notes are cut to 1 KiB, the API's limit.
public final class EventRecorder: @unchecked Sendable {
    public enum EventType: String, Sendable {
        case normal = "Normal"
        case warning = "Warning"
    }

    public struct Configuration: Sendable {
        /// `reportingController`, e.g. `agentgate.io/operator`.
        public var controller: String
        /// `reportingInstance`: this replica.
        public var instance: String
        public var seriesWindow: Duration = .seconds(30 * 60)
        /// Distinct events remembered for folding.
        public var cacheSize = 4096

        public init(controller: String, instance: String) {
            self.controller = controller
            self.instance = instance
        }
    }

    /// The object an Event is about.
    public struct Regarding: Sendable, Hashable {
        public var apiVersion: String
        public var kind: String
        public var namespace: String
        public var name: String
        public var uid: String?
        public var resourceVersion: String?

        public init(apiVersion: String, kind: String, namespace: String, name: String, uid: String? = nil, resourceVersion: String? = nil) {
            self.apiVersion = apiVersion
            self.kind = kind
            self.namespace = namespace
            self.name = name
            self.uid = uid
            self.resourceVersion = resourceVersion
        }

        /// The reference for a typed object.
        public init<T: KubernetesResource>(_ object: T) {
            self.init(apiVersion: T.resourceType.apiVersion, kind: T.kind, namespace: object.metadata.namespace ?? "default",
                      name: object.metadata.name ?? "", uid: object.metadata.uid, resourceVersion: object.metadata.resourceVersion)
        }
    }

    private struct SeriesKey: Hashable {
        var namespace: String
        var name: String
        var uid: String?
        var type: EventType
        var reason: String
        var action: String
        var note: String
    }

    private struct Series {
        var eventName: String
        var count: Int64
        var firstSeen: ContinuousClock.Instant
        var lastUsed: UInt64
    }

    public let configuration: Configuration
    private let client: KubernetesClient
    private let logger: Logger
    private let lock = NSLock()
    private var series: [SeriesKey: Series] = [:]
    private var tick: UInt64 = 0

    public init(configuration: Configuration, client: KubernetesClient, logger: Logger = Logger(label: "agentgate.events")) {
        self.configuration = configuration
        self.client = client
        self.logger = logger
    }

    /// Records one occurrence. `action` says what was done (`RotateCredential`), `reason` why
    /// (`CredentialRotated`), `note` the human-readable detail.
    public func record(_ regarding: Regarding, type: EventType, reason: String, action: String, note: String) async {
        let note = note.utf8.count > 1024 ? String(decoding: Array(note.utf8.prefix(1021)), as: UTF8.self) + "..." : note
        let key = SeriesKey(namespace: regarding.namespace, name: regarding.name, uid: regarding.uid, type: type,
                            reason: reason, action: action, note: note)
        let now = Date()
        let existing: Series? = lock.withLock {
            tick += 1
            guard var entry = series[key], ContinuousClock.now - entry.firstSeen < configuration.seriesWindow else { return nil }
            entry.count += 1
            entry.lastUsed = tick
            series[key] = entry
            return entry
        }
        if let existing {
            let patch: JSONValue = ["series": ["count": .int(existing.count), "lastObservedTime": .string(KubeTime.formatMicro(now))]]
            do {
                _ = try await client.mergePatch(.eventsV1, name: existing.eventName, namespace: regarding.namespace, patch)
                return
            } catch KubeError.notFound {
                // The Event expired or was deleted: start a new one below.
            } catch {
                logger.warning("cannot update event series", metadata: ["event": "\(existing.eventName)", "error": "\(error)"])
                return
            }
        }
        let name = "\(regarding.name).\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
        var regardingJSON: JSONValue = [
            "apiVersion": .string(regarding.apiVersion), "kind": .string(regarding.kind),
            "namespace": .string(regarding.namespace), "name": .string(regarding.name),
        ]
        if let uid = regarding.uid { regardingJSON["uid"] = .string(uid) }
        if let rv = regarding.resourceVersion { regardingJSON["resourceVersion"] = .string(rv) }
        let event: JSONValue = [
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": ["name": .string(name), "namespace": .string(regarding.namespace)],
            "eventTime": .string(KubeTime.formatMicro(now)),
            "reportingController": .string(configuration.controller),
            "reportingInstance": .string(configuration.instance),
            "action": .string(action), "reason": .string(reason), "type": .string(type.rawValue),
            "note": .string(note), "regarding": regardingJSON,
        ]
        do {
            _ = try await client.create(.eventsV1, event, namespace: regarding.namespace)
            lock.withLock {
                series[key] = Series(eventName: name, count: 1, firstSeen: .now, lastUsed: tick)
                if series.count > configuration.cacheSize,
                   let oldest = series.min(by: { $0.value.lastUsed < $1.value.lastUsed })?.key {
                    series.removeValue(forKey: oldest)
                }
            }
        } catch {
            logger.warning("cannot record event", metadata: [
                "regarding": "\(regarding.namespace)/\(regarding.name)", "reason": "\(reason)", "error": "\(error)",
            ])
        }
    }
}
