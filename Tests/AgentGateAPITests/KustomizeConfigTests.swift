import AgentGateAPI
import Foundation
import KubeCore
import XCTest

/// `config/default` renders with real `kubectl kustomize` into the CRDs, RBAC, both
/// Deployments and the Service, and the rendered objects keep the promises the README makes:
/// least-privilege RBAC and locked-down pods.
final class KustomizeConfigTests: XCTestCase {
    private func render(_ directory: String) throws -> [JSONValue] {
        guard let kubectl = Self.findExecutable("kubectl") else {
            throw XCTSkip("kubectl is not on PATH; .ci/run installs it")
        }
        let process = Process()
        process.executableURL = kubectl
        process.arguments = ["kustomize", RepositoryFiles.url(directory).path]
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, String(decoding: errors, as: UTF8.self))
        return try JSONValue.parseYAMLDocuments(String(decoding: output, as: UTF8.self))
    }

    private static func findExecutable(_ name: String) -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { URL(fileURLWithPath: String($0)).appendingPathComponent(name) }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    private func objects(_ all: [JSONValue], kind: String) -> [String: JSONValue] {
        Dictionary(all.filter { $0["kind"]?.stringValue == kind }
            .compactMap { o in o[path: ["metadata", "name"]]?.stringValue.map { ($0, o) } }, uniquingKeysWith: { a, _ in a })
    }

    func testDefaultRendersCRDsRBACDeploymentsAndService() throws {
        let all = try render("config/default")
        XCTAssertEqual(Set(objects(all, kind: "CustomResourceDefinition").keys), Set(AgentGateKinds.all.map(\.crdName)))
        XCTAssertEqual(Set(objects(all, kind: "Namespace").keys), ["agentgate-system"])
        XCTAssertEqual(Set(objects(all, kind: "Deployment").keys), ["agentgate-operator", "agentgate-gateway"])
        XCTAssertEqual(Set(objects(all, kind: "Service").keys), ["agentgate-gateway"])
        XCTAssertEqual(Set(objects(all, kind: "ServiceAccount").keys), ["agentgate-operator", "agentgate-gateway"])
        XCTAssertEqual(Set(objects(all, kind: "ClusterRole").keys), ["agentgate-operator", "agentgate-gateway"])
        XCTAssertEqual(Set(objects(all, kind: "ClusterRoleBinding").keys), ["agentgate-operator", "agentgate-gateway"])
        XCTAssertEqual(Set(objects(all, kind: "Role").keys), ["agentgate-operator", "agentgate-gateway"])
        XCTAssertEqual(Set(objects(all, kind: "RoleBinding").keys), ["agentgate-operator", "agentgate-gateway"])
        for object in all where object["kind"] != "CustomResourceDefinition" && object["kind"] != "Namespace"
            && object["kind"] != "ClusterRole" && object["kind"] != "ClusterRoleBinding"
        {
            XCTAssertEqual(object[path: ["metadata", "namespace"]], "agentgate-system", "\(object["kind"] ?? nil)")
        }
    }

    func testRenderedCRDsAreTheGeneratedOnes() throws {
        let rendered = objects(try render("config/default"), kind: "CustomResourceDefinition")
        for kind in AgentGateKinds.all {
            XCTAssertEqual(rendered[kind.crdName], try AgentGateCRDs.manifest(for: kind), kind.crdName)
        }
    }

    func testRBACIsLeastPrivilege() throws {
        let all = try render("config/default")
        let clusterRoles = objects(all, kind: "ClusterRole")
        let roles = objects(all, kind: "Role")
        func grants(_ role: JSONValue?) -> Set<String> {
            var result: Set<String> = []
            for rule in role?["rules"]?.arrayValue ?? [] {
                for group in rule["apiGroups"]?.arrayValue ?? [] {
                    for resource in rule["resources"]?.arrayValue ?? [] {
                        for verb in rule["verbs"]?.arrayValue ?? [] {
                            result.insert("\(group.stringValue ?? "")/\(resource.stringValue ?? "")/\(verb.stringValue ?? "")")
                        }
                    }
                }
            }
            return result
        }
        let operatorCluster = grants(clusterRoles["agentgate-operator"])
        XCTAssertTrue(operatorCluster.contains("/serviceaccounts/token/create"))
        XCTAssertTrue(operatorCluster.contains("agentgate.io/agentconnections/watch"))
        XCTAssertTrue(operatorCluster.contains("agentgate.io/recordingpolicies/status/patch"))
        XCTAssertTrue(operatorCluster.contains("agentgate.io/maskingrules/finalizers/update"))
        XCTAssertTrue(operatorCluster.contains("/events/create"))
        let operatorLocal = grants(roles["agentgate-operator"])
        XCTAssertTrue(operatorLocal.contains("/secrets/create"))
        XCTAssertTrue(operatorLocal.contains("coordination.k8s.io/leases/update"))

        XCTAssertEqual(grants(roles["agentgate-gateway"]), ["/secrets/get", "/secrets/list", "/secrets/watch"])
        // Status of the kinds, and approval and alert Events on AgentConnections.
        XCTAssertEqual(grants(clusterRoles["agentgate-gateway"]), Set(AgentGateKinds.all.flatMap { kind in
            ["get", "patch"].map { "agentgate.io/\(kind.plural)/status/\($0)" }
        } + ["/events/create", "/events/patch", "events.k8s.io/events/create", "events.k8s.io/events/patch"]),
                       "status, and approval and alert Events")
        for (name, role) in clusterRoles.merging(roles, uniquingKeysWith: { a, _ in a }) {
            XCTAssertFalse(grants(role).contains { $0.contains("*") }, "\(name) grants a wildcard")
        }
        for (name, role) in clusterRoles {
            XCTAssertFalse(grants(role).contains { $0.hasPrefix("/secrets/") }, "\(name) grants Secrets cluster-wide")
        }
    }

    func testPodsRunLockedDownWithProbesAndResources() throws {
        let deployments = objects(try render("config/default"), kind: "Deployment")
        let expectedArgs = ["agentgate-operator": ["operator", "--leader-elect", "--gateway-namespace"],
                            "agentgate-gateway": ["gateway", "--listen", "0.0.0.0:8443", "--admin-listen"]]
        for (name, deployment) in deployments {
            let pod = deployment[path: ["spec", "template", "spec"]]
            XCTAssertEqual(pod?[path: ["securityContext", "runAsNonRoot"]], true, name)
            XCTAssertEqual(pod?[path: ["securityContext", "seccompProfile", "type"]], "RuntimeDefault", name)
            for container in pod?["containers"]?.arrayValue ?? [] {
                XCTAssertEqual(container[path: ["securityContext", "readOnlyRootFilesystem"]], true, name)
                XCTAssertEqual(container[path: ["securityContext", "allowPrivilegeEscalation"]], false, name)
                XCTAssertEqual(container[path: ["securityContext", "capabilities", "drop"]], ["ALL"], name)
                XCTAssertEqual(container[path: ["livenessProbe", "httpGet", "path"]], "/healthz", name)
                XCTAssertEqual(container[path: ["readinessProbe", "httpGet", "path"]], "/readyz", name)
                XCTAssertNotNil(container[path: ["resources", "requests", "memory"]], name)
                XCTAssertNotNil(container[path: ["resources", "limits", "memory"]], name)
                let args = container["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
                XCTAssertEqual(Array(args.prefix(expectedArgs[name]?.count ?? 0)), expectedArgs[name], name)
            }
        }
    }
}
