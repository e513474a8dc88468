import Foundation
import KubeCore
import TestSupport
import XCTest
@testable import LocalCluster

/// `kubectl create deployment` and `kubectl create job` post their objects as protobuf
/// (`application/vnd.kubernetes.protobuf`, no JSON fallback): the server stores what kubectl
/// built, the same object `--dry-run=client -o json` prints, pointer zeros included.
final class KubectlCreateWorkloadProtobufTests: XCTestCase {
    private var tc: TestCluster!
    private var kubeconfig = ""

    override func setUp() async throws {
        tc = try await TestCluster(useTLS: true)
        kubeconfig = try tc.adminKubeconfig()
    }

    override func tearDown() async throws { await tc.stop() }

    private func kubectl(_ args: [String]) throws -> ProcessResult {
        try ProcessRunner.run("kubectl", ["--kubeconfig", kubeconfig, "-n", "default"] + args, timeout: 60)
    }

    /// What kubectl would send, as JSON, and what the server stored.
    private func createAndRead(_ create: [String], resource: String, name: String) throws -> (sent: JSONValue, stored: JSONValue) {
        let dryRun = try kubectl(create + ["--dry-run=client", "-o", "json"])
        XCTAssertEqual(dryRun.status, 0, dryRun.output)
        let created = try kubectl(create + ["-v=8"])
        XCTAssertEqual(created.status, 0, created.output)
        XCTAssertTrue(created.stdout.contains("/\(name) created"), created.output)
        XCTAssertTrue(created.stderr.contains("application/vnd.kubernetes.protobuf"), "kubectl posted protobuf: \(created.stderr)")
        let read = try kubectl(["get", resource, name, "-o", "json"])
        XCTAssertEqual(read.status, 0, read.output)
        return (try JSONValue(parsing: Array(dryRun.stdout.utf8)), try JSONValue(parsing: Array(read.stdout.utf8)))
    }

    func testKubectlCreateDeploymentIsStoredAsKubectlBuiltIt() throws {
        let (sent, stored) = try createAndRead(["create", "deployment", "web", "--image=nginx:1.27", "--replicas=3", "--port=8080",
                                                "--", "nginx", "-g", "daemon off;"], resource: "deployment", name: "web")
        for path in [["spec", "replicas"], ["spec", "selector"], ["spec", "template", "metadata", "labels"],
                     ["metadata", "labels"]] {
            XCTAssertEqual(stored[path: path], sent[path: path], "\(path)")
        }
        XCTAssertEqual(stored[path: ["spec", "replicas"]], .int(3))
        let container = try XCTUnwrap(stored[path: ["spec", "template", "spec", "containers"]]?.arrayValue?.first)
        let sentContainer = try XCTUnwrap(sent[path: ["spec", "template", "spec", "containers"]]?.arrayValue?.first)
        for key in ["name", "image", "command", "ports"] {
            XCTAssertEqual(container[key]?.serialized(), sentContainer[key]?.serialized(), key)
        }
        XCTAssertEqual(container["image"], "nginx:1.27")
        XCTAssertNil(container["stdin"], "a plain bool kubectl left false is not stored as `false`")
        XCTAssertNil(stored[path: ["metadata", "generateName"]], "an unset string stays out")
    }

    func testKubectlCreateDeploymentWithZeroReplicasKeepsZero() throws {
        let (_, stored) = try createAndRead(["create", "deployment", "idle", "--image=nginx", "--replicas=0"],
                                            resource: "deployment", name: "idle")
        XCTAssertEqual(stored[path: ["spec", "replicas"]], .int(0), "replicas is a pointer: an explicit 0 is not defaulted to 1")
    }

    func testKubectlCreateJobIsStoredAsKubectlBuiltIt() throws {
        let (sent, stored) = try createAndRead(["create", "job", "once", "--image=busybox", "--", "echo", "hello"],
                                               resource: "job", name: "once")
        XCTAssertEqual(stored[path: ["spec", "template", "spec", "restartPolicy"]], "Never")
        XCTAssertEqual(stored[path: ["spec", "template", "spec", "restartPolicy"]], sent[path: ["spec", "template", "spec", "restartPolicy"]])
        let container = try XCTUnwrap(stored[path: ["spec", "template", "spec", "containers"]]?.arrayValue?.first)
        XCTAssertEqual(container["name"], "once")
        XCTAssertEqual(container["image"], "busybox")
        XCTAssertEqual(container["command"], ["echo", "hello"])
    }

    /// Fields kubectl create does not send but a protobuf client may: quantities, IntOrString,
    /// negative int32 and pointer bools, read from hand-built wire bytes.
    func testProtobufDeploymentDecodesQuantitiesIntOrStringAndPointerFields() throws {
        func length(_ number: Int, _ bytes: [UInt8]) -> [UInt8] { [UInt8(number << 3 | 2)] + varint(UInt64(bytes.count)) + bytes }
        func number(_ number: Int, _ value: UInt64) -> [UInt8] { [UInt8(number << 3)] + varint(value) }
        func varint(_ value: UInt64) -> [UInt8] {
            var value = value, out: [UInt8] = []
            while value >= 0x80 { out.append(UInt8(value & 0x7f) | 0x80); value >>= 7 }
            return out + [UInt8(value)]
        }
        func text(_ s: String) -> [UInt8] { Array(s.utf8) }
        let quantity = length(1, text("cpu")) + length(2, length(1, text("250m")))
        let container = length(1, text("app")) + length(2, text("img")) + length(8, length(2, quantity)) + number(16, 0)
        let strategy = length(1, text("RollingUpdate"))
            + length(2, length(1, number(1, 1) + length(3, text("25%"))) + length(2, number(1, 0) + number(2, 2)))
        let spec = number(1, 0) + length(3, length(2, length(2, container) + number(21, 0))) + length(4, strategy)
            + number(5, UInt64(bitPattern: -1))
        let object = length(1, length(1, text("d"))) + length(2, spec)
        let body = KubernetesProtobuf.magic + length(1, length(1, text("apps/v1")) + length(2, text("Deployment"))) + length(2, object)

        let decoded = try KubernetesProtobuf.decode(body)
        XCTAssertEqual(decoded["kind"], "Deployment")
        XCTAssertEqual(decoded[path: ["spec", "replicas"]], .int(0))
        XCTAssertEqual(decoded[path: ["spec", "minReadySeconds"]], .int(-1))
        XCTAssertEqual(decoded[path: ["spec", "strategy", "rollingUpdate", "maxUnavailable"]], "25%")
        XCTAssertEqual(decoded[path: ["spec", "strategy", "rollingUpdate", "maxSurge"]], .int(2))
        XCTAssertEqual(decoded[path: ["spec", "template", "spec", "automountServiceAccountToken"]], .bool(false))
        let stored = try XCTUnwrap(decoded[path: ["spec", "template", "spec", "containers"]]?.arrayValue?.first)
        XCTAssertEqual(stored[path: ["resources", "requests", "cpu"]], "250m")
        XCTAssertNil(stored["stdin"])
    }
}
