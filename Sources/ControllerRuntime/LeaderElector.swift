import Foundation
import KubeClient
import KubeCore
import Logging
import Prometheus

/// Leader election on a `coordination.k8s.io/v1` Lease, with client-go's algorithm.
///
/// Contract:
/// - ``acquire(until:)`` tries every `retryPeriod` (with up to 20% jitter) until this
///   identity holds the Lease. A Lease held by someone else is taken only when it has not
///   changed for `leaseDuration` as measured on *our* clock since we first saw its current
///   record (so clock skew between replicas does not matter), or when its holder is empty
///   (released).
/// - ``renew(until:)`` renews every `retryPeriod`; if no renewal succeeds for
///   `renewDeadline`, it throws ``LeaderElectionError/lost``: the caller must stop working
///   at once. `renewDeadline < leaseDuration` guarantees the old leader has stopped before
///   another replica may take over.
/// - ``release()`` (clean shutdown) empties the holder, so a standby takes over within one
///   retry period instead of waiting out the lease.
/// - Every write is a compare-and-swap on the Lease's resourceVersion, so two candidates
///   can never both believe they won.
public final class LeaderElector: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var leaseName: String
        public var leaseNamespace: String
        /// Unique per replica (hostname + random suffix by default).
        public var identity: String
        public var leaseDuration: Duration = .seconds(15)
        public var renewDeadline: Duration = .seconds(10)
        public var retryPeriod: Duration = .seconds(2)

        public init(leaseName: String, leaseNamespace: String, identity: String = LeaderElector.defaultIdentity()) {
            self.leaseName = leaseName
            self.leaseNamespace = leaseNamespace
            self.identity = identity
        }

        /// Checks client-go's constraints between the three durations.
        public func validate() throws {
            guard leaseDuration > renewDeadline else {
                throw LeaderElectionError.invalidConfiguration("leaseDuration (\(leaseDuration)) must be greater than renewDeadline (\(renewDeadline))")
            }
            guard renewDeadline > retryPeriod * 1.2 else {
                throw LeaderElectionError.invalidConfiguration("renewDeadline (\(renewDeadline)) must be greater than 1.2 × retryPeriod (\(retryPeriod))")
            }
        }
    }

    public let configuration: Configuration
    private let client: KubernetesClient
    private let logger: Logger
    private let masterStatus: Gauge?
    private let lock = NSLock()
    private var observedRecord: LeaseRecord?
    private var observedTime = ContinuousClock.now
    private var leading = false

    public init(configuration: Configuration, client: KubernetesClient, registry: PrometheusCollectorRegistry? = nil,
                logger: Logger = Logger(label: "agentgate.leaderelection")) throws {
        try configuration.validate()
        self.configuration = configuration
        self.client = client
        self.logger = logger
        self.masterStatus = registry?.makeGauge(
            descriptor: WorkQueueMetrics.descriptor("leader_election_master_status",
                                                    "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master."),
            labels: [("name", configuration.leaseName)])
        masterStatus?.set(Int64(0))
    }

    /// `<hostname>_<random>`, unique per process.
    public static func defaultIdentity() -> String {
        "\(ProcessInfo.processInfo.hostName)_\(UUID().uuidString.prefix(8).lowercased())"
    }

    public var isLeader: Bool { lock.withLock { leading } }

    /// Blocks until this replica leads (true), or until `stop` fires or the task is cancelled (false).
    public func acquire(until stop: StopSignal) async -> Bool {
        logger.info("attempting to acquire leader lease", metadata: ["lease": "\(lease)"])
        while !stop.isStopped, !Task.isCancelled {
            if await tryAcquireOrRenew() {
                setLeading(true)
                logger.info("successfully acquired lease", metadata: ["lease": "\(lease)", "identity": "\(configuration.identity)"])
                return true
            }
            await stop.sleep(jittered(configuration.retryPeriod))
        }
        return false
    }

    /// Renews until `stop` fires (returns) or a renewal deadline passes (throws ``LeaderElectionError/lost``).
    public func renew(until stop: StopSignal) async throws {
        var lastRenewal = ContinuousClock.now
        while !stop.isStopped {
            await stop.sleep(configuration.retryPeriod)
            if stop.isStopped { return }
            try Task.checkCancellation()
            if await tryAcquireOrRenew() {
                lastRenewal = ContinuousClock.now
            } else if ContinuousClock.now - lastRenewal >= configuration.renewDeadline {
                setLeading(false)
                logger.error("failed to renew lease within the renew deadline; stopping", metadata: ["lease": "\(lease)"])
                throw LeaderElectionError.lost(lease: lease)
            }
        }
    }

    /// Gives the lease up (clean shutdown) so a standby takes over at once.
    public func release() async {
        guard isLeader else { return }
        setLeading(false)
        do {
            let current = try await client.get(.leases, name: configuration.leaseName, namespace: configuration.leaseNamespace)
            guard current[path: ["spec", "holderIdentity"]]?.stringValue == configuration.identity else { return }
            var released = current
            let now = KubeTime.formatMicro(Date())
            released["spec"] = [
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "acquireTime": .string(now),
                "renewTime": .string(now),
                "leaseTransitions": current[path: ["spec", "leaseTransitions"]] ?? 0,
            ]
            _ = try await client.update(.leases, released, namespace: configuration.leaseNamespace)
            logger.info("released lease", metadata: ["lease": "\(lease)"])
        } catch {
            logger.warning("could not release lease; a standby takes over when it expires", metadata: ["error": "\(error)"])
        }
    }

    // MARK: One attempt

    private var lease: String { "\(configuration.leaseNamespace)/\(configuration.leaseName)" }

    private func setLeading(_ value: Bool) {
        lock.withLock { leading = value }
        masterStatus?.set(Int64(value ? 1 : 0))
    }

    /// One compare-and-swap attempt to take or keep the lease.
    func tryAcquireOrRenew() async -> Bool {
        let now = Date()
        let identity = configuration.identity
        let durationSeconds = Int64(configuration.leaseDuration.components.seconds)
        let current: JSONValue
        do {
            current = try await client.get(.leases, name: configuration.leaseName, namespace: configuration.leaseNamespace)
        } catch KubeError.notFound {
            let lease: JSONValue = [
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": ["name": .string(configuration.leaseName), "namespace": .string(configuration.leaseNamespace)],
                "spec": [
                    "holderIdentity": .string(identity), "leaseDurationSeconds": .int(durationSeconds),
                    "acquireTime": .string(KubeTime.formatMicro(now)), "renewTime": .string(KubeTime.formatMicro(now)),
                    "leaseTransitions": 0,
                ],
            ]
            do {
                let created = try await client.create(.leases, lease, namespace: configuration.leaseNamespace)
                observe(LeaseRecord(created))
                return true
            } catch {
                logWriteFailure("create", error)
                return false
            }
        } catch {
            logger.warning("cannot read lease", metadata: ["lease": "\(lease)", "error": "\(error)"])
            return false
        }

        let record = LeaseRecord(current)
        observe(record)
        let (observedAt, heldByOther) = lock.withLock {
            (observedTime, !record.holder.isEmpty && record.holder != identity)
        }
        if heldByOther, ContinuousClock.now < observedAt + .seconds(max(record.durationSeconds, 1)) {
            return false
        }

        var spec = current["spec"] ?? [:]
        if record.holder != identity {
            spec["acquireTime"] = .string(KubeTime.formatMicro(now))
            spec["leaseTransitions"] = .int(record.transitions + (record.holder.isEmpty && record.transitions == 0 ? 0 : 1))
        }
        spec["holderIdentity"] = .string(identity)
        spec["leaseDurationSeconds"] = .int(durationSeconds)
        spec["renewTime"] = .string(KubeTime.formatMicro(now))
        var updated = current
        updated["spec"] = spec
        do {
            let written = try await client.update(.leases, updated, namespace: configuration.leaseNamespace)
            observe(LeaseRecord(written))
            return true
        } catch {
            logWriteFailure("update", error)
            return false
        }
    }

    /// A lost race for the lease (another candidate wrote first: 409) is routine; anything else
    /// (no permission, a server or transport error) keeps this candidate from leading and says why.
    private func logWriteFailure(_ write: String, _ error: any Error) {
        let metadata: Logger.Metadata = ["lease": "\(lease)", "identity": "\(configuration.identity)", "error": "\(error)"]
        switch error {
        case KubeError.conflict, KubeError.alreadyExists:
            logger.debug("lease \(write) lost a race with another candidate", metadata: metadata)
        default:
            logger.warning("lease \(write) failed", metadata: metadata)
        }
    }

    private func observe(_ record: LeaseRecord) {
        lock.withLock {
            if observedRecord != record {
                observedRecord = record
                observedTime = ContinuousClock.now
            }
        }
    }

    private func jittered(_ duration: Duration) -> Duration {
        duration * (1 + Double.random(in: 0..<0.2))
    }
}

/// What a Lease says about its holder; a change of any field restarts the expiry clock.
struct LeaseRecord: Equatable {
    var holder: String
    var durationSeconds: Int64
    var renewTime: String
    var transitions: Int64
    var resourceVersion: String

    init(_ lease: JSONValue) {
        holder = lease[path: ["spec", "holderIdentity"]]?.stringValue ?? ""
        durationSeconds = lease[path: ["spec", "leaseDurationSeconds"]]?.intValue ?? 15
        renewTime = lease[path: ["spec", "renewTime"]]?.stringValue ?? ""
        transitions = lease[path: ["spec", "leaseTransitions"]]?.intValue ?? 0
        resourceVersion = lease[path: ["metadata", "resourceVersion"]]?.stringValue ?? ""
    }
}

public enum LeaderElectionError: Error, CustomStringConvertible, Equatable {
    case lost(lease: String)
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .lost(let lease): return "leader election lost: could not renew lease \(lease) within the renew deadline"
        case .invalidConfiguration(let message): return "invalid leader election configuration: \(message)"
        }
    }
}
