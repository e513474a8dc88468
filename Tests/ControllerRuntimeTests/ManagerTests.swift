import AsyncHTTPClient
import ControllerRuntime
import Foundation
import KubeClient
import KubeCore
import NIOCore
import Prometheus
import TestSupport
import XCTest

/// Leader election, graceful shutdown, metrics and probes of the manager, on the embedded API server.
final class ManagerTests: XCTestCase {
    /// A manager with leader election and one controller over ConfigMaps in `default`.
    struct Replica {
        let manager: Manager
        let task: Task<Void, Error>
    }

    func startReplica(_ fixture: ClusterFixture, identity: String, election: LeaderElector.Configuration,
                      tracker: ConcurrencyTracker, reconcileTime: Duration = .milliseconds(20),
                      healthAddress: (host: String, port: Int)? = nil) throws -> Replica {
        let client = try fixture.client()
        var configuration = election
        configuration.identity = identity
        let manager = try Manager(client: client, options: Manager.Options(
            leaderElection: configuration, metricsAddress: healthAddress, healthAddress: healthAddress))
        let informer = Informer<ConfigMap>(client: client, namespace: "default")
        let controller = Controller(name: "configmaps", reconciler: ReconcilerFunction { request in
            tracker.begin(request.description, by: identity)
            defer { tracker.end(request.description) }
            try await Task.sleep(for: reconcileTime)
            tracker.markFinished(request.description)
            return .done
        }, workers: 2, registry: manager.registry)
        informer.addHandler(EventHandler.enqueueObject(controller))
        manager.add(informer)
        manager.add(controller)
        return Replica(manager: manager, task: Task { try await manager.run() })
    }

    static func election(lease: Duration = .seconds(15), renew: Duration = .seconds(10), retry: Duration = .seconds(2)) -> LeaderElector.Configuration {
        var configuration = LeaderElector.Configuration(leaseName: "test-operator", leaseNamespace: "default")
        configuration.leaseDuration = lease
        configuration.renewDeadline = renew
        configuration.retryPeriod = retry
        return configuration
    }

    func holder(_ client: KubernetesClient) async throws -> String? {
        try? await client.get(.leases, name: "test-operator", namespace: "default")[path: ["spec", "holderIdentity"]]?.stringValue
    }

    func testTwoManagersElectOneLeaderAndOnlyTheLeaderReconciles() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            for index in 0..<5 {
                _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "cm-\(index)", namespace: "default")))
            }
            let tracker = ConcurrencyTracker()
            let election = Self.election(lease: .seconds(4), renew: .seconds(3), retry: .milliseconds(500))
            let a = try startReplica(fixture, identity: "replica-a", election: election, tracker: tracker)
            let b = try startReplica(fixture, identity: "replica-b", election: election, tracker: tracker)
            try await eventually(10, "a leader") { a.manager.elector!.isLeader || b.manager.elector!.isLeader }
            try await eventually(10, "the five objects reconciled") { tracker.total >= 5 }
            try await Task.sleep(for: .seconds(2))
            XCTAssertNotEqual(a.manager.elector!.isLeader, b.manager.elector!.isLeader, "exactly one replica leads")
            let leader = a.manager.elector!.isLeader ? "replica-a" : "replica-b"
            let holderIdentity = try await holder(client)
            XCTAssertEqual(holderIdentity, leader)
            XCTAssertEqual(Set(tracker.reconcilers), [leader], "only the leader reconciles")
            for replica in [a, b] { replica.manager.shutDown() }
            for replica in [a, b] { try await replica.task.value }
        }
    }

    func testKilledLeaderIsReplacedWithinTheLeaseDurationAndNoObjectIsReconciledTwiceAtOnce() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            let tracker = ConcurrencyTracker()
            let election = Self.election() // 15 s / 10 s / 2 s, the defaults
            let a = try startReplica(fixture, identity: "replica-a", election: election, tracker: tracker,
                                     reconcileTime: .milliseconds(150))
            try await eventually(10, "replica-a to lead") { a.manager.elector!.isLeader }
            let b = try startReplica(fixture, identity: "replica-b", election: election, tracker: tracker,
                                     reconcileTime: .milliseconds(150))
            // Keep objects changing throughout, so both leaders have work.
            let writer = Task {
                var step = 0
                while !Task.isCancelled {
                    step += 1
                    _ = try? await client.apply(.configMaps, ["apiVersion": "v1", "kind": "ConfigMap",
                                                              "metadata": ["name": .string("cm-\(step % 4)"), "namespace": "default"],
                                                              "data": ["step": .string("\(step)")]],
                                                fieldManager: "test")
                    try? await Task.sleep(for: .milliseconds(30))
                }
            }
            defer { writer.cancel() }
            try await Task.sleep(for: .seconds(1))
            XCTAssertFalse(b.manager.elector!.isLeader, "the second replica stays passive while the first leads")

            // Kill the leader: no release, no drain (what SIGKILL does).
            a.task.cancel()
            _ = try? await a.task.value
            let killedAt = ContinuousClock.now
            try await eventually(30, "replica-b to take over") { b.manager.elector!.isLeader }
            let takeover = ContinuousClock.now - killedAt
            print("leader killed → standby leading after \(takeover) (lease 15 s, retry 2 s)")
            XCTAssertLessThanOrEqual(takeover, .seconds(15) + .milliseconds(2400) + .seconds(1),
                                     "the standby must lead once the lease expires (lease duration + one jittered retry)")
            try await eventually(10, "replica-b to reconcile") { tracker.reconcilers.contains("replica-b") }
            writer.cancel()
            XCTAssertEqual(tracker.maxOverlap, 1, "an object was reconciled by two replicas (or workers) at once")
            b.manager.shutDown()
            try await b.task.value
        }
    }

    func testGracefulShutdownDrainsInFlightReconcilesThenReleasesTheLeaseToTheStandby() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            let tracker = ConcurrencyTracker()
            let election = Self.election() // defaults: without a release the standby would wait 15 s
            let a = try startReplica(fixture, identity: "replica-a", election: election, tracker: tracker,
                                     reconcileTime: .seconds(1))
            try await eventually(10, "replica-a to lead") { a.manager.elector!.isLeader }
            let b = try startReplica(fixture, identity: "replica-b", election: election, tracker: tracker)
            _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "slow", namespace: "default")))
            try await eventually(5, "the slow reconcile to start") { tracker.count("default/slow") == 1 }

            a.manager.shutDown() // what SIGTERM does
            try await a.task.value
            XCTAssertEqual(tracker.finished("default/slow"), 1, "the in-flight reconcile finished before the manager returned")
            let holderAfterShutdown = try await holder(client)
            XCTAssertNotEqual(holderAfterShutdown, "replica-a", "the lease was released")
            let releasedAt = ContinuousClock.now
            try await eventually(10, "replica-b to take over") { b.manager.elector!.isLeader }
            XCTAssertLessThan(ContinuousClock.now - releasedAt, .seconds(5), "a released lease is taken within a retry period, not a lease duration")
            b.manager.shutDown()
            try await b.task.value
        }
    }

    func testMetricsAndProbesAreServedWithControllerRuntimeNames() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "observed", namespace: "default")))
            let tracker = ConcurrencyTracker()
            let replica = try startReplica(fixture, identity: "replica-m", election: Self.election(lease: .seconds(4), renew: .seconds(3),
                                                                                               retry: .milliseconds(500)),
                                           tracker: tracker, healthAddress: ("127.0.0.1", 0))
            try await eventually(10, "a finished reconcile") { tracker.finished("default/observed") >= 1 }
            try await eventually(5, "the servers") { replica.manager.metricsPort != nil }
            let base = "http://127.0.0.1:\(replica.manager.metricsPort!)"
            try await Task.sleep(for: .milliseconds(100))

            let (metricsStatus, body) = try await Self.get("\(base)/metrics")
            XCTAssertEqual(metricsStatus, 200)
            let metrics = try PrometheusText.parse(body)
            XCTAssertEqual(metrics.types["controller_runtime_reconcile_total"], "counter")
            XCTAssertGreaterThanOrEqual(metrics.value("controller_runtime_reconcile_total", ["controller": "configmaps", "result": "success"]) ?? 0, 1)
            XCTAssertNotNil(metrics.value("controller_runtime_reconcile_errors_total", ["controller": "configmaps"]))
            XCTAssertEqual(metrics.types["controller_runtime_reconcile_time_seconds"], "histogram")
            XCTAssertGreaterThanOrEqual(metrics.value("controller_runtime_reconcile_time_seconds_count", ["controller": "configmaps"]) ?? 0, 1)
            XCTAssertNotNil(metrics.value("workqueue_depth", ["name": "configmaps"]))
            XCTAssertGreaterThanOrEqual(metrics.value("workqueue_adds_total", ["name": "configmaps"]) ?? 0, 1)
            XCTAssertNotNil(metrics.value("workqueue_retries_total", ["name": "configmaps"]))
            XCTAssertEqual(metrics.types["workqueue_queue_duration_seconds"], "histogram")
            XCTAssertEqual(metrics.value("leader_election_master_status", ["name": "test-operator"]), 1)
            XCTAssertTrue(body.contains("rest_client_requests_total{code=\"200\""), "the client's requests by status code:\n\(body)")
            XCTAssertEqual(metrics.value("agentgate_build_info", ["version": "unknown"]), 1)
            XCTAssertGreaterThan(metrics.value("process_resident_memory_bytes") ?? 0, 1_000_000)
            XCTAssertGreaterThan(metrics.value("process_open_fds") ?? 0, 0)
            XCTAssertGreaterThan(metrics.value("process_start_time_seconds") ?? 0, 1_700_000_000)

            let (health, _) = try await Self.get("\(base)/healthz")
            XCTAssertEqual(health, 200)
            let (ready, _) = try await Self.get("\(base)/readyz")
            XCTAssertEqual(ready, 200)
            replica.manager.shutDown()
            try await replica.task.value
        }
    }

    func testReadyzFailsNamingTheInformerThatCannotSync() async throws {
        try await withCluster { fixture in
            // A ServiceAccount with no RBAC: its list of ConfigMaps is forbidden, so the cache never syncs.
            let admin = try fixture.client()
            _ = try await admin.create(ServiceAccount(metadata: ObjectMeta(name: "nobody", namespace: "default")))
            let token = try await admin.createToken(namespace: "default", serviceAccount: "nobody").token
            let client = try fixture.client(token: token)
            let manager = try Manager(client: client, options: Manager.Options(healthAddress: ("127.0.0.1", 0)))
            manager.add(Informer<ConfigMap>(client: client, namespace: "default"))
            let task = Task { try await manager.run() }
            try await eventually(5, "the health server") { manager.healthPort != nil }
            let base = "http://127.0.0.1:\(manager.healthPort!)"
            try await Task.sleep(for: .milliseconds(500))
            let (health, _) = try await Self.get("\(base)/healthz")
            XCTAssertEqual(health, 200, "liveness does not depend on the caches")
            let (ready, body) = try await Self.get("\(base)/readyz")
            XCTAssertEqual(ready, 500)
            XCTAssertTrue(body.contains("configmaps not synced"), body)
            manager.shutDown()
            try await task.value
        }
    }

    static func get(_ url: String) async throws -> (Int, String) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 8 << 20)
        return (Int(response.status.code), String(buffer: body))
    }
}
