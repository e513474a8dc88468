import AgentGateAPI
import Foundation
import HTTPServing
import KubeCore
import NIOHTTP1
import TestSupport
import XCTest
@testable import LocalCluster

/// ValidatingAdmissionPolicy on the embedded API server, through its real handlers: what
/// matches, what a failure answers (code, reason, message and cause as kube-apiserver's
/// dispatcher shapes them), failurePolicy, matchConditions, variables, bindings, selectors,
/// Warn, and the CEL `authorizer` asking the server's RBAC.
final class ValidatingAdmissionPolicyTests: XCTestCase {
    var tc: TestCluster!

    override func setUp() async throws { tc = try await TestCluster() }
    override func tearDown() async throws { await tc.stop() }

    static let policies = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies"
    static let bindings = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings"
    static let configMaps = "/api/v1/namespaces/default/configmaps"
    static let connections = "/apis/agentgate.io/v1alpha1/namespaces/default/agentconnections"

    /// A policy on configmaps (CREATE, UPDATE) with `validations`, and a Deny binding of the same name.
    @discardableResult
    func install(_ name: String, validations: [JSONValue], resources: [JSONValue] = ["configmaps"], group: String = "",
                 extra: [String: JSONValue] = [:], binding: [String: JSONValue] = [:],
                 file: StaticString = #filePath, line: UInt = #line) async -> TestCluster.Reply {
        var spec: [String: JSONValue] = [
            "matchConstraints": ["resourceRules": [["apiGroups": .array([.string(group)]), "apiVersions": ["*"],
                                                    "operations": ["CREATE", "UPDATE"], "resources": .array(resources)]]],
            "validations": .array(validations),
        ]
        spec.merge(extra) { _, new in new }
        let policy = await tc.send("POST", Self.policies, json: [
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": ["name": .string(name)], "spec": .object(spec)])
        guard policy.status == 201 else { return policy }
        var bindingSpec: [String: JSONValue] = ["policyName": .string(name), "validationActions": ["Deny"]]
        bindingSpec.merge(binding) { _, new in new }
        let created = await tc.send("POST", Self.bindings, json: [
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": ["name": .string(name + "-binding")], "spec": .object(bindingSpec)])
        XCTAssertEqual(created.status, 201, created.message, file: file, line: line)
        return created
    }

    func configMap(_ name: String, labels: [String: JSONValue] = [:], data: [String: JSONValue] = [:]) -> JSONValue {
        ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": .string(name), "labels": .object(labels)], "data": .object(data)]
    }

    func testAFailedValidationIsAnsweredAsKubeApiserversDispatcherAnswers() async throws {
        await install("size-limit", validations: [
            ["expression": "size(object.data) <= 1", "messageExpression": "'too many keys: ' + string(size(object.data))",
             "reason": "Forbidden"],
            ["expression": "!('secret' in object.data)"],
        ])
        let forbidden = await tc.send("POST", Self.configMaps, json: configMap("big", data: ["a": "1", "b": "2"]))
        XCTAssertEqual(forbidden.status, 403)
        XCTAssertEqual(forbidden.body["reason"], "Forbidden")
        let message = "ValidatingAdmissionPolicy 'size-limit' with binding 'size-limit-binding' denied request: too many keys: 2"
        XCTAssertEqual(forbidden.message, "configmaps \"big\" is forbidden: \(message)")
        XCTAssertEqual(forbidden.body[path: ["details", "name"]], "big")
        XCTAssertEqual(forbidden.body[path: ["details", "kind"]], "configmaps")
        XCTAssertEqual(forbidden.body[path: ["details", "causes"]]?.arrayValue?.first?["message"], .string(message))

        // Without a reason: Invalid, 422; without a message: the expression.
        let invalid = await tc.send("POST", Self.configMaps, json: configMap("leaky", data: ["secret": "x"]))
        XCTAssertEqual(invalid.status, 422)
        XCTAssertEqual(invalid.body["reason"], "Invalid")
        XCTAssertTrue(invalid.message.hasSuffix("denied request: failed expression: !('secret' in object.data)"), invalid.message)
        let fine = await tc.send("POST", Self.configMaps, json: configMap("small", data: ["a": "1"]))
        XCTAssertEqual(fine.status, 201, fine.message)
        // An update is checked as well (merge patch adds a key).
        let patched = await tc.send("PATCH", Self.configMaps + "/small", json: ["data": ["b": "2"]],
                                    contentType: "application/merge-patch+json")
        XCTAssertEqual(patched.status, 403, patched.message)
    }

    func testARequestOutsideMatchConstraintsPasses() async throws {
        await install("deny-every-configmap", validations: [["expression": "false"]])
        let connection = await tc.send("POST", Self.connections, json: TestCluster.connection("unaffected"))
        XCTAssertEqual(connection.status, 201, "agentconnections are not among the policy's resources: \(connection.message)")
        let configMap = await tc.send("POST", Self.configMaps, json: configMap("refused"))
        XCTAssertEqual(configMap.status, 422, configMap.message)
        // DELETE is not among its operations.
        await install("deny-updates-only", validations: [["expression": "request.operation != 'DELETE'"]],
                      resources: ["agentconnections"], group: "agentgate.io")
        let deleted = await tc.send("DELETE", Self.connections + "/unaffected")
        XCTAssertEqual(deleted.status, 200, deleted.message)
    }

    func testFailurePolicyFailRefusesOnARuntimeErrorAndIgnoreAdmits() async throws {
        await install("strict", validations: [["expression": "object.data.required == 'yes'"]])
        let refused = await tc.send("POST", Self.configMaps, json: configMap("no-key"))
        XCTAssertEqual(refused.status, 422, refused.message)
        XCTAssertTrue(refused.message.contains("denied request: expression 'object.data.required == 'yes'' resulted in error: no such key: required"),
                      refused.message)

        _ = await tc.send("DELETE", Self.policies + "/strict")
        await install("lenient", validations: [["expression": "object.data.required == 'yes'"]], extra: ["failurePolicy": "Ignore"])
        let admitted = await tc.send("POST", Self.configMaps, json: configMap("no-key"))
        XCTAssertEqual(admitted.status, 201, admitted.message)
        let checked = await tc.send("POST", Self.configMaps, json: configMap("wrong", data: ["required": "no"]))
        XCTAssertEqual(checked.status, 422, "Ignore forgives errors, not failed validations: \(checked.message)")
    }

    func testABindingNamingAMissingPolicyDoesNothing() async throws {
        let binding = await tc.send("POST", Self.bindings, json: [
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": ["name": "orphan"], "spec": ["policyName": "does-not-exist", "validationActions": ["Deny"]]])
        XCTAssertEqual(binding.status, 201, binding.message)
        let created = await tc.send("POST", Self.configMaps, json: configMap("fine"))
        XCTAssertEqual(created.status, 201, created.message)
        // A policy without a binding does nothing either.
        let policy = await tc.send("POST", Self.policies, json: [
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy", "metadata": ["name": "unbound"],
            "spec": ["matchConstraints": ["resourceRules": [["apiGroups": [""], "apiVersions": ["*"], "operations": ["*"],
                                                             "resources": ["*"]]]],
                     "validations": [["expression": "false"]]]])
        XCTAssertEqual(policy.status, 201, policy.message)
        let also = await tc.send("POST", Self.configMaps, json: configMap("also-fine"))
        XCTAssertEqual(also.status, 201, also.message)
    }

    func testAPolicyThatDoesNotCompileOrABindingWithoutActionsIsRefusedAt422() async throws {
        let policy = await install("broken", validations: [["expression": "object.data.(", "reason": "Teapot"]])
        XCTAssertEqual(policy.status, 422)
        XCTAssertEqual(policy.body["reason"], "Invalid")
        XCTAssertTrue(policy.message.contains("spec.validations[0].expression: Invalid value: \"object.data.(\": compilation failed"),
                      policy.message)
        XCTAssertTrue(policy.message.contains("spec.validations[0].reason: Unsupported value: \"Teapot\""), policy.message)
        let unknown = await install("unknown-variable", validations: [["expression": "undeclared.x"]])
        XCTAssertTrue(unknown.message.contains("undeclared reference to 'undeclared'"), unknown.message)
        let binding = await tc.send("POST", Self.bindings, json: [
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": ["name": "no-actions"], "spec": ["policyName": "x"]])
        XCTAssertEqual(binding.status, 422)
        XCTAssertTrue(binding.message.contains("spec.validationActions: Required value"), binding.message)
    }

    func testMatchConditionsVariablesAndSelectorsNarrowWhatIsChecked() async throws {
        await install("labelled-only", validations: [["expression": "variables.count < 2", "message": "at most one key"]], extra: [
            "matchConditions": [["name": "not-system", "expression": "!object.metadata.name.startsWith('system-')"]],
            "variables": [["name": "count", "expression": "size(object.data)"]],
            "matchConstraints": ["resourceRules": [["apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                                                    "resources": ["configmaps"]]],
                                 "objectSelector": ["matchLabels": ["checked": "true"]]],
        ])
        let two: [String: JSONValue] = ["a": "1", "b": "2"]
        let unlabelled = await tc.send("POST", Self.configMaps, json: configMap("unlabelled", data: two))
        XCTAssertEqual(unlabelled.status, 201, "objectSelector: \(unlabelled.message)")
        let system = await tc.send("POST", Self.configMaps, json: configMap("system-x", labels: ["checked": "true"], data: two))
        XCTAssertEqual(system.status, 201, "matchConditions: \(system.message)")
        let checked = await tc.send("POST", Self.configMaps, json: configMap("checked", labels: ["checked": "true"], data: two))
        XCTAssertEqual(checked.status, 422)
        XCTAssertTrue(checked.message.hasSuffix("denied request: at most one key"), checked.message)

        // A binding's namespaceSelector narrows further: namespace team-a is not labelled.
        await tc.createNamespace("team-a")
        await install("namespaced", validations: [["expression": "false", "message": "no"]], binding: [
            "matchResources": ["namespaceSelector": ["matchLabels": ["guarded": "true"]]]])
        let outside = await tc.send("POST", "/api/v1/namespaces/team-a/configmaps", json: configMap("free"))
        XCTAssertEqual(outside.status, 201, outside.message)
        _ = await tc.send("PATCH", "/api/v1/namespaces/team-a", json: ["metadata": ["labels": ["guarded": "true"]]],
                          contentType: "application/merge-patch+json")
        let inside = await tc.send("POST", "/api/v1/namespaces/team-a/configmaps", json: configMap("guarded"))
        XCTAssertEqual(inside.status, 422, inside.message)
    }

    func testAWarnBindingAdmitsWithAWarningHeader() async throws {
        await install("advice", validations: [["expression": "has(object.data)", "message": "an empty ConfigMap"]],
                      binding: ["validationActions": ["Warn"]])
        let body: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "empty"]]
        let headers = HTTPHeaders([("Authorization", "Bearer \(tc.cluster.adminToken)"), ("Content-Type", "application/json")])
        let request = HTTPRequest(method: "POST", uri: Self.configMaps, headers: headers, body: body.serialized())
        let response = await tc.cluster.apiServer.handle(request)
        XCTAssertEqual(response.status, 201)
        XCTAssertTrue(response.headers.contains { $0.0 == "Warning"
                && $0.1 == "299 - \"Validation failed for ValidatingAdmissionPolicy 'advice' with binding 'advice-binding': an empty ConfigMap\"" },
                      "\(response.headers)")
    }

    func testTheAuthorizerAsksRBACAboutTheRequesterOrANamedServiceAccount() async throws {
        await install("authorized", validations: [
            ["expression": "authorizer.group('').resource('serviceaccounts').namespace(request.namespace).name('agent-sa').check('use').allowed()",
             "messageExpression": "request.userInfo.username + ' may not use agent-sa'", "reason": "Forbidden"],
            ["expression": "authorizer.serviceAccount('default', 'agent-sa').group('').resource('secrets').check('list').allowed() == false",
             "message": "agent-sa must not list secrets"],
            ["expression": "authorizer.requestResource.check('create').allowed()"],
            ["expression": "authorizer.path('/healthz').check('get').allowed()"],
        ])
        _ = await tc.send("POST", "/api/v1/namespaces/default/serviceaccounts", json: ["apiVersion": "v1", "kind": "ServiceAccount", "metadata": ["name": "writer"]])
        _ = await tc.send("POST", "/api/v1/namespaces/default/serviceaccounts", json: ["apiVersion": "v1", "kind": "ServiceAccount", "metadata": ["name": "agent-sa"]])
        _ = await tc.send("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles", json: [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": ["name": "writer"],
            "rules": [["apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]]]])
        _ = await tc.send("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", json: [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": ["name": "writer"],
            "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "writer"],
            "subjects": [["kind": "ServiceAccount", "name": "writer", "namespace": "default"]]])
        let token = await tc.send("POST", "/api/v1/namespaces/default/serviceaccounts/writer/token",
                                  json: ["apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": [:]])
        let writer = token.body[path: ["status", "token"]]?.stringValue ?? ""

        let refused = await tc.send("POST", Self.configMaps, json: configMap("first"), token: writer)
        XCTAssertEqual(refused.status, 403, refused.message)
        XCTAssertTrue(refused.message.hasSuffix("denied request: system:serviceaccount:default:writer may not use agent-sa"), refused.message)

        _ = await tc.send("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles", json: [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": ["name": "use-agent-sa"],
            "rules": [["apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["use"], "resourceNames": ["agent-sa"]]]])
        _ = await tc.send("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", json: [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": ["name": "use-agent-sa"],
            "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "use-agent-sa"],
            "subjects": [["kind": "ServiceAccount", "name": "writer", "namespace": "default"]]])
        let admitted = await tc.send("POST", Self.configMaps, json: configMap("first"), token: writer)
        XCTAssertEqual(admitted.status, 201, admitted.message)
    }
}
