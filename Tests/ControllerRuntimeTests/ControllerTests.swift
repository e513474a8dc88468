import AgentGateAPI
import ControllerRuntime
import Foundation
import KubeClient
import KubeCore
import Prometheus
import TestSupport
import XCTest

/// Controllers, informers and the work queue against the embedded API server.
final class ControllerTests: XCTestCase {
    /// Runs `controllers` fed by `informers` until `body` returns.
    func running(_ manager: Manager, _ body: () async throws -> Void) async throws {
        let task = Task { try await manager.run() }
        do {
            try await eventually(10, "caches to sync") { manager.cachesSynced }
            try await body()
        } catch {
            manager.shutDown()
            _ = try? await task.value
            throw error
        }
        manager.shutDown()
        try await task.value
    }

    func testBurstOfThousandUpdatesToOneObjectGivesAHandfulOfReconciles() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "burst", namespace: "default"), data: ["n": "0"]))
            let manager = try Manager(client: client)
            let informer = Informer<ConfigMap>(client: client, namespace: "default")
            let tracker = ConcurrencyTracker()
            let lastSeen = LockedValue<String?>(nil)
            let controller = Controller(name: "burst", reconciler: ReconcilerFunction { request in
                tracker.begin(request.description)
                defer { tracker.end(request.description) }
                lastSeen.set(informer.cache.get(request)?.data?["n"])
                try await Task.sleep(for: .milliseconds(200))
                return .done
            }, workers: 4, registry: manager.registry)
            informer.addHandler(EventHandler.enqueueObject(controller))
            manager.add(informer)
            manager.add(controller)
            try await running(manager) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for writer in 0..<8 {
                        group.addTask {
                            for step in 0..<125 {
                                let n = writer * 125 + step + 1
                                _ = try await client.mergePatch(.configMaps, name: "burst", namespace: "default",
                                                                ["data": ["w\(writer)": .string("\(n)")]])
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                _ = try await client.mergePatch(.configMaps, name: "burst", namespace: "default", ["data": ["n": "final"]])
                try await eventually(10, "the last update to be reconciled") { lastSeen.get() == "final" }
                try await Task.sleep(for: .milliseconds(300))
            }
            let reconciles = tracker.count("default/burst")
            print("1,001 updates to one object → \(reconciles) reconciles")
            XCTAssertLessThanOrEqual(reconciles, 60, "1,001 updates should collapse into a handful of reconciles")
            XCTAssertEqual(tracker.maxOverlap, 1, "one object was reconciled by two workers at once")
        }
    }

    func testFailingReconcileIsRetriedWithExponentialBackoff() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            let registry = PrometheusCollectorRegistry()
            let tracker = ConcurrencyTracker()
            let controller = Controller(name: "failing", reconciler: ReconcilerFunction { request in
                tracker.begin(request.description)
                tracker.end(request.description)
                throw KubeError.transport("upstream not ready")
            }, backoff: ExponentialBackoff(base: .milliseconds(20)), registry: registry)
            let run = Task { await controller.run() }
            controller.enqueue(ReconcileRequest(namespace: "default", name: "x"))
            try await eventually(15, "seven attempts") { tracker.count("default/x") >= 7 }
            controller.shutDown()
            await run.value
            _ = client

            let times = tracker.times("default/x")
            let gaps = zip(times.dropFirst(), times).map { ($0 - $1) }
            // Attempt n+1 waits 20 ms × 2^n: 20, 40, 80, 160, 320, 640 ms.
            for (index, gap) in gaps.prefix(6).enumerated() {
                let expected = Duration.milliseconds(20 * (1 << index))
                XCTAssertGreaterThanOrEqual(gap, expected * 0.9, "retry \(index + 1) came after \(gap), expected ≥ \(expected)")
            }
            XCTAssertGreaterThan(gaps[5], gaps[2] * 4, "delays must grow exponentially: \(gaps)")
            let text = registry.emitToString()
            let metrics = try PrometheusText.parse(text)
            XCTAssertGreaterThanOrEqual(metrics.value("controller_runtime_reconcile_errors_total", ["controller": "failing"]) ?? 0, 7)
            XCTAssertGreaterThanOrEqual(metrics.value("workqueue_retries_total", ["controller": "failing", "name": "failing"]) ?? 0, 7)
        }
    }

    func testTerminalErrorIsNotRetriedAndSuccessResetsBackoff() async throws {
        let registry = PrometheusCollectorRegistry()
        let tracker = ConcurrencyTracker()
        let controller = Controller(name: "terminal", reconciler: ReconcilerFunction { request in
            tracker.begin(request.name)
            tracker.end(request.name)
            if request.name == "bad" { throw TerminalError("spec.pattern does not compile") }
            if tracker.count(request.name) < 3 { throw KubeError.transport("flaky") }
            return .done
        }, backoff: ExponentialBackoff(base: .milliseconds(5)), registry: registry)
        let run = Task { await controller.run() }
        controller.enqueue(ReconcileRequest(namespace: "ns", name: "bad"))
        controller.enqueue(ReconcileRequest(namespace: "ns", name: "flaky"))
        try await eventually(5, "flaky to succeed") { tracker.count("flaky") == 3 }
        try await Task.sleep(for: .milliseconds(300))
        controller.shutDown()
        await run.value
        XCTAssertEqual(tracker.count("bad"), 1, "a terminal error must not be retried")
        XCTAssertEqual(tracker.count("flaky"), 3, "success stops the retries")
        XCTAssertEqual(controller.queue.numRequeues(ReconcileRequest(namespace: "ns", name: "flaky")), 0, "success forgets the backoff")
        let metrics = try PrometheusText.parse(registry.emitToString())
        XCTAssertEqual(metrics.value("controller_runtime_terminal_reconcile_errors_total", ["controller": "terminal"]), 1)
        XCTAssertEqual(metrics.value("controller_runtime_reconcile_total", ["controller": "terminal", "result": "success"]), 1)
        XCTAssertEqual(metrics.value("controller_runtime_reconcile_total", ["controller": "terminal", "result": "error"]), 3)
    }

    func testRequeueAfterRunsTheKeyAgainAfterTheDelay() async throws {
        let tracker = ConcurrencyTracker()
        let controller = Controller(name: "timer", reconciler: ReconcilerFunction { request in
            tracker.begin(request.name)
            tracker.end(request.name)
            return tracker.count(request.name) < 2 ? .requeueAfter(.milliseconds(300)) : .done
        }, registry: PrometheusCollectorRegistry())
        let run = Task { await controller.run() }
        controller.enqueue(ReconcileRequest(namespace: "ns", name: "rotate"))
        try await eventually(5, "the second run") { tracker.count("rotate") == 2 }
        let times = tracker.times("rotate")
        XCTAssertGreaterThanOrEqual(times[1] - times[0], .milliseconds(290))
        try await Task.sleep(for: .milliseconds(400))
        XCTAssertEqual(tracker.count("rotate"), 2, ".done must not requeue")
        controller.shutDown()
        await run.value
    }

    func testInformerCacheIsIndexedByNamespaceAndLabelsAndSignalsSynced() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            _ = try await client.create(Namespace(name: "team-a"))
            for (name, namespace, tier) in [("one", "default", "web"), ("two", "default", "db"), ("three", "team-a", "web")] {
                _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: name, namespace: namespace, labels: ["tier": tier])))
            }
            let informer = Informer<ConfigMap>(client: client)
            XCTAssertFalse(informer.hasSynced)
            let run = Task { await informer.run() }
            defer { run.cancel() }
            try await withTimeout(10, "sync") { await informer.waitForSync() }
            XCTAssertTrue(informer.hasSynced)
            let web = try Labels.Selector(parsing: "tier=web")
            XCTAssertEqual(informer.cache.list(selector: web).map { $0.metadata.name }, ["one", "three"])
            XCTAssertEqual(informer.cache.list(namespace: "default", selector: web).map { $0.metadata.name }, ["one"])
            XCTAssertEqual(informer.cache.list(namespace: "team-a").map { $0.metadata.name }, ["three"])
            // A label change moves the object between index entries.
            _ = try await client.mergePatch(.configMaps, name: "two", namespace: "default", ["metadata": ["labels": ["tier": "web"]]])
            try await eventually(5, "the relabel to reach the cache") {
                informer.cache.list(namespace: "default", selector: web).count == 2
            }
            let db = try Labels.Selector(parsing: "tier=db")
            XCTAssertTrue(informer.cache.list(selector: db).isEmpty)
        }
    }

    func testMaskingRuleChangeRequeuesTheConnectionsThatSelectIt() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            var selecting = ClusterFixture.connection("selects-pci")
            selecting.spec.maskingRuleSelector = LabelSelector(matchLabels: ["data": "pci"])
            var other = ClusterFixture.connection("selects-nothing")
            other.spec.maskingRuleSelector = LabelSelector(matchLabels: ["data": "none"])
            _ = try await client.create(selecting)
            _ = try await client.create(other)

            let manager = try Manager(client: client)
            let connections = Informer<AgentConnection>(client: client)
            let rules = Informer<MaskingRule>(client: client)
            let reconciled = LockedValue<[String]>([])
            let controller = Controller(name: "agentconnection", reconciler: ReconcilerFunction { request in
                reconciled.mutate { $0.append(request.name) }
                return .done
            }, registry: manager.registry)
            connections.addHandler(EventHandler.enqueueObject(controller))
            rules.addHandler(EventHandler.enqueueMapped(controller) { (rule: MaskingRule) in
                let labels = rule.metadata.labels ?? [:]
                return connections.cache.list(namespace: rule.metadata.namespace).compactMap { connection in
                    guard let selector = connection.spec.maskingRuleSelector, selector.matches(labels) else { return nil }
                    return ReconcileRequest(namespace: connection.metadata.namespace ?? "", name: connection.metadata.name ?? "")
                }
            })
            manager.add(connections)
            manager.add(rules)
            manager.add(controller)
            try await running(manager) {
                try await eventually(5, "initial reconciles") { reconciled.get().count == 2 }
                reconciled.set([])
                let rule = MaskingRule(metadata: ObjectMeta(name: "card-numbers", namespace: "default", labels: ["data": "pci"]),
                                       spec: MaskingRuleSpec(customPatterns: [CustomPattern(name: "card", regex: "[0-9]{16}")]))
                _ = try await client.create(rule)
                try await eventually(5, "the selecting connection to be requeued") { reconciled.get() == ["selects-pci"] }
                // Relabelling the rule away requeues the connection it left.
                reconciled.set([])
                _ = try await client.mergePatch(MaskingRule.resourceType, name: "card-numbers", namespace: "default",
                                                ["metadata": ["labels": ["data": "other"]]])
                try await eventually(5, "the connection the rule left to be requeued") { reconciled.get() == ["selects-pci"] }
            }
        }
    }

    func testWatchDroppedAndResumedMissesNoChange() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            let informer = Informer<ConfigMap>(client: client, namespace: "default")
            let seen = LockedValue<[String: Int]>([:])
            informer.addHandler { event in
                if case .added(let object) = event { seen.mutate { $0[object.metadata.name ?? "", default: 0] += 1 } }
            }
            let run = Task { await informer.run() }
            defer { run.cancel() }
            try await withTimeout(10, "sync") { await informer.waitForSync() }

            // 1. The server closes every watch; changes made right after must still arrive.
            fixture.cluster.apiServer.store.closeAllWatches()
            for index in 0..<20 {
                _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "after-drop-\(index)", namespace: "default")))
            }
            // 2. The server goes away and comes back (state kept); changes made after it returns arrive too.
            try await fixture.restart()
            let restartedClient = try fixture.client()
            for index in 0..<20 {
                _ = try await restartedClient.create(ConfigMap(metadata: ObjectMeta(name: "after-restart-\(index)", namespace: "default")))
            }
            try await eventually(30, "all 40 objects in the cache") {
                informer.cache.list(namespace: "default").filter { ($0.metadata.name ?? "").hasPrefix("after-") }.count == 40
            }
            let counts = seen.get().filter { $0.key.hasPrefix("after-") }
            XCTAssertEqual(counts.count, 40)
            XCTAssertTrue(counts.values.allSatisfy { $0 == 1 }, "an object was announced as new twice: \(counts.filter { $0.value != 1 })")
        }
    }
}

/// A value shared between a test and the tasks it starts.
final class LockedValue<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func get() -> Value { lock.withLock { value } }
    func set(_ newValue: Value) { lock.withLock { value = newValue } }
    func mutate(_ body: (inout Value) -> Void) { lock.withLock { body(&value) } }
}
