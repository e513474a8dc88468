import AgentGateAPI
import Gateway
import KubeCore
import XCTest

/// Which requests `spec.approval` holds: rules by verb, group/resource, subresource,
/// namespace and name, and "scale to zero" in every body format kubectl sends.
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

    func held(_ method: String, _ path: String, query: String? = nil, body: String = "", contentType: String? = "application/json") -> String? {
        ApprovalMatcher.match(policy, info(method, path, query), body: Array(body.utf8), contentType: contentType)?.name
    }

    func testNamesRuleHoldsTheCreateOfThatNameFromItsBody() {
        let named = ApprovalPolicy(rules: [ApprovalRule(name: "guarded", verbs: [.create, .patch], resources: ["configmaps"], names: ["guarded"])],
                                   approverGroups: ["sre"])
        func held(_ method: String, _ path: String, _ body: String, _ type: String) -> String? {
            ApprovalMatcher.match(named, info(method, path), body: Array(body.utf8), contentType: type)?.name
        }
        XCTAssertEqual(held("POST", "/api/v1/namespaces/demo/configmaps", #"{"metadata":{"name":"guarded"}}"#, "application/json"), "guarded")
        XCTAssertEqual(held("POST", "/api/v1/namespaces/demo/configmaps", "metadata:\n  name: guarded\n", "application/yaml"), "guarded")
        XCTAssertNil(held("POST", "/api/v1/namespaces/demo/configmaps", #"{"metadata":{"name":"other"}}"#, "application/json"))
        XCTAssertNil(held("POST", "/api/v1/namespaces/demo/configmaps", #"{"metadata":{"generateName":"guarded"}}"#, "application/json"))
        XCTAssertEqual(held("PATCH", "/api/v1/namespaces/demo/configmaps/guarded", "{}", "application/merge-patch+json"), "guarded")
    }

    func testDeletesExecAndNamedObjectsAreHeldByTheirRule() {
        XCTAssertEqual(held("DELETE", "/apis/apps/v1/namespaces/demo/deployments/web"), "deletes")
        XCTAssertEqual(held("DELETE", "/api/v1/namespaces/demo"), "deletes", "kubectl delete ns")
        XCTAssertEqual(held("DELETE", "/api/v1/namespaces/demo/pods"), "deletes", "kubectl delete --all is a deletecollection")
        XCTAssertEqual(held("POST", "/api/v1/namespaces/demo/pods/web/exec", query: "command=sh&stdin=true"), "exec-and-attach")
        XCTAssertEqual(held("GET", "/api/v1/namespaces/demo/pods/web/attach"), "exec-and-attach", "WebSocket exec/attach arrive as GET")
        XCTAssertNil(held("GET", "/api/v1/namespaces/demo/pods/web/log"), "logs are not exec")
        XCTAssertNil(held("GET", "/api/v1/namespaces/demo/pods/web"))
        XCTAssertNil(held("POST", "/api/v1/namespaces/demo/configmaps", body: "{}"))
        XCTAssertEqual(held("PATCH", "/api/v1/namespaces/prod/configmaps/app-config", body: #"{"data":{"a":"b"}}"#,
                            contentType: "application/merge-patch+json"), "prod-configmaps")
        XCTAssertNil(held("PATCH", "/api/v1/namespaces/prod/configmaps/other", body: "{}", contentType: "application/merge-patch+json"))
        XCTAssertNil(held("PATCH", "/api/v1/namespaces/dev/configmaps/app-config", body: "{}", contentType: "application/merge-patch+json"))
        XCTAssertNil(held("GET", "/api"), "discovery is never held")
    }

    func testScaleToZeroIsRecognisedInEveryBodyFormat() {
        let deployment = "/apis/apps/v1/namespaces/demo/deployments/web"
        XCTAssertEqual(held("PATCH", "\(deployment)/scale", body: #"{"spec":{"replicas":0}}"#,
                            contentType: "application/merge-patch+json"), "scale-to-zero", "kubectl scale --replicas=0")
        XCTAssertEqual(held("PUT", "\(deployment)/scale",
                            body: #"{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"web"},"spec":{"replicas":0}}"#),
                       "scale-to-zero")
        XCTAssertEqual(held("PATCH", deployment, body: #"{"spec":{"replicas":0}}"#, contentType: "application/strategic-merge-patch+json"),
                       "scale-to-zero")
        XCTAssertEqual(held("PATCH", deployment, body: #"[{"op":"replace","path":"/spec/replicas","value":0}]"#,
                            contentType: "application/json-patch+json"), "scale-to-zero")
        XCTAssertEqual(held("PATCH", deployment, body: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 0\n",
                            contentType: "application/apply-patch+yaml"), "scale-to-zero", "kubectl apply --server-side")
        XCTAssertEqual(held("PUT", deployment, body: #"{"kind":"Deployment","spec":{"replicas":0,"template":{}}}"#), "scale-to-zero")
        XCTAssertEqual(held("PATCH", "/apis/apps/v1/namespaces/demo/statefulsets/db/scale", body: #"{"spec":{"replicas":0}}"#,
                            contentType: "application/merge-patch+json"), "scale-to-zero")
        // Not to zero, not a workload, or not a write: not held.
        XCTAssertNil(held("PATCH", "\(deployment)/scale", body: #"{"spec":{"replicas":1}}"#, contentType: "application/merge-patch+json"))
        XCTAssertNil(held("PATCH", deployment, body: #"{"metadata":{"labels":{"replicas":"0"}}}"#, contentType: "application/merge-patch+json"))
        XCTAssertNil(held("PATCH", "/api/v1/namespaces/demo/configmaps/c", body: #"{"spec":{"replicas":0}}"#, contentType: "application/merge-patch+json"))
        XCTAssertNil(held("GET", "\(deployment)/scale"))
        XCTAssertNil(held("PATCH", deployment, body: "not json", contentType: "application/merge-patch+json"), "an unreadable body is not a scale")
    }

    func testNoPolicyOrNoRulesHoldsNothing() {
        let delete = info("DELETE", "/api/v1/namespaces/demo/pods/web")
        XCTAssertNil(ApprovalMatcher.match(nil, delete, body: [], contentType: nil))
        XCTAssertNil(ApprovalMatcher.match(ApprovalPolicy(rules: []), delete, body: [], contentType: nil))
    }
}
