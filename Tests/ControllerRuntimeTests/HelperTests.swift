import ControllerRuntime
import Foundation
import KubeClient
import KubeCore
import TestSupport
import XCTest

/// Finalizer, Events and kstatus helpers against the embedded API server.
final class HelperTests: XCTestCase {
    static let finalizer = "agentgate.io/test-cleanup"

    func testFinalizerIsAddedAndCleanupRunsBeforeTheObjectGoes() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "guarded", namespace: "default")))
            let cleanups = LockedValue(0)
            func reconcile() async throws -> ReconcileResult {
                let object = try await client.get(ConfigMap.self, name: "guarded", namespace: "default")
                return try await Finalizer.reconcile(object, finalizer: Self.finalizer, client: client,
                                                     apply: { _ in .done },
                                                     cleanup: { _ in cleanups.mutate { $0 += 1 }; return .done })
            }
            _ = try await reconcile()
            let withFinalizer = try await client.get(ConfigMap.self, name: "guarded", namespace: "default")
            XCTAssertEqual(withFinalizer.metadata.finalizers, [Self.finalizer])

            try await client.delete(ConfigMap.self, name: "guarded", namespace: "default")
            let terminating = try await client.get(ConfigMap.self, name: "guarded", namespace: "default")
            XCTAssertNotNil(terminating.metadata.deletionTimestamp, "the finalizer keeps the object while it is cleaned up")
            XCTAssertEqual(cleanups.get(), 0)

            _ = try await reconcile()
            XCTAssertEqual(cleanups.get(), 1)
            let gone = await notFoundProblem { try await client.get(ConfigMap.self, name: "guarded", namespace: "default") }
            XCTAssertNil(gone)
        }
    }

    func testFailedCleanupKeepsTheFinalizerSoNothingLeaks() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            var object = ConfigMap(metadata: ObjectMeta(name: "stuck", namespace: "default"))
            object.metadata.finalizers = [Self.finalizer]
            _ = try await client.create(object)
            try await client.delete(ConfigMap.self, name: "stuck", namespace: "default")
            let terminating = try await client.get(ConfigMap.self, name: "stuck", namespace: "default")
            do {
                _ = try await Finalizer.reconcile(terminating, finalizer: Self.finalizer, client: client, apply: { _ in .done },
                                                  cleanup: { _ in throw KubeError.transport("credential store unreachable") })
                XCTFail("cleanup failure must propagate")
            } catch {}
            let still = try await client.get(ConfigMap.self, name: "stuck", namespace: "default")
            XCTAssertEqual(still.metadata.finalizers, [Self.finalizer])
        }
    }

    func testFinalizerPatchFromAStaleReadIsRefused() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            let stale = try await client.create(ConfigMap(metadata: ObjectMeta(name: "raced", namespace: "default")))
            // Someone else adds their finalizer after our read.
            _ = try await client.mergePatch(.configMaps, name: "raced", namespace: "default",
                                            ["metadata": ["finalizers": ["other.io/keep"]]])
            do {
                _ = try await Finalizer.add(Self.finalizer, to: stale, client: client)
                XCTFail("a guarded patch based on a stale read must fail")
            } catch let error as KubeError {
                XCTAssertTrue([409, 422].contains(error.code ?? 0), "\(error)")
            }
            let current = try await client.get(ConfigMap.self, name: "raced", namespace: "default")
            XCTAssertEqual(current.metadata.finalizers, ["other.io/keep"], "the other controller's finalizer survives")
            // With a fresh read it works and keeps theirs.
            _ = try await Finalizer.add(Self.finalizer, to: current, client: client)
            let after = try await client.get(ConfigMap.self, name: "raced", namespace: "default")
            XCTAssertEqual(after.metadata.finalizers, ["other.io/keep", Self.finalizer])
        }
    }

    func testRepeatedEventsFoldIntoOneEventWithASeries() async throws {
        // TLS: kubectl sends a bearer token only over HTTPS.
        try await withCluster(useTLS: true) { fixture in
            let client = try fixture.client()
            let object = try await client.create(ConfigMap(metadata: ObjectMeta(name: "noisy", namespace: "default")))
            let recorder = EventRecorder(configuration: .init(controller: "agentgate.io/test", instance: "test-1"), client: client)
            let regarding = EventRecorder.Regarding(object)
            for _ in 0..<3 {
                await recorder.record(regarding, type: .warning, reason: "ServiceAccountNotFound", action: "Reconcile",
                                      note: "serviceaccount default/agent-sa not found")
            }
            await recorder.record(regarding, type: .normal, reason: "CredentialRotated", action: "RotateCredential", note: "token renewed")
            let events = try await client.list(.eventsV1, namespace: "default").items
            XCTAssertEqual(events.count, 2, "three identical events fold into one")
            let warning = try XCTUnwrap(events.first { $0["reason"]?.stringValue == "ServiceAccountNotFound" })
            XCTAssertEqual(warning[path: ["series", "count"]]?.intValue, 3)
            XCTAssertNotNil(warning[path: ["series", "lastObservedTime"]]?.stringValue)
            XCTAssertEqual(warning["type"]?.stringValue, "Warning")
            XCTAssertEqual(warning["reportingController"]?.stringValue, "agentgate.io/test")
            XCTAssertEqual(warning[path: ["regarding", "name"]]?.stringValue, "noisy")
            XCTAssertEqual(warning[path: ["regarding", "uid"]]?.stringValue, object.metadata.uid)
            let normal = try XCTUnwrap(events.first { $0["reason"]?.stringValue == "CredentialRotated" })
            XCTAssertNil(normal["series"], "a single occurrence has no series")
            // kubectl shows them for the object.
            let described = try ProcessRunner.run("kubectl", ["--kubeconfig", try fixture.kubeconfigFile(), "events",
                                                              "--for", "configmap/noisy", "-n", "default"])
            let core = try await client.list(.events, namespace: "default").items
            XCTAssertTrue(described.stdout.contains("ServiceAccountNotFound"), "kubectl events: \(described.output)\ncore events: \(core)")
        }
    }

    func testConditionsKeepTransitionTimeUnlessStatusFlipsAndCarryObservedGeneration() {
        var conditions: [Condition] = []
        let t0 = Date(timeIntervalSince1970: 1_700_000_000)
        XCTAssertTrue(KStatus.set(.reconciling(reason: "ServiceAccountNotFound", message: "waiting for agent-sa"),
                                  generation: 1, on: &conditions, now: t0))
        XCTAssertEqual(conditions.condition("Ready")?.status, "False")
        XCTAssertEqual(conditions.condition("Reconciling")?.status, "True")
        XCTAssertEqual(conditions.condition("Ready")?.observedGeneration, 1)
        let firstTransition = conditions.condition("Ready")?.lastTransitionTime

        // Same status, new message and generation: time kept.
        XCTAssertTrue(KStatus.set(.stalled(reason: "InvalidSpec", message: "spec.identity.issuer: must be https"),
                                  generation: 2, on: &conditions, now: t0.addingTimeInterval(60)))
        XCTAssertEqual(conditions.condition("Ready")?.lastTransitionTime, firstTransition)
        XCTAssertEqual(conditions.condition("Ready")?.observedGeneration, 2)
        XCTAssertNil(conditions.condition("Reconciling"), "Reconciling is removed when stalled")
        XCTAssertEqual(conditions.condition("Stalled")?.status, "True")

        // Flip to Ready: time changes, abnormal conditions go away.
        XCTAssertTrue(KStatus.set(.ready(reason: "Ready", message: "serving"), generation: 3, on: &conditions,
                                  now: t0.addingTimeInterval(120)))
        XCTAssertNotEqual(conditions.condition("Ready")?.lastTransitionTime, firstTransition)
        XCTAssertEqual(conditions.map(\.type), ["Ready"])
        // Nothing new: nothing changed (no status write needed).
        XCTAssertFalse(KStatus.set(.ready(reason: "Ready", message: "serving"), generation: 3, on: &conditions,
                                   now: t0.addingTimeInterval(180)))
    }
}
