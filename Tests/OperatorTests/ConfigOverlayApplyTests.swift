import Foundation
import KubeCore
import TestSupport
import XCTest

/// Each kustomize overlay installs on the local cluster as a platform team installs it: real
/// kubectl, `kubectl apply --server-side -k config/<overlay>`. Every rendered object is
/// applied, a second apply by the same field manager succeeds without conflicts, and the
/// stored objects read back as the overlay wrote them. (KustomizeConfigTests checks the
/// rendered objects against Kubernetes' schemas and the README's promises.)
final class ConfigOverlayApplyTests: XCTestCase {
    func testDefaultOverlayAppliesServerSideWithTheGatewayOnAPersistentVolumeClaim() async throws {
        try await withOperatorHarness { h in
            try applyTwice("config/default", h)
            let gateway = try get(h, "deployment/agentgate-gateway")
            XCTAssertEqual(gateway[path: ["spec", "replicas"]], 1)
            XCTAssertEqual(gateway[path: ["spec", "strategy", "type"]], "Recreate")
            let claim = try get(h, "persistentvolumeclaim/agentgate-gateway-data")
            XCTAssertEqual(claim[path: ["spec", "accessModes"]], ["ReadWriteOnce"])
            let volumes = gateway[path: ["spec", "template", "spec", "volumes"]]?.arrayValue ?? []
            let data = volumes.first { $0["name"] == "data" }
            XCTAssertEqual(data?[path: ["persistentVolumeClaim", "claimName"]], "agentgate-gateway-data")
            XCTAssertEqual(try get(h, "deployment/agentgate-operator")[path: ["spec", "replicas"]], 2)
        }
    }

    func testHAOverlayAppliesServerSideWithThreeGatewaysAndDisruptionBudgets() async throws {
        try await withOperatorHarness { h in
            try applyTwice("config/ha", h)
            let gateway = try get(h, "deployment/agentgate-gateway")
            XCTAssertEqual(gateway[path: ["spec", "replicas"]], 3)
            XCTAssertEqual(gateway[path: ["spec", "template", "spec", "topologySpreadConstraints"]]?.arrayValue?.count, 2)
            XCTAssertEqual(try get(h, "deployment/agentgate-operator")[path: ["spec", "replicas"]], 2)
            for name in ["agentgate-gateway", "agentgate-operator"] {
                let budget = try get(h, "poddisruptionbudget.policy/\(name)")
                XCTAssertEqual(budget["apiVersion"], "policy/v1")
                XCTAssertEqual(budget[path: ["spec", "maxUnavailable"]], 1, name)
            }
            let claims = try h.kubectl(["get", "persistentvolumeclaims", "-n", "agentgate-system", "-o", "name"])
            XCTAssertEqual(claims.status, 0, claims.output)
            XCTAssertEqual(claims.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "", "the ha overlay keeps no claim")
        }
    }

    /// Applies the overlay twice with one field manager; both must succeed and name every
    /// rendered object.
    private func applyTwice(_ overlay: String, _ h: OperatorHarness) throws {
        let directory = OperatorHarness.repositoryRoot.appendingPathComponent(overlay).path
        let rendered = try h.kubectl(["kustomize", directory])
        XCTAssertEqual(rendered.status, 0, rendered.output)
        let objects = try JSONValue.parseYAMLDocuments(rendered.stdout)
        XCTAssertFalse(objects.isEmpty, overlay)
        for round in ["first", "second"] {
            let applied = try h.kubectl(["apply", "--server-side", "--field-manager=agentgate-install", "-k", directory])
            XCTAssertEqual(applied.status, 0, "\(overlay), \(round) apply: \(applied.output)")
            let lines = applied.stdout.split(separator: "\n").filter { $0.hasSuffix(" serverside-applied") }
            XCTAssertEqual(lines.count, objects.count, "\(overlay), \(round) apply names every object:\n\(applied.output)")
        }
    }

    private func get(_ h: OperatorHarness, _ object: String) throws -> JSONValue {
        let result = try h.kubectl(["get", object, "-n", "agentgate-system", "-o", "json"])
        XCTAssertEqual(result.status, 0, result.output)
        return try JSONValue(parsing: Array(result.stdout.utf8))
    }
}
