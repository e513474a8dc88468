import Foundation
import KubeCore
import TestSupport
import XCTest
@testable import LocalCluster

/// StatefulSets, Jobs, Services' EndpointSlices, the Events that controllers, the scheduler
/// and the kubelet record, and `logs`/`exec`/`port-forward` on a Deployment's pod, through
/// real kubectl (v1.32) against the embedded cluster.
final class KubectlWorkloadKindsTests: XCTestCase {
    var tc: TestCluster!
    var kubeconfig = ""
    var workdir: URL!
    var processes: [Process] = []

    override func setUp() async throws {
        tc = try await TestCluster(useTLS: true)
        workdir = tc.directory.appendingPathComponent("work")
        try FileManager.default.createDirectory(at: workdir, withIntermediateDirectories: true)
        let file = workdir.appendingPathComponent("admin.kubeconfig")
        try tc.cluster.writeAdminKubeconfig(to: file)
        kubeconfig = file.path
    }

    override func tearDown() async throws {
        for process in processes where process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        await tc.stop()
    }

    @discardableResult
    func kubectl(_ arguments: String..., input: String? = nil, expectSuccess: Bool = true,
                 file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        try KubectlWorkloadTests.kubectl(kubeconfig: kubeconfig, workdir: workdir, arguments, input: input,
                                         expectSuccess: expectSuccess, file: file, line: line)
    }

    func items(_ arguments: String...) throws -> [JSONValue] {
        let output = try KubectlWorkloadTests.kubectl(kubeconfig: kubeconfig, workdir: workdir, ["get"] + arguments + ["-o", "json"]).stdout
        return try JSONValue(parsing: Array(output.utf8))["items"]?.arrayValue ?? []
    }

    static let statefulSetYAML = """
        apiVersion: apps/v1
        kind: StatefulSet
        metadata:
          name: db
          namespace: default
        spec:
          serviceName: db
          replicas: 3
          selector:
            matchLabels: {app: db}
          template:
            metadata:
              labels: {app: db}
            spec:
              containers:
                - name: postgres
                  image: postgres:17
          volumeClaimTemplates:
            - metadata: {name: data}
              spec:
                accessModes: [ReadWriteOnce]
                resources:
                  requests: {storage: 1Gi}
        """

    func testStatefulSetCreatesOrderedPodsScalesDownFromTheTopAndRollsOut() async throws {
        try kubectl("apply", "-f", "-", input: Self.statefulSetYAML)
        let status = try kubectl("rollout", "status", "statefulset/db", "--timeout=30s").stdout
        XCTAssertTrue(status.contains("partitioned roll out complete") || status.contains("roll out complete"), status)
        let pods = try items("pods", "-l", "app=db")
        XCTAssertEqual(pods.compactMap { $0[path: ["metadata", "name"]]?.stringValue }.sorted(), ["db-0", "db-1", "db-2"])
        let first = try XCTUnwrap(pods.first { $0[path: ["metadata", "name"]] == "db-0" })
        XCTAssertEqual(first[path: ["metadata", "labels", "statefulset.kubernetes.io/pod-name"]]?.stringValue, "db-0")
        XCTAssertEqual(first[path: ["metadata", "labels", "apps.kubernetes.io/pod-index"]]?.stringValue, "0")
        XCTAssertEqual(first[path: ["spec", "hostname"]]?.stringValue, "db-0")
        XCTAssertEqual(first[path: ["spec", "subdomain"]]?.stringValue, "db")
        XCTAssertEqual(first[path: ["status", "phase"]]?.stringValue, "Running")
        XCTAssertEqual(first[path: ["spec", "volumes"]]?.arrayValue?.first?[path: ["persistentVolumeClaim", "claimName"]]?.stringValue,
                       "data-db-0")
        XCTAssertEqual(Set(try items("pvc").compactMap { $0[path: ["metadata", "name"]]?.stringValue }),
                       ["data-db-0", "data-db-1", "data-db-2"])
        let statefulSet = try XCTUnwrap(try items("statefulsets").first)
        XCTAssertEqual(statefulSet[path: ["status", "readyReplicas"]]?.intValue, 3)
        XCTAssertEqual(statefulSet[path: ["status", "currentRevision"]], statefulSet[path: ["status", "updateRevision"]])
        let revision = statefulSet[path: ["status", "updateRevision"]]?.stringValue ?? ""
        XCTAssertTrue(revision.hasPrefix("db-"), revision)
        XCTAssertEqual(first[path: ["metadata", "labels", "controller-revision-hash"]]?.stringValue, revision)
        // Created in order: db-0's creation event comes before db-1's and db-2's.
        let events = try kubectl("get", "events", "--field-selector", "involvedObject.name=db,reason=SuccessfulCreate",
                                 "--sort-by=.metadata.creationTimestamp", "-o", "jsonpath={.items[*].message}").stdout
        XCTAssertTrue(events.hasPrefix("create Pod db-0 in StatefulSet db successful"), events)

        try kubectl("scale", "statefulset/db", "--replicas=1")
        try await eventually(10, "db-1 and db-2 gone") {
            try self.items("pods", "-l", "app=db").compactMap { $0[path: ["metadata", "name"]]?.stringValue } == ["db-0"]
        }
        try kubectl("scale", "statefulset/db", "--replicas=2")
        try kubectl("set", "image", "statefulset/db", "postgres=postgres:18")
        try kubectl("rollout", "status", "statefulset/db", "--timeout=30s")
        try await eventually(10, "both pods on the new revision") {
            let pods = try self.items("pods", "-l", "app=db")
            return pods.count == 2 && pods.allSatisfy {
                $0[path: ["spec", "containers"]]?.arrayValue?.first?["image"]?.stringValue == "postgres:18"
            }
        }
    }

    func testJobRunsPodsToCompletion() async throws {
        // (`kubectl create job` posts protobuf, which this server does not decode for Jobs.)
        try kubectl("apply", "-f", "-", input: """
            apiVersion: batch/v1
            kind: Job
            metadata: {name: migrate, namespace: default}
            spec:
              template:
                spec:
                  restartPolicy: Never
                  containers:
                    - name: migrate
                      image: busybox:1.36
                      command: [echo, done]
            """)
        let waited = try kubectl("wait", "--for=condition=complete", "job/migrate", "--timeout=30s").stdout
        XCTAssertTrue(waited.contains("job.batch/migrate condition met"), waited)
        let job = try XCTUnwrap(try items("jobs").first)
        XCTAssertEqual(job[path: ["status", "succeeded"]]?.intValue, 1)
        XCTAssertNotNil(job[path: ["status", "completionTime"]])
        XCTAssertNotNil(job[path: ["status", "startTime"]])
        let uid = try XCTUnwrap(job[path: ["metadata", "uid"]]?.stringValue)
        XCTAssertEqual(job[path: ["spec", "selector", "matchLabels", "batch.kubernetes.io/controller-uid"]]?.stringValue, uid)
        let pods = try items("pods", "-l", "job-name=migrate")
        XCTAssertEqual(pods.count, 1)
        let pod = try XCTUnwrap(pods.first)
        XCTAssertNotNil((pod[path: ["metadata", "name"]]?.stringValue ?? "").range(of: "^migrate-[bcdfghjklmnpqrstvwxz2456789]{5}$",
                                                                               options: .regularExpression))
        XCTAssertEqual(pod[path: ["status", "phase"]]?.stringValue, "Succeeded")
        XCTAssertEqual(pod[path: ["status", "containerStatuses"]]?.arrayValue?.first?[path: ["state", "terminated", "reason"]]?.stringValue,
                       "Completed")
        let described = try kubectl("describe", "job", "migrate").stdout
        XCTAssertTrue(described.contains("1 Succeeded"), described)
        XCTAssertTrue(described.contains("Completed"), described)
    }

    func testServiceGetsAnEndpointSliceOfItsReadyPods() async throws {
        try kubectl("apply", "-f", "-", input: KubectlWorkloadTests.deploymentYAML)
        try kubectl("expose", "deployment", "web", "--port=80", "--target-port=8080")
        try kubectl("rollout", "status", "deployment/web", "--timeout=30s")
        @Sendable func slice() throws -> JSONValue? { try self.items("endpointslices", "-l", "kubernetes.io/service-name=web").first }
        try await eventually(10, "an EndpointSlice with both pods") {
            try slice()?["endpoints"]?.arrayValue?.count == 2
        }
        let endpointSlice = try XCTUnwrap(try slice())
        XCTAssertTrue((endpointSlice[path: ["metadata", "name"]]?.stringValue ?? "").hasPrefix("web-"))
        XCTAssertEqual(endpointSlice["addressType"]?.stringValue, "IPv4")
        XCTAssertEqual(endpointSlice[path: ["metadata", "labels", "endpointslice.kubernetes.io/managed-by"]]?.stringValue,
                       "endpointslice-controller.k8s.io")
        XCTAssertEqual(endpointSlice["ports"]?.arrayValue?.first?["port"]?.intValue, 8080)
        let podIPs = Set(try items("pods", "-l", "app=web").compactMap { $0[path: ["status", "podIP"]]?.stringValue })
        let addresses = Set((endpointSlice["endpoints"]?.arrayValue ?? []).compactMap { $0["addresses"]?.arrayValue?.first?.stringValue })
        XCTAssertEqual(addresses, podIPs)
        XCTAssertTrue((endpointSlice["endpoints"]?.arrayValue ?? []).allSatisfy {
            $0[path: ["conditions", "ready"]]?.boolValue == true && $0[path: ["targetRef", "kind"]]?.stringValue == "Pod"
        })

        try kubectl("scale", "deployment/web", "--replicas=1")
        try await eventually(10, "the slice down to one endpoint") { try slice()?["endpoints"]?.arrayValue?.count == 1 }
        try kubectl("delete", "service", "web")
        try await eventually(10, "the slice collected with its Service") { try slice() == nil }
    }

    func testEventsShowTheRolloutAndDescribeListsThem() async throws {
        try kubectl("apply", "-f", "-", input: KubectlWorkloadTests.deploymentYAML)
        try kubectl("rollout", "status", "deployment/web", "--timeout=30s")
        try await eventually(10, "each step's event") {
            let reasons = Set(try self.items("events").compactMap { $0["reason"]?.stringValue })
            return reasons.isSuperset(of: ["ScalingReplicaSet", "SuccessfulCreate", "Scheduled", "Pulled", "Created", "Started"])
        }
        let events = try kubectl("get", "events").stdout
        XCTAssertTrue(events.contains("Scaled up replica set web-"), events)
        let deployment = try kubectl("describe", "deployment", "web").stdout
        XCTAssertNotNil(deployment.range(of: #"ScalingReplicaSet\s+\S+\s+deployment-controller\s+Scaled up replica set web-\S+ from 0 to 2"#,
                                         options: .regularExpression), deployment)
        let pod = try XCTUnwrap(try items("pods").first?[path: ["metadata", "name"]]?.stringValue)
        try await eventually(10, "the pod's Started event") {
            try self.items("events", "--field-selector", "involvedObject.name=\(pod),reason=Started").count == 1
        }
        let described = try kubectl("describe", "pod", pod).stdout
        XCTAssertTrue(described.contains("Successfully assigned default/\(pod) to agentgate-dev"), described)
        XCTAssertTrue(described.contains("Started container web"), described)
        XCTAssertNotNil(described.range(of: #"Node:\s+agentgate-dev/127.0.0.1"#, options: .regularExpression), described)
        XCTAssertNotNil(described.range(of: #"Port:\s+8080/TCP"#, options: .regularExpression), described)
        let kubectlEvents = try kubectl("events", "--for", "pod/\(pod)").stdout
        XCTAssertTrue(kubectlEvents.contains("Pulled"), kubectlEvents)
    }

    func testLogsExecAndPortForwardReachADeploymentsPod() throws {
        try kubectl("apply", "-f", "-", input: KubectlWorkloadTests.deploymentYAML)
        try kubectl("rollout", "status", "deployment/web", "--timeout=30s")
        let pod = try XCTUnwrap(try items("pods").first?[path: ["metadata", "name"]]?.stringValue)
        XCTAssertTrue(try kubectl("logs", pod).stdout.contains("from \(pod)"))
        XCTAssertTrue(try kubectl("logs", "deployment/web").stdout.contains("log line"))
        XCTAssertEqual(try kubectl("exec", pod, "--", "echo", "hello").stdout, "hello\n")
        XCTAssertEqual(try kubectl("exec", "deploy/web", "--", "hostname").stdout.isEmpty, false)

        let port = try LoopbackTCP.freePort()
        let (process, pipe) = try ProcessRunner.start("kubectl", ["--kubeconfig", kubeconfig, "port-forward", "--address", "127.0.0.1",
                                                                  "deployment/web", "\(port):8080"])
        processes.append(process)
        let forward = RunningProcess(process: process, pipe: pipe)
        XCTAssertTrue(forward.wait(for: "Forwarding from 127.0.0.1:\(port) -> 8080"), forward.output)
        let client = try LoopbackTCP(port: port)
        try client.write(Array("ping".utf8))
        client.finishWriting()
        XCTAssertEqual(String(decoding: try client.readToEnd(), as: UTF8.self), "ping")
    }
}
