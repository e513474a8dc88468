import AgentGateAPI
import Foundation
import Gateway
import KubeCore
import TestSupport
import XCTest

/// Ways an object's own content could get values past masking, tried with real kubectl
/// through the gateway: a field rule's value kept again in the last-applied annotation, and a
/// deeply nested field next to values that are masked by name or by a field rule.
final class GatewayMaskingBypassTests: XCTestCase {
    var harness: GatewayHarness!
    static let databaseURL = "postgres://app:Sup3r-S3cret-Pw@db.internal:5432/app"
    static let dbPassword = "hunter2-correct-horse"

    override func setUp() async throws {
        harness = try await GatewayHarness()
        harness.config.maskingRules = [NamedMaskingRule(name: "urls", spec: MaskingRuleSpec(
            fieldRules: [MaskingFieldRule(name: "connection-strings", apiGroups: [""], resources: ["configmaps"], paths: ["data.DATABASE_URL"])]))]
        harness.registry.put(harness.config, token: harness.saToken)
    }

    override func tearDown() async throws { await harness.stop() }

    func testAFieldRuleMasksTheValueInsideTheLastAppliedAnnotation() async throws {
        let token = try await harness.token()
        // Applied through the gateway, so the API server keeps the value in the annotation too.
        let applied = try harness.kubectl(["apply", "--validate=false", "-f", "-"], token: token, input: """
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: app
            data:
              DATABASE_URL: \(Self.databaseURL)
              LOG_LEVEL: info
            """)
        XCTAssertEqual(applied.status, 0, applied.output)
        let upstream = await harness.cluster.request(method: "GET", path: "/api/v1/namespaces/default/configmaps/app", body: nil)
        XCTAssertTrue(upstream.body.serializedString().contains("Sup3r-S3cret-Pw"), "the annotation upstream holds the value")

        for view in [["get", "cm", "app", "-o", "yaml"], ["get", "cm", "-o", "json"],
                     ["get", "cm", "app", "-o", "jsonpath={.metadata.annotations}"], ["apply", "view-last-applied", "configmap/app"]] {
            let result = try harness.kubectl(view, token: token)
            XCTAssertEqual(result.status, 0, "\(view): \(result.output)")
            XCTAssertFalse(result.output.contains("Sup3r-S3cret-Pw"), "kubectl \(view.joined(separator: " ")) revealed the value: \(result.output)")
        }
        let yaml = try harness.kubectl(["apply", "view-last-applied", "configmap/app"], token: token)
        XCTAssertTrue(yaml.stdout.contains("LOG_LEVEL: info"), yaml.stdout)
    }

    func testAnObjectNestedDeeperThan512LevelsDoesNotUnmaskTheOthersOfAList() async throws {
        let deep = (0..<600).reduce(JSONValue.string("bottom")) { inner, _ in ["a": inner] }
        try await harness.cluster.applyObject([
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "app", "namespace": "default"],
            "data": ["DATABASE_URL": .string(Self.databaseURL)],
        ])
        try await harness.cluster.applyObject([
            "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "web", "namespace": "default"],
            "spec": ["containers": [["name": "app", "image": "nginx", "env": [
                ["name": "DB_PASSWORD", "value": .string(Self.dbPassword)], ["name": "LOG_LEVEL", "value": "debug"]]]]],
        ])
        try await harness.cluster.applyObject([
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "deep", "namespace": "default"], "deep": deep,
        ])
        try await harness.cluster.applyObject([
            "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "deep", "namespace": "default"],
            "spec": ["containers": [["name": "app", "image": "nginx"]], "deep": deep],
        ])
        let direct = await harness.cluster.request(method: "GET", path: "/api/v1/namespaces/default/configmaps/deep", body: nil)
        XCTAssertNotNil(direct.body["deep"], "the API server kept the deep field, so the gateway is given it")

        let token = try await harness.token()
        for view in [["get", "cm", "-o", "json"], ["get", "pods", "-o", "json"], ["get", "cm,pods", "-o", "yaml"]] {
            let result = try harness.kubectl(view, token: token)
            XCTAssertEqual(result.status, 0, "\(view): \(result.output)")
            XCTAssertFalse(result.output.contains("Sup3r-S3cret-Pw"), "kubectl \(view.joined(separator: " ")) revealed a field rule's value")
            XCTAssertFalse(result.output.contains(Self.dbPassword), "kubectl \(view.joined(separator: " ")) revealed an env value")
        }
        let pods = try harness.kubectl(["get", "pods", "-o", "json"], token: token)
        XCTAssertTrue(pods.stdout.contains("\"debug\""), "masked by rule, not withheld")
    }
}
