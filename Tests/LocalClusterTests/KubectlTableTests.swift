import Foundation
import KubeCore
import TestSupport
import XCTest
@testable import LocalCluster

/// `kubectl get` (v1.32) prints kube-apiserver's columns for the built-in kinds: each test
/// compares kubectl's real output, split into cells, with what a real cluster prints for the
/// same objects (`<t>` stands for an age or duration, `<ip>` for a pod IP).
final class KubectlTableTests: XCTestCase {
    var tc: TestCluster!
    var kubeconfig = ""

    override func setUp() async throws {
        tc = try await TestCluster(useTLS: true)
        kubeconfig = try tc.adminKubeconfig()
    }

    override func tearDown() async throws { await tc.stop() }

    func kubectl(_ arguments: [String], input: String? = nil) throws -> ProcessResult {
        var args = arguments
        if let input {
            let file = tc.directory.appendingPathComponent("input-\(UUID().uuidString).yaml")
            try input.write(to: file, atomically: true, encoding: .utf8)
            args = args.map { $0 == "-" ? file.path : $0 }
        }
        let result = try ProcessRunner.run("kubectl", ["--kubeconfig", kubeconfig, "--request-timeout=20s"] + args, timeout: 60)
        XCTAssertEqual(result.status, 0, "kubectl \(args.joined(separator: " ")): \(result.output)")
        return result
    }

    func apply(_ yaml: String) throws { _ = try kubectl(["apply", "-f", "-"], input: yaml) }

    /// The lines of `kubectl get`, each split into cells (kubectl pads columns with 3+ spaces).
    func table(_ arguments: String...) throws -> [[String]] {
        try kubectl(["get"] + arguments).stdout.split(separator: "\n").map { line in
            line.split(separator: "   ", omittingEmptySubsequences: true).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
        }
    }

    /// Asserts kubectl's header and rows; row cells are patterns: `<t>` an age, `<ip>` a pod IP,
    /// anything else literal.
    func assertTable(_ lines: [[String]], _ header: [String], _ rows: [[String]], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(lines.first, header, file: file, line: line)
        let body = Array(lines.dropFirst())
        XCTAssertEqual(body.count, rows.count, "\(body)", file: file, line: line)
        for (actual, expected) in zip(body, rows) {
            XCTAssertEqual(actual.count, expected.count, "\(actual) vs \(expected)", file: file, line: line)
            for (cell, pattern) in zip(actual, expected) {
                let regex = "^" + NSRegularExpression.escapedPattern(for: pattern)
                    .replacingOccurrences(of: "<t>", with: "[0-9]+[smhdy]([0-9]+[smh])?")
                    .replacingOccurrences(of: "<ip>", with: "10\\.244\\.[0-9]+\\.[0-9]+") + "$"
                XCTAssertNotNil(cell.range(of: regex, options: .regularExpression), "cell \(cell) of \(actual) is not \(pattern)",
                                file: file, line: line)
            }
        }
    }

    func testPodsShowReadyStatusRestartsAndWideShowsIPAndNode() async throws {
        try apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: p, namespace: default}
            spec: {containers: [{name: a, image: nginx}, {name: b, image: busybox}]}
            """)
        let tc = self.tc!
        try await eventually(10, "pod p running") {
            await tc.send("GET", "/api/v1/namespaces/default/pods/p").body[path: ["status", "phase"]] == "Running"
        }
        assertTable(try table("pods"), ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], [["p", "2/2", "Running", "0", "<t>"]])
        assertTable(try table("pods", "-o", "wide"),
                    ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
                    [["p", "2/2", "Running", "0", "<t>", "<ip>", "agentgate-dev", "<none>", "<none>"]])
    }

    func testPodStatusColumnFollowsKubeletStates() {
        let now = Date()
        let finished = KubeTime.format(now.addingTimeInterval(-300))
        let crashing: JSONValue = [
            "metadata": ["name": "c", "creationTimestamp": .string(KubeTime.format(now.addingTimeInterval(-3600)))],
            "spec": ["containers": [["name": "a"]]],
            "status": ["phase": "Running", "containerStatuses": [[
                "name": "a", "ready": false, "restartCount": 3,
                "state": ["waiting": ["reason": "CrashLoopBackOff"]],
                "lastState": ["terminated": ["exitCode": 1, "finishedAt": .string(finished)]],
            ]]],
        ]
        XCTAssertEqual(Array(PodRow(crashing).cells(now: now).prefix(4)), ["0/1", "CrashLoopBackOff", "3 (5m ago)", "60m"])
        let initializing: JSONValue = [
            "spec": ["initContainers": [["name": "i"]], "containers": [["name": "a"]]],
            "status": ["phase": "Pending", "initContainerStatuses": [["name": "i", "state": ["running": [:]], "restartCount": 0]]],
        ]
        XCTAssertEqual(PodRow(initializing).cells(now: now)[1], "Init:0/1")
        var deleting = crashing
        deleting.set(.string(KubeTime.format(now)), at: ["metadata", "deletionTimestamp"])
        deleting.set([["name": "a", "ready": true, "restartCount": 0, "state": ["running": [:]]]], at: ["status", "containerStatuses"])
        XCTAssertEqual(Array(PodRow(deleting).cells(now: now).prefix(2)), ["1/1", "Terminating"])
        let done: JSONValue = ["spec": ["containers": [["name": "a"]]], "status": ["phase": "Succeeded", "containerStatuses": [
            ["name": "a", "ready": false, "restartCount": 0, "state": ["terminated": ["exitCode": 0, "reason": "Completed"]]]]]]
        XCTAssertEqual(Array(PodRow(done).cells(now: now).prefix(2)), ["0/1", "Completed"])
    }

    func testWorkloadsShowKubeApiserverColumns() async throws {
        try apply("""
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web, namespace: default}
            spec:
              replicas: 2
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec: {containers: [{name: web, image: "nginx:1.27"}]}
            ---
            apiVersion: apps/v1
            kind: StatefulSet
            metadata: {name: db, namespace: default}
            spec:
              replicas: 1
              serviceName: db
              selector: {matchLabels: {app: db}}
              template:
                metadata: {labels: {app: db}}
                spec: {containers: [{name: db, image: "postgres:16"}]}
            ---
            apiVersion: batch/v1
            kind: Job
            metadata: {name: hello, namespace: default}
            spec:
              template:
                spec:
                  restartPolicy: Never
                  containers: [{name: hello, image: busybox}]
            """)
        let tc = self.tc!
        try await eventually(20, "web, db and hello done") {
            let web = await tc.send("GET", "/apis/apps/v1/namespaces/default/deployments/web").body
            let db = await tc.send("GET", "/apis/apps/v1/namespaces/default/statefulsets/db").body
            let job = await tc.send("GET", "/apis/batch/v1/namespaces/default/jobs/hello").body
            return web[path: ["status", "availableReplicas"]] == 2 && db[path: ["status", "readyReplicas"]] == 1
                && job[path: ["status", "succeeded"]] == 1 && job[path: ["status", "completionTime"]] != nil
        }
        assertTable(try table("deployments"), ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], [["web", "2/2", "2", "2", "<t>"]])
        assertTable(try table("deployments", "-o", "wide"),
                    ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"],
                    [["web", "2/2", "2", "2", "<t>", "web", "nginx:1.27", "app=web"]])
        let replicaSets = try table("replicasets", "-o", "wide")
        XCTAssertEqual(replicaSets.first, ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"])
        let hash = String(replicaSets.dropFirst().first?.first?.dropFirst("web-".count) ?? "")
        assertTable(replicaSets, replicaSets[0], [["web-\(hash)", "2", "2", "2", "<t>", "web", "nginx:1.27", "app=web,pod-template-hash=\(hash)"]])
        assertTable(try table("statefulsets", "-o", "wide"), ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"],
                    [["db", "1/1", "<t>", "db", "postgres:16"]])
        assertTable(try table("jobs"), ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"], [["hello", "Complete", "1/1", "<t>", "<t>"]])
    }

    func testServicesConfigMapsSecretsAccountsAndNamespaces() throws {
        try apply("""
            apiVersion: v1
            kind: Service
            metadata: {name: np, namespace: default}
            spec: {type: NodePort, clusterIP: 10.96.0.20, selector: {app: web}, ports: [{port: 80, nodePort: 30080, protocol: TCP}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: ext, namespace: default}
            spec: {type: ExternalName, externalName: example.com}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: settings, namespace: default}
            data: {a: "1", b: "2"}
            ---
            apiVersion: v1
            kind: Secret
            metadata: {name: token, namespace: default}
            type: kubernetes.io/basic-auth
            stringData: {username: u, password: p}
            ---
            apiVersion: v1
            kind: ServiceAccount
            metadata: {name: robot, namespace: default}
            """)
        assertTable(try table("services", "-o", "wide"), ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"],
                    [["ext", "ExternalName", "<none>", "example.com", "<none>", "<t>", "<none>"],
                     ["np", "NodePort", "10.96.0.20", "<none>", "80:30080/TCP", "<t>", "app=web"]])
        assertTable(try table("configmaps", "settings"), ["NAME", "DATA", "AGE"], [["settings", "2", "<t>"]])
        assertTable(try table("secrets", "token"), ["NAME", "TYPE", "DATA", "AGE"], [["token", "kubernetes.io/basic-auth", "2", "<t>"]])
        assertTable(try table("serviceaccounts", "robot"), ["NAME", "SECRETS", "AGE"], [["robot", "0", "<t>"]])
        assertTable(try table("namespaces", "default"), ["NAME", "STATUS", "AGE"], [["default", "Active", "<t>"]])
    }

    func testNodesEndpointSlicesEventsAndLeases() throws {
        assertTable(try table("nodes"), ["NAME", "STATUS", "ROLES", "AGE", "VERSION"], [["agentgate-dev", "Ready", "control-plane", "<t>", "v1.32.0"]])
        let wide = try table("nodes", "-o", "wide")
        XCTAssertEqual(wide.first, ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE",
                                    "KERNEL-VERSION", "CONTAINER-RUNTIME"])
        XCTAssertEqual(wide.dropFirst().first?[5...6], ["127.0.0.1", "<none>"])
        try apply("""
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: manual, namespace: default}
            addressType: IPv4
            ports: [{port: 80}, {name: metrics}]
            endpoints: [{addresses: [10.0.0.1]}, {addresses: [10.0.0.2]}, {addresses: [10.0.0.3]}, {addresses: [10.0.0.4]}]
            ---
            apiVersion: v1
            kind: Event
            metadata: {name: web.1, namespace: default}
            involvedObject: {kind: Deployment, name: web, namespace: default}
            reason: ScalingReplicaSet
            message: "Scaled up replica set web-1 to 2 "
            type: Normal
            source: {component: deployment-controller}
            count: 3
            firstTimestamp: "2026-01-01T00:00:00Z"
            lastTimestamp: "2026-01-01T00:00:00Z"
            ---
            apiVersion: coordination.k8s.io/v1
            kind: Lease
            metadata: {name: leader, namespace: default}
            spec: {holderIdentity: replica-1}
            """)
        assertTable(try table("endpointslices", "manual"), ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"],
                    [["manual", "IPv4", "80,metrics", "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...", "<t>"]])
        assertTable(try table("events", "--field-selector", "involvedObject.name=web"),
                    ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
                    [["<t>", "Normal", "ScalingReplicaSet", "deployment/web", "Scaled up replica set web-1 to 2"]])
        assertTable(try table("events", "--field-selector", "involvedObject.name=web", "-o", "wide"),
                    ["LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE", "FIRST SEEN", "COUNT", "NAME"],
                    [["<t>", "Normal", "ScalingReplicaSet", "deployment/web", "deployment-controller", "Scaled up replica set web-1 to 2",
                      "<t>", "3", "web.1"]])
        assertTable(try table("leases", "leader"), ["NAME", "HOLDER", "AGE"], [["leader", "replica-1", "<t>"]])
    }

    func testRBACPolicyClaimsAndDefaultTables() throws {
        try apply("""
            apiVersion: rbac.authorization.k8s.io/v1
            kind: Role
            metadata: {name: reader, namespace: default}
            rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: RoleBinding
            metadata: {name: reader, namespace: default}
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
            subjects:
            - {kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}
            - {kind: ServiceAccount, name: robot, namespace: default}
            ---
            apiVersion: v1
            kind: PersistentVolumeClaim
            metadata: {name: data, namespace: default}
            spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}, storageClassName: standard}
            ---
            apiVersion: policy/v1
            kind: PodDisruptionBudget
            metadata: {name: web, namespace: default}
            spec: {minAvailable: 1, selector: {matchLabels: {app: web}}}
            """)
        let roles = try table("roles", "reader")
        XCTAssertEqual(roles.first, ["NAME", "CREATED AT"])
        XCTAssertNotNil(KubeTime.parse(roles.dropFirst().first?.last ?? ""), "\(roles)")
        assertTable(try table("rolebindings", "reader", "-o", "wide"), ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"],
                    [["reader", "Role/reader", "<t>", "jane", "default/robot"]])
        // Columns only: without a PV controller the claim has no phase (a real one shows Pending).
        XCTAssertEqual(try table("persistentvolumeclaims", "data").first,
                       ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE"])
        assertTable(try table("poddisruptionbudgets", "web"), ["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"],
                    [["web", "1", "N/A", "0", "<t>"]])
        let crds = try table("customresourcedefinitions")
        XCTAssertEqual(crds.first, ["NAME", "CREATED AT"])
        XCTAssertTrue(crds.contains { $0.first == "agentconnections.agentgate.io" && KubeTime.parse($0.last ?? "") != nil }, "\(crds)")
    }
}
