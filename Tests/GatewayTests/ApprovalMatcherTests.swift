import AgentGateAPI
import Gateway
import KubeCore
import XCTest

/// Which requests `spec.approval` holds: rules by verb, group/resource, subresource,
/// namespace and name; "scale to zero" and names in a create's body decided on the object the
/// dry run says would result; subresources that amount to a delete or an exec.
final class ApprovalMatcherTests: XCTestCase {
    let resolver = RequestInfoResolver()

    func info(_ method: String, _ path: String, _ query: String? = nil) -> RequestInfo {
        resolver.resolve(method: method, path: path, rawQuery: query)
    }

    /// The rules of samples/scenario/04-agentconnection.yaml.
    let policy = ApprovalPolicy(rules: [
        ApprovalRule(name: "deletes", verbs: [.delete, .deletecollection]),
        ApprovalRule(name: "exec-and-attach", verbs: [.create, .get], resources: ["pods"], subresources: ["exec", "attach"]),
        ApprovalRule(name: "scale-to-zero", apiGroups: ["apps"], resources: ["deployments", "statefulsets"], scaleToZero: true),
        ApprovalRule(name: "prod-configmaps", verbs: [.update, .patch], resources: ["configmaps"], namespaces: ["prod"], names: ["app-config"]),
    ], approverGroups: ["sre"])

    func decision(_ method: String, _ path: String, query: String? = nil,
                  dryRun: ApprovalMatcher.DryRunResult? = nil) -> ApprovalMatcher.Decision {
        ApprovalMatcher.match(policy, info(method, path, query), dryRun: dryRun)
    }

    func held(_ method: String, _ path: String, query: String? = nil, dryRun: ApprovalMatcher.DryRunResult? = nil) -> String? {
        guard case .held(let rule) = decision(method, path, query: query, dryRun: dryRun) else { return nil }
        return rule.name
    }

    func testANamesRuleDecidesACreateOnTheNameTheDryRunReports() {
        let named = ApprovalPolicy(rules: [ApprovalRule(name: "guarded", verbs: [.create, .patch], resources: ["configmaps"], names: ["guarded"])],
                                   approverGroups: ["sre"])
        let create = info("POST", "/api/v1/namespaces/demo/configmaps")
        XCTAssertEqual(ApprovalMatcher.match(named, create), .needsDryRun, "a create's name is in its body: the dry run tells it")
        XCTAssertEqual(ApprovalMatcher.match(named, create, dryRun: .object(["metadata": ["name": "guarded"]])), .held(named.rules![0]))
        XCTAssertEqual(ApprovalMatcher.match(named, create, dryRun: .object(["metadata": ["name": "other"]])), ApprovalMatcher.Decision.none)
        XCTAssertEqual(ApprovalMatcher.match(named, create, dryRun: .refused), ApprovalMatcher.Decision.none,
                       "a create the API server refuses creates nothing")
        XCTAssertEqual(ApprovalMatcher.match(named, create, dryRun: .unknown), .held(named.rules![0]),
                       "a create whose name cannot be learned is held")
        XCTAssertEqual(ApprovalMatcher.match(named, info("PATCH", "/api/v1/namespaces/demo/configmaps/guarded")), .held(named.rules![0]))
        XCTAssertEqual(ApprovalMatcher.match(named, info("PATCH", "/api/v1/namespaces/demo/configmaps/\u{212A}guarded")),
                       ApprovalMatcher.Decision.none, "names compare by bytes")
    }

    func testDeletesExecAndNamedObjectsAreHeldByTheirRule() {
        XCTAssertEqual(held("DELETE", "/apis/apps/v1/namespaces/demo/deployments/web"), "deletes")
        XCTAssertEqual(held("DELETE", "/api/v1/namespaces/demo"), "deletes", "kubectl delete ns")
        XCTAssertEqual(held("DELETE", "/api/v1/namespaces/demo/pods"), "deletes", "kubectl delete --all is a deletecollection")
        XCTAssertEqual(held("POST", "/api/v1/namespaces/demo/pods/web/exec", query: "command=sh&stdin=true"), "exec-and-attach")
        XCTAssertEqual(held("GET", "/api/v1/namespaces/demo/pods/web/attach"), "exec-and-attach", "WebSocket exec/attach arrive as GET")
        XCTAssertNil(held("GET", "/api/v1/namespaces/demo/pods/web/log"), "logs are not exec")
        XCTAssertNil(held("GET", "/api/v1/namespaces/demo/pods/web"))
        XCTAssertNil(held("POST", "/api/v1/namespaces/demo/configmaps"))
        XCTAssertEqual(held("PATCH", "/api/v1/namespaces/prod/configmaps/app-config"), "prod-configmaps")
        XCTAssertNil(held("PATCH", "/api/v1/namespaces/prod/configmaps/other"))
        XCTAssertNil(held("PATCH", "/api/v1/namespaces/dev/configmaps/app-config"))
        XCTAssertNil(held("GET", "/api"), "discovery is never held")
    }

    func testAnEvictionIsHeldAsADeleteAndAnEphemeralContainerAsAnExec() {
        XCTAssertEqual(held("POST", "/api/v1/namespaces/demo/pods/web/eviction"), "deletes", "an eviction deletes the pod")
        XCTAssertEqual(held("PATCH", "/api/v1/namespaces/demo/pods/web/ephemeralcontainers"), "exec-and-attach",
                       "kubectl debug adds a container that runs a command in the pod")
        XCTAssertEqual(held("PUT", "/api/v1/namespaces/demo/pods/web/ephemeralcontainers"), "exec-and-attach")
        XCTAssertNil(held("GET", "/api/v1/namespaces/demo/pods/web/ephemeralcontainers"), "reading them runs nothing")
        let evictionsOnly = ApprovalPolicy(rules: [ApprovalRule(name: "evictions", verbs: [.create], resources: ["pods/eviction"])])
        XCTAssertEqual(ApprovalMatcher.match(evictionsOnly, info("POST", "/api/v1/namespaces/demo/pods/web/eviction")),
                       .held(evictionsOnly.rules![0]), "a rule may still name the subresource itself")
    }

    func testScaleToZeroIsDecidedOnTheObjectTheDryRunReports() {
        let deployment = "/apis/apps/v1/namespaces/demo/deployments/web"
        for (method, path) in [("PATCH", "\(deployment)/scale"), ("PUT", "\(deployment)/scale"), ("PATCH", deployment), ("PUT", deployment),
                               ("PATCH", "/apis/apps/v1/namespaces/demo/statefulsets/db/scale")] {
            XCTAssertEqual(decision(method, path), .needsDryRun, "\(method) \(path) may scale to zero whatever its body says")
            XCTAssertEqual(held(method, path, dryRun: .object(["spec": ["replicas": 0]])), "scale-to-zero", "\(method) \(path)")
            XCTAssertNil(held(method, path, dryRun: .object(["spec": ["replicas": 1]])), "\(method) \(path) to one replica")
            XCTAssertNil(held(method, path, dryRun: .refused), "\(method) \(path) that the API server refuses")
            XCTAssertEqual(held(method, path, dryRun: .unknown), "scale-to-zero", "\(method) \(path) whose outcome is unknown is held")
        }
        // Not a workload, or not a write: no dry run, not held.
        XCTAssertEqual(decision("PATCH", "/api/v1/namespaces/demo/configmaps/c"), ApprovalMatcher.Decision.none)
        XCTAssertEqual(decision("GET", "\(deployment)/scale"), ApprovalMatcher.Decision.none)
        XCTAssertEqual(decision("POST", "/apis/apps/v1/namespaces/demo/deployments"), ApprovalMatcher.Decision.none,
                       "a create is not a scale-down")
    }

    func testNoPolicyOrNoRulesHoldsNothing() {
        let delete = info("DELETE", "/api/v1/namespaces/demo/pods/web")
        XCTAssertEqual(ApprovalMatcher.match(nil, delete), ApprovalMatcher.Decision.none)
        XCTAssertEqual(ApprovalMatcher.match(ApprovalPolicy(rules: []), delete), ApprovalMatcher.Decision.none)
    }
}
