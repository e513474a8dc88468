import Foundation
import KubeCore
import TestSupport
import XCTest
@testable import LocalCluster

/// Workloads that run, kwok-style, judged by real kubectl (v1.32): a Ready Node at start,
/// Deployments → ReplicaSets → Pods named and labelled as kube-controller-manager does,
/// rollouts (`rollout status|restart|undo`, `scale`), a deleted pod replaced, garbage
/// collection, and the pods' status as kubectl reads it.
final class KubectlWorkloadTests: XCTestCase {
    var tc: TestCluster!
    var kubeconfig = ""
    var workdir: URL!

    override func setUp() async throws {
        tc = try await TestCluster(useTLS: true)
        workdir = tc.directory.appendingPathComponent("work")
        try FileManager.default.createDirectory(at: workdir, withIntermediateDirectories: true)
        let file = workdir.appendingPathComponent("admin.kubeconfig")
        try tc.cluster.writeAdminKubeconfig(to: file)
        kubeconfig = file.path
    }

    override func tearDown() async throws { await tc.stop() }

    @discardableResult
    func kubectl(_ arguments: String..., input: String? = nil, expectSuccess: Bool = true,
                 file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        try Self.kubectl(kubeconfig: kubeconfig, workdir: workdir, arguments, input: input, expectSuccess: expectSuccess,
                         file: file, line: line)
    }

    static func kubectl(kubeconfig: String, workdir: URL, _ arguments: [String], input: String? = nil, expectSuccess: Bool = true,
                        file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        var args = arguments
        if let input {
            let path = workdir.appendingPathComponent("input-\(UUID().uuidString).yaml")
            try input.write(to: path, atomically: true, encoding: .utf8)
            args = args.map { $0 == "-" ? path.path : $0 }
        }
        let result = try ProcessRunner.run("kubectl", ["--kubeconfig", kubeconfig, "--request-timeout=20s"] + args, timeout: 60)
        if expectSuccess {
            XCTAssertEqual(result.status, 0, "kubectl \(args.joined(separator: " ")) failed: \(result.output)", file: file, line: line)
        }
        return result
    }

    static let deploymentYAML = """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
          namespace: default
          labels: {app: web}
        spec:
          replicas: 2
          selector:
            matchLabels: {app: web}
          template:
            metadata:
              labels: {app: web}
            spec:
              containers:
                - name: web
                  image: nginxinc/nginx-unprivileged:1.27-alpine
                  ports:
                    - containerPort: 8080
        """

    /// `kubectl get <what> -o json`'s items.
    func items(_ arguments: String...) throws -> [JSONValue] {
        let output = try Self.kubectl(kubeconfig: kubeconfig, workdir: workdir, ["get"] + arguments + ["-o", "json"]).stdout
        return try JSONValue(parsing: Array(output.utf8))["items"]?.arrayValue ?? []
    }

    func names(_ objects: [JSONValue]) -> [String] { objects.compactMap { $0[path: ["metadata", "name"]]?.stringValue }.sorted() }

    static let generatedSuffix = "[bcdfghjklmnpqrstvwxz2456789]{5}"

    func testClusterStartsWithOneReadyNodeThatKubectlDescribes() throws {
        let nodes = try kubectl("get", "nodes", "-o", "wide").stdout
        XCTAssertNotNil(nodes.range(of: #"agentgate-dev\s+Ready"#, options: .regularExpression), nodes)
        let node = try XCTUnwrap(try items("nodes").first)
        XCTAssertEqual(node[path: ["status", "nodeInfo", "kubeletVersion"]]?.stringValue, "v1.32.0")
        XCTAssertEqual(node[path: ["status", "allocatable", "pods"]]?.stringValue, "110")
        XCTAssertNotNil(node[path: ["status", "capacity", "cpu"]]?.stringValue)
        XCTAssertEqual(node[path: ["status", "addresses"]]?.arrayValue?.first?["type"]?.stringValue, "InternalIP")
        let described = try kubectl("describe", "node", "agentgate-dev").stdout
        XCTAssertTrue(described.contains("KubeletReady"), described)
        XCTAssertTrue(described.contains("Kubelet Version:            v1.32.0"), described)
    }

    func testDeploymentRunsPodsThroughAReplicaSetNamedAndLabelledAsKubeControllerManagerDoes() throws {
        try kubectl("apply", "-f", "-", input: Self.deploymentYAML)
        let status = try kubectl("rollout", "status", "deployment/web", "--timeout=30s").stdout
        XCTAssertTrue(status.contains("deployment \"web\" successfully rolled out"), status)

        let deployment = try XCTUnwrap(try items("deployments").first)
        let replicaSets = try items("replicasets", "-l", "app=web")
        XCTAssertEqual(replicaSets.count, 1)
        let replicaSet = try XCTUnwrap(replicaSets.first)
        let hash = try XCTUnwrap(replicaSet[path: ["metadata", "labels", "pod-template-hash"]]?.stringValue)
        XCTAssertEqual(replicaSet[path: ["metadata", "name"]]?.stringValue, "web-\(hash)")
        XCTAssertNotNil(hash.range(of: "^[bcdfghjklmnpqrstvwxz2456789]+$", options: .regularExpression), hash)
        XCTAssertEqual(replicaSet[path: ["spec", "selector", "matchLabels", "pod-template-hash"]]?.stringValue, hash)
        XCTAssertEqual(replicaSet[path: ["metadata", "annotations", "deployment.kubernetes.io/revision"]]?.stringValue, "1")
        XCTAssertEqual(deployment[path: ["metadata", "annotations", "deployment.kubernetes.io/revision"]]?.stringValue, "1")
        let owner = try XCTUnwrap(replicaSet[path: ["metadata", "ownerReferences"]]?.arrayValue?.first)
        XCTAssertEqual(owner["kind"]?.stringValue, "Deployment")
        XCTAssertEqual(owner["uid"], deployment[path: ["metadata", "uid"]])
        XCTAssertEqual(owner["controller"]?.boolValue, true)

        XCTAssertEqual(deployment[path: ["status", "replicas"]]?.intValue, 2)
        XCTAssertEqual(deployment[path: ["status", "readyReplicas"]]?.intValue, 2)
        XCTAssertEqual(deployment[path: ["status", "availableReplicas"]]?.intValue, 2)
        XCTAssertEqual(deployment[path: ["status", "updatedReplicas"]]?.intValue, 2)
        XCTAssertEqual(deployment[path: ["status", "observedGeneration"]], deployment[path: ["metadata", "generation"]])
        let conditions = deployment[path: ["status", "conditions"]]?.arrayValue ?? []
        XCTAssertEqual(conditions.first { $0["type"] == "Available" }?["reason"]?.stringValue, "MinimumReplicasAvailable")
        XCTAssertEqual(conditions.first { $0["type"] == "Progressing" }?["reason"]?.stringValue, "NewReplicaSetAvailable")

        let pods = try items("pods", "-l", "app=web")
        XCTAssertEqual(pods.count, 2)
        for pod in pods {
            let name = pod[path: ["metadata", "name"]]?.stringValue ?? ""
            XCTAssertNotNil(name.range(of: "^web-\(hash)-\(Self.generatedSuffix)$", options: .regularExpression), name)
            XCTAssertEqual(pod[path: ["metadata", "labels", "pod-template-hash"]]?.stringValue, hash)
            XCTAssertEqual(pod[path: ["metadata", "ownerReferences"]]?.arrayValue?.first?["name"]?.stringValue, "web-\(hash)")
            XCTAssertEqual(pod[path: ["spec", "nodeName"]]?.stringValue, "agentgate-dev")
            XCTAssertEqual(pod[path: ["status", "phase"]]?.stringValue, "Running")
            XCTAssertEqual(pod[path: ["status", "hostIP"]]?.stringValue, "127.0.0.1")
            XCTAssertTrue(pod[path: ["status", "podIP"]]?.stringValue?.hasPrefix("10.244.") == true, "\(pod)")
            XCTAssertEqual(pod[path: ["status", "podIPs"]]?.arrayValue?.first?["ip"], pod[path: ["status", "podIP"]])
            XCTAssertNotNil(pod[path: ["status", "startTime"]])
            let types = Set((pod[path: ["status", "conditions"]]?.arrayValue ?? []).filter { $0["status"] == "True" }
                .compactMap { $0["type"]?.stringValue })
            XCTAssertTrue(types.isSuperset(of: ["PodScheduled", "Initialized", "ContainersReady", "Ready"]), "\(types)")
            let container = try XCTUnwrap(pod[path: ["status", "containerStatuses"]]?.arrayValue?.first)
            XCTAssertEqual(container["ready"]?.boolValue, true)
            XCTAssertEqual(container["started"]?.boolValue, true)
            XCTAssertEqual(container["restartCount"]?.intValue, 0)
            XCTAssertEqual(container["image"]?.stringValue, "nginxinc/nginx-unprivileged:1.27-alpine")
            XCTAssertTrue(container["imageID"]?.stringValue?.hasPrefix("docker.io/nginxinc/nginx-unprivileged@sha256:") == true)
            XCTAssertTrue(container["containerID"]?.stringValue?.hasPrefix("containerd://") == true)
            XCTAssertNotNil(container[path: ["state", "running", "startedAt"]])
        }
        XCTAssertNotEqual(pods[0][path: ["status", "podIP"]], pods[1][path: ["status", "podIP"]], "each pod has its own IP")
    }

    func testScaleRolloutRestartUndoAndADeletedPodComesBack() async throws {
        try kubectl("apply", "-f", "-", input: Self.deploymentYAML)
        try kubectl("rollout", "status", "deployment/web", "--timeout=30s")
        let first = try XCTUnwrap(try items("replicasets").first?[path: ["metadata", "name"]]?.stringValue)

        try kubectl("scale", "deployment/web", "--replicas=3")
        try kubectl("rollout", "status", "deployment/web", "--timeout=30s")
        try await eventually(10, "three pods") { try self.items("pods", "-l", "app=web").count == 3 }

        try kubectl("rollout", "restart", "deployment/web")
        let restarted = try kubectl("rollout", "status", "deployment/web", "--timeout=30s").stdout
        XCTAssertTrue(restarted.contains("successfully rolled out"), restarted)
        try await eventually(10, "the old pods gone and three new ones") {
            let pods = try self.items("pods", "-l", "app=web")
            return pods.count == 3 && pods.allSatisfy { !($0[path: ["metadata", "name"]]?.stringValue ?? "").hasPrefix(first + "-") }
        }
        let afterRestart = try items("replicasets")
        XCTAssertEqual(afterRestart.count, 2, "the old ReplicaSet stays, scaled to zero, for undo")
        let old = try XCTUnwrap(afterRestart.first { $0[path: ["metadata", "name"]]?.stringValue == first })
        XCTAssertEqual(old[path: ["spec", "replicas"]]?.intValue, 0)
        let second = try XCTUnwrap(afterRestart.first { $0[path: ["metadata", "name"]]?.stringValue != first })
        XCTAssertEqual(second[path: ["metadata", "annotations", "deployment.kubernetes.io/revision"]]?.stringValue, "2")
        XCTAssertTrue(try kubectl("rollout", "history", "deployment/web").stdout.contains("2"))

        try kubectl("rollout", "undo", "deployment/web")
        try kubectl("rollout", "status", "deployment/web", "--timeout=30s")
        try await eventually(10, "the first ReplicaSet back at three, revision 3") {
            let sets = try self.items("replicasets")
            let back = sets.first { $0[path: ["metadata", "name"]]?.stringValue == first }
            return back?[path: ["spec", "replicas"]]?.intValue == 3
                && back?[path: ["metadata", "annotations", "deployment.kubernetes.io/revision"]]?.stringValue == "3"
                && sets.first { $0[path: ["metadata", "name"]]?.stringValue != first }?[path: ["spec", "replicas"]]?.intValue == 0
        }
        try await eventually(10, "three pods of the first ReplicaSet") {
            let pods = try self.items("pods", "-l", "app=web")
            return pods.count == 3 && pods.allSatisfy { ($0[path: ["metadata", "name"]]?.stringValue ?? "").hasPrefix(first + "-") }
        }

        let victim = try XCTUnwrap(names(try items("pods", "-l", "app=web")).first)
        try kubectl("delete", "pod", victim)
        try await eventually(10, "a replacement pod") {
            let now = self.names(try self.items("pods", "-l", "app=web"))
            return now.count == 3 && !now.contains(victim)
        }

        try kubectl("delete", "deployment", "web")
        try await eventually(10, "the ReplicaSets and pods collected with their Deployment") {
            try self.items("replicasets").isEmpty && self.items("pods").isEmpty
        }
    }

    func testScaleToZeroAndBackKeepsOneReplicaSet() async throws {
        try kubectl("apply", "-f", "-", input: Self.deploymentYAML)
        try kubectl("rollout", "status", "deployment/web", "--timeout=30s")
        try kubectl("scale", "deployment/web", "--replicas=0")
        try await eventually(10, "no pods") { try self.items("pods").isEmpty }
        let ready = try kubectl("get", "deployment", "web", "-o", "jsonpath={.status.replicas}/{.status.availableReplicas}").stdout
        XCTAssertEqual(ready, "/", "zero counts are omitted, as kube-controller-manager writes them")
        try kubectl("scale", "deployment/web", "--replicas=1")
        try kubectl("rollout", "status", "deployment/web", "--timeout=30s")
        XCTAssertEqual(try items("pods").count, 1)
        XCTAssertEqual(try items("replicasets").count, 1)
    }
}
