import Foundation
import KubeCore
import TestSupport
import XCTest
@testable import LocalCluster

/// Times compare as instants and are stored in kube-apiserver's canonical form; objects carry
/// only the metadata a real server sets (no `generation` on ConfigMaps, no empty `generateName`).
final class TimeAndOmittedFieldsTests: XCTestCase {
    var tc: TestCluster!
    override func setUp() async throws { tc = try await TestCluster() }
    override func tearDown() async throws { await tc.stop() }

    func testUpdateWithCreationTimestampInAnotherSpellingKeepsTheStoredOne() async throws {
        let path = "/api/v1/namespaces/default/configmaps"
        let created = await tc.send("POST", path, json: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "c"],
                                                         "data": ["when": "2026-12-07T15:42:32+00:00"]])
        XCTAssertEqual(created.status, 201, created.message)
        let stored = try XCTUnwrap(created.body[path: ["metadata", "creationTimestamp"]]?.stringValue)
        var update = created.body
        let offset = KubeTime.format(KubeTime.parse(stored)!).replacingOccurrences(of: "Z", with: "+00:00")
        update.set(.string(offset), at: ["metadata", "creationTimestamp"])
        let replaced = await tc.send("PUT", "\(path)/c", json: update)
        XCTAssertEqual(replaced.status, 200, replaced.message)
        XCTAssertEqual(replaced.body[path: ["metadata", "creationTimestamp"]]?.stringValue, stored)
        XCTAssertEqual(replaced.body[path: ["metadata", "resourceVersion"]], created.body[path: ["metadata", "resourceVersion"]],
                       "the same instant spelled differently is no change")
        XCTAssertEqual(replaced.body[path: ["data", "when"]], "2026-12-07T15:42:32+00:00", "user data is never reinterpreted")

        // kube-apiserver ignores a different creationTimestamp on update rather than refusing it.
        update.set("2001-01-01T00:00:00Z", at: ["metadata", "creationTimestamp"])
        let moved = await tc.send("PUT", "\(path)/c", json: update)
        XCTAssertEqual(moved.status, 200, moved.message)
        XCTAssertEqual(moved.body[path: ["metadata", "creationTimestamp"]]?.stringValue, stored)
    }

    func testBuiltinTimeFieldsAreStoredInUTCWithSecondsAndMicroseconds() async throws {
        let lease = await tc.send("POST", "/apis/coordination.k8s.io/v1/namespaces/default/leases", json: [
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": ["name": "l"],
            "spec": ["holderIdentity": "a", "renewTime": "2026-12-07T17:42:32.5+02:00"],
        ])
        XCTAssertEqual(lease.status, 201, lease.message)
        XCTAssertEqual(lease.body[path: ["spec", "renewTime"]], "2026-12-07T15:42:32.500000Z")
        let namespace = await tc.send("POST", "/api/v1/namespaces", json: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "t"]])
        var status = namespace.body
        status.set([["type": "NamespaceDeletionContentFailure", "status": "False", "lastTransitionTime": "2026-12-07T15:42:32.9+00:00"]],
                   at: ["status", "conditions"])
        let written = await tc.send("PUT", "/api/v1/namespaces/t/status", json: status)
        XCTAssertEqual(written.status, 200, written.message)
        XCTAssertEqual(written.body[path: ["status", "conditions"]]?.arrayValue?.first?["lastTransitionTime"], "2026-12-07T15:42:32Z")
    }

    func testKubectlCreatedConfigMapHasNoGenerationNorGenerateName() async throws {
        let tls = try await TestCluster(useTLS: true)
        defer { Task { await tls.stop() } }
        let kubeconfig = try tls.adminKubeconfig()
        let created = try ProcessRunner.run("kubectl", ["--kubeconfig", kubeconfig, "create", "configmap", "c", "--from-literal=a=b"], timeout: 60)
        XCTAssertEqual(created.status, 0, created.output)
        let read = await tls.send("GET", "/api/v1/namespaces/default/configmaps/c")
        let metadata = try XCTUnwrap(read.body["metadata"])
        XCTAssertNil(metadata["generation"], "\(metadata)")
        XCTAssertNil(metadata["generateName"], "\(metadata)")
        let fields = metadata["managedFields"]?.serializedString() ?? ""
        XCTAssertFalse(fields.contains("generateName"), fields)
        XCTAssertTrue(fields.contains("f:a"), fields)
    }

    func testNamespaceIsActiveThenTerminatingWhileItsContentIsFinalized() async throws {
        _ = await tc.send("POST", "/api/v1/namespaces", json: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "n"]])
        let active = await tc.send("GET", "/api/v1/namespaces/n")
        XCTAssertEqual(active.body[path: ["status", "phase"]], "Active")
        XCTAssertEqual(active.body[path: ["spec", "finalizers"]], ["kubernetes"])
        XCTAssertEqual(active.body[path: ["metadata", "labels", "kubernetes.io/metadata.name"]], "n")
        XCTAssertNil(active.body[path: ["metadata", "generation"]])
        _ = await tc.send("POST", "/api/v1/namespaces/n/configmaps", json: [
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "held", "finalizers": ["example.com/hold"]]])
        let deleted = await tc.send("DELETE", "/api/v1/namespaces/n")
        XCTAssertEqual(deleted.status, 200, deleted.message)
        let terminating = await tc.send("GET", "/api/v1/namespaces/n")
        XCTAssertEqual(terminating.body[path: ["status", "phase"]], "Terminating")
        XCTAssertNil(terminating.body[path: ["metadata", "finalizers"]], "the namespace's own finalizer is spec.finalizers")
        let patched = await tc.send("PATCH", "/api/v1/namespaces/n/configmaps/held", json: ["metadata": ["finalizers": nil]],
                                    contentType: "application/merge-patch+json")
        XCTAssertEqual(patched.status, 200, patched.message)
        let tc = self.tc!
        try await eventually(10, "namespace n is gone") { await tc.send("GET", "/api/v1/namespaces/n").status == 404 }
    }
}
