import AgentGateAPI
import Foundation
import KubeCore
import TestSupport
import XCTest

/// `config/argocd/health.lua`, the Argo CD health check of the three kinds, run by a real Lua
/// interpreter (`lua5.4`) on objects the operator reconciled on the embedded cluster, read
/// back with `kubectl get -o json` as Argo CD reads live objects. Like Argo CD, the harness
/// sets the global `obj` and reads the table the script returns (`hs.status`, `hs.message`).
final class ArgoCDHealthCheckTests: XCTestCase {
    func testAConnectionIsProgressingUntilReconciledHealthyWhenReadyAndProgressingAgainWhileAChangeIsUnseen() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            _ = try await h.admin.create(ClusterFixture.connection("web"))
            XCTAssertEqual(try ArgoCDHealth.of(h, "agentconnection", "web"),
                           ArgoCDHealth(status: "Progressing", message: "Waiting for the operator to reconcile this object"))

            let (first, _) = try await h.startOperator()
            let ready = try await h.ready("web")
            let readyCondition = try XCTUnwrap(ready.status?.conditions?.condition("Ready"))
            XCTAssertEqual(try ArgoCDHealth.of(h, "agentconnection", "web"),
                           ArgoCDHealth(status: "Healthy", message: "\(readyCondition.reason): \(readyCondition.message)"))

            // A spec change the operator has not read yet: the Ready condition is about generation 1.
            await h.stop(first)
            let patched = try h.kubectl(["patch", "agentconnection", "web", "--type", "merge", "-p", #"{"spec":{"credentials":{"tokenTTL":"2h"}}}"#])
            XCTAssertEqual(patched.status, 0, patched.output)
            XCTAssertEqual(try ArgoCDHealth.of(h, "agentconnection", "web"), ArgoCDHealth(
                status: "Progressing", message: "Waiting for the operator to reconcile generation 2 (status describes generation 1)"))

            let (second, _) = try await h.startOperator()
            let again = try await h.ready("web")
            XCTAssertEqual(again.metadata.generation, 2)
            XCTAssertEqual(try ArgoCDHealth.of(h, "agentconnection", "web").status, "Healthy")

            // Deleted while no operator runs: the finalizer holds the object, still Ready=True.
            await h.stop(second)
            let deleted = try h.kubectl(["delete", "agentconnection", "web", "--wait=false"])
            XCTAssertEqual(deleted.status, 0, deleted.output)
            XCTAssertEqual(try ArgoCDHealth.of(h, "agentconnection", "web"),
                           ArgoCDHealth(status: "Progressing", message: "Being deleted: the operator is removing what it created"))
        }
    }

    func testAnInvalidSpecTheSchemaCannotCatchIsDegradedNamingTheFieldAndAMissingServiceAccountIsProgressing() async throws {
        try await withOperatorHarness { h in
            try await h.createServiceAccount("agent-sa")
            _ = try await h.startOperator()

            var badSelector = ClusterFixture.connection("bad-selector")
            badSelector.spec.maskingRuleSelector = LabelSelector(matchLabels: ["team": "has spaces!"])
            _ = try await h.admin.create(badSelector)
            let invalid = try await h.waitFor("bad-selector", "Stalled with InvalidSpec") {
                $0.status?.conditions?.condition("Stalled")?.reason == "InvalidSpec"
            }
            let stalled = try XCTUnwrap(invalid.status?.conditions?.condition("Stalled"))
            let degraded = try ArgoCDHealth.of(h, "agentconnection", "bad-selector")
            XCTAssertEqual(degraded, ArgoCDHealth(status: "Degraded", message: "InvalidSpec: \(stalled.message)"))
            XCTAssertTrue(degraded.message.contains("spec.maskingRuleSelector"), degraded.message)

            _ = try await h.admin.create(ClusterFixture.connection("no-account", serviceAccount: "not-there"))
            let waiting = try await h.waitFor("no-account", "Reconciling with ServiceAccountNotFound") {
                $0.status?.conditions?.condition("Reconciling")?.reason == "ServiceAccountNotFound"
            }
            let reconciling = try XCTUnwrap(waiting.status?.conditions?.condition("Reconciling"))
            XCTAssertEqual(try ArgoCDHealth.of(h, "agentconnection", "no-account"),
                           ArgoCDHealth(status: "Progressing", message: "ServiceAccountNotFound: \(reconciling.message)"))
            try await h.createServiceAccount("not-there")
            _ = try await h.ready("no-account")
            XCTAssertEqual(try ArgoCDHealth.of(h, "agentconnection", "no-account").status, "Healthy")
        }
    }

    func testTheSameScriptReadsMaskingRulesAndRecordingPolicies() async throws {
        try await withOperatorHarness { h in
            _ = try await h.startOperator()
            _ = try await h.admin.create(MaskingRule(metadata: ObjectMeta(name: "broken", namespace: "default"),
                                                     spec: MaskingRuleSpec(customPatterns: [CustomPattern(name: "card", regex: "[unclosed")])))
            _ = try await h.admin.create(MaskingRule(metadata: ObjectMeta(name: "cards", namespace: "default"),
                                                     spec: MaskingRuleSpec(customPatterns: [CustomPattern(name: "card", regex: "[0-9]{16}")])))
            _ = try await h.admin.create(RecordingPolicy(metadata: ObjectMeta(name: "default", namespace: "default")))
            let waited = try h.kubectl(["wait", "--for=condition=Ready", "maskingrule/cards", "recordingpolicy/default", "--timeout=20s"])
            XCTAssertEqual(waited.status, 0, waited.output)
            let admin = h.admin
            try await eventually(15, "MaskingRule broken to be Stalled") {
                try await admin.get(MaskingRule.self, name: "broken", namespace: "default").status?.conditions?.isTrue("Stalled") ?? false
            }

            let broken = try ArgoCDHealth.of(h, "maskingrule", "broken")
            XCTAssertEqual(broken.status, "Degraded")
            XCTAssertTrue(broken.message.hasPrefix("InvalidSpec: ") && broken.message.contains("spec.customPatterns[0].regex"), broken.message)
            XCTAssertEqual(try ArgoCDHealth.of(h, "maskingrule", "cards").status, "Healthy")
            XCTAssertEqual(try ArgoCDHealth.of(h, "recordingpolicy", "default").status, "Healthy")
        }
    }

    /// The install path the README gives: a merge patch of Argo CD's argocd-cm, by kubectl or as
    /// a kustomize component. Each key must hold health.lua exactly.
    func testThePatchInstallsHealthLuaForTheThreeKindsInArgoCDsConfigMap() async throws {
        let script = try String(contentsOf: ArgoCDHealth.scriptURL, encoding: .utf8)
        let keys = ["AgentConnection", "MaskingRule", "RecordingPolicy"].map { "resource.customizations.health.agentgate.io_\($0)" }
        try await withOperatorHarness { h in
            let namespace = try h.kubectl(["create", "namespace", "argocd"])
            XCTAssertEqual(namespace.status, 0, namespace.output)
            let created = try h.kubectl(["-n", "argocd", "create", "configmap", "argocd-cm", "--from-literal=url=https://argocd.example.com"])
            XCTAssertEqual(created.status, 0, created.output)
            let patch = OperatorHarness.repositoryRoot.appendingPathComponent("config/argocd/argocd-cm-patch.yaml").path
            let patched = try h.kubectl(["-n", "argocd", "patch", "configmap", "argocd-cm", "--type", "merge", "--patch-file", patch])
            XCTAssertEqual(patched.status, 0, patched.output)
            let read = try h.kubectl(["-n", "argocd", "get", "configmap", "argocd-cm", "-o", "json"])
            let data = try JSONValue(parsing: read.stdout)["data"]
            for key in keys { XCTAssertEqual(data?[key]?.stringValue, script, "\(key) is not health.lua") }
            XCTAssertEqual(data?["url"], "https://argocd.example.com", "the patch keeps Argo CD's other settings")
        }

        // As a component of the kustomization that installs Argo CD, in its own namespace.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("argocd-install-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let component = OperatorHarness.repositoryRoot.appendingPathComponent("config/argocd").path
        let relative = String(repeating: "../", count: directory.pathComponents.count - 1) + component.dropFirst()
        try """
            resources:
              - argocd-cm.yaml
            components:
              - \(relative)
            """.write(to: directory.appendingPathComponent("kustomization.yaml"), atomically: true, encoding: .utf8)
        try """
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: argocd-cm
              namespace: gitops
            data:
              url: https://argocd.example.com
            """.write(to: directory.appendingPathComponent("argocd-cm.yaml"), atomically: true, encoding: .utf8)
        let rendered = try ProcessRunner.run("kubectl", ["kustomize", directory.path])
        XCTAssertEqual(rendered.status, 0, rendered.output)
        let configMap = try JSONValue(yaml: rendered.stdout)
        XCTAssertEqual(configMap[path: ["metadata", "namespace"]], "gitops")
        for key in keys { XCTAssertEqual(configMap[path: ["data", key]]?.stringValue, script, "\(key) is not health.lua") }
    }
}

/// What Argo CD would show for an object: `hs.status` and `hs.message` of health.lua.
struct ArgoCDHealth: Equatable, CustomStringConvertible {
    var status: String
    var message: String
    var description: String { "\(status): \(message)" }

    static let scriptURL = OperatorHarness.repositoryRoot.appendingPathComponent("config/argocd/health.lua")
    static let statuses: Set<String> = ["Healthy", "Progressing", "Degraded", "Suspended", "Missing"]

    /// The live object as `kubectl get -o json` returns it, judged by the script.
    static func of(_ h: OperatorHarness, _ resource: String, _ name: String, namespace: String = "default") throws -> ArgoCDHealth {
        let live = try h.kubectl(["get", resource, name, "-n", namespace, "-o", "json"])
        guard live.status == 0 else { throw HealthScriptError(description: "kubectl get \(resource) \(name): \(live.output)") }
        return try evaluate(try JSONValue(parsing: live.stdout))
    }

    /// Runs health.lua with `obj` set to `object` (a Lua table, as Argo CD converts the
    /// unstructured object) and returns what the script answered.
    static func evaluate(_ object: JSONValue) throws -> ArgoCDHealth {
        let program = """
            obj = \(luaLiteral(object))
            local hs = dofile(\(luaString(scriptURL.path)))
            io.write(tostring(hs.status), "\\n", tostring(hs.message))
            """
        let result = try ProcessRunner.run("lua5.4", ["-"], input: program, timeout: 20)
        guard result.status == 0 else {
            throw HealthScriptError(description: "lua5.4 failed on health.lua (install it: apt-get install lua5.4): \(result.output)")
        }
        let lines = result.stdout.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
        let health = ArgoCDHealth(status: String(lines[0]), message: lines.count > 1 ? String(lines[1]) : "")
        guard statuses.contains(health.status) else {
            throw HealthScriptError(description: "health.lua returned status \(health.status), which Argo CD does not know")
        }
        return health
    }

    /// A Lua table constructor for a JSON value: objects become string-keyed tables, arrays
    /// sequences from 1, null nil.
    static func luaLiteral(_ value: JSONValue) -> String {
        switch value {
        case .null: return "nil"
        case .bool(let flag): return flag ? "true" : "false"
        case .int(let number): return String(number)
        case .double(let number): return "\(number)"
        case .string(let text): return luaString(text)
        case .array(let items): return "{" + items.map(luaLiteral).joined(separator: ", ") + "}"
        case .object(let members):
            return "{" + members.keys.sorted().map { "[\(luaString($0))] = \(luaLiteral(members[$0]!))" }.joined(separator: ", ") + "}"
        }
    }

    /// A quoted Lua string; bytes outside printable ASCII as three-digit decimal escapes
    /// (valid in Lua 5.1, which Argo CD embeds, and 5.4).
    static func luaString(_ text: String) -> String {
        var quoted = "\""
        for byte in text.utf8 {
            switch byte {
            case 0x22: quoted += "\\\""
            case 0x5c: quoted += "\\\\"
            case 0x20...0x7e: quoted.unicodeScalars.append(UnicodeScalar(byte))
            default: quoted += String(format: "\\%03d", byte)
            }
        }
        return quoted + "\""
    }
}

struct HealthScriptError: Error, CustomStringConvertible {
    var description: String
}
