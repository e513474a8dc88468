import Foundation
import KubeCore
import TestSupport
import XCTest
@testable import LocalCluster

/// Real `kubectl port-forward` (v1.32) against the embedded API server over HTTPS, both ways
/// kubectl connects: SPDY tunnelled in a WebSocket (its default) and the plain SPDY/3.1
/// upgrade it falls back to. Bytes sent to the local port reach the pod's echo service and
/// come back.
final class KubectlPortForwardTests: XCTestCase {
    var tc: TestCluster!
    var kubeconfig = ""
    var workdir: URL!
    var forwards: [Process] = []

    override func setUp() async throws {
        tc = try await TestCluster(useTLS: true)
        workdir = tc.directory.appendingPathComponent("work")
        try FileManager.default.createDirectory(at: workdir, withIntermediateDirectories: true)
        let file = workdir.appendingPathComponent("admin.kubeconfig")
        try tc.cluster.writeAdminKubeconfig(to: file)
        kubeconfig = file.path
        let pod: JSONValue = [
            "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "web", "namespace": "default"],
            "spec": ["containers": [["name": "web", "image": "nginx", "ports": [["containerPort": 8080]]]]],
        ]
        await tc.createPod(pod)
    }

    override func tearDown() async throws {
        for process in forwards where process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        await tc.stop()
    }

    func startPortForward(_ arguments: [String], token: String? = nil, environment: [String: String] = [:]) throws -> RunningProcess {
        var args = ["--kubeconfig", kubeconfig, "-v=6"]
        if let token { args += ["--token", token] }
        let (process, pipe) = try ProcessRunner.start("kubectl", args + ["port-forward"] + arguments, environment: environment)
        forwards.append(process)
        return RunningProcess(process: process, pipe: pipe)
    }

    /// Sends `payload` through the forwarded port from one thread while reading on another
    /// (so neither side's buffers can stall), half-closes, and returns all that came back.
    func roundTrip(port: Int, payload: [UInt8]) throws -> [UInt8] {
        let client = try LoopbackTCP(port: port)
        let writeError = ErrorBox()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            do { try client.write(payload) } catch { writeError.error = error }
            client.finishWriting()
            done.signal()
        }
        let echoed = try client.readToEnd()
        done.wait()
        if let error = writeError.error { throw error }
        return echoed
    }

    final class ErrorBox: @unchecked Sendable { var error: Error? }

    func assertEchoes(through port: Int, forward: RunningProcess, file: StaticString = #filePath, line: UInt = #line) throws {
        let greeting = try roundTrip(port: port, payload: Array("hello through the tunnel\n".utf8))
        XCTAssertEqual(String(decoding: greeting, as: UTF8.self), "hello through the tunnel\n", forward.output, file: file, line: line)
        // Larger than one SPDY frame and than SPDY/3's initial 64 KiB window.
        let big = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let echoed = try roundTrip(port: port, payload: big)
        XCTAssertEqual(echoed.count, big.count, file: file, line: line)
        XCTAssertTrue(echoed == big, "echoed bytes differ from those sent", file: file, line: line)
    }

    func testPortForwardOverWebSocketTunnelEchoesBytesSentToTheLocalPort() throws {
        let port = try LoopbackTCP.freePort()
        let forward = try startPortForward(["--address", "127.0.0.1", "pod/web", "\(port):8080"])
        XCTAssertTrue(forward.wait(for: "Forwarding from 127.0.0.1:\(port) -> 8080"), forward.output)
        try assertEchoes(through: port, forward: forward)
        // A second connection on the same tunnel is a new stream pair (request id).
        let again = try roundTrip(port: port, payload: Array("again".utf8))
        XCTAssertEqual(String(decoding: again, as: UTF8.self), "again")
        XCTAssertTrue(forward.process.isRunning, forward.output)
        XCTAssertTrue(forward.output.contains("GET https://127.0.0.1:\(tc.cluster.port)/api/v1/namespaces/default/pods/web/portforward 101 Switching Protocols"),
                      "kubectl used the WebSocket tunnel: \(forward.output)")
        XCTAssertFalse(forward.output.contains("POST https://"), "no SPDY fallback was needed: \(forward.output)")
    }

    func testPortForwardFallsBackToSPDYUpgradeAndEchoesBytes() throws {
        let port = try LoopbackTCP.freePort()
        let forward = try startPortForward(["--address", "127.0.0.1", "pod/web", "\(port):8080"],
                                           environment: ["KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"])
        XCTAssertTrue(forward.wait(for: "Forwarding from 127.0.0.1:\(port) -> 8080"), forward.output)
        try assertEchoes(through: port, forward: forward)
        XCTAssertTrue(forward.output.contains("POST https://127.0.0.1:\(tc.cluster.port)/api/v1/namespaces/default/pods/web/portforward 101 Switching Protocols"),
                      "kubectl used the SPDY/3.1 upgrade: \(forward.output)")
    }

    func testPortForwardToPortNoContainerDeclaresReportsErrorAndClosesConnection() throws {
        for environment in [[:], ["KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"]] {
            let port = try LoopbackTCP.freePort()
            let forward = try startPortForward(["--address", "127.0.0.1", "pod/web", "\(port):9999"], environment: environment)
            XCTAssertTrue(forward.wait(for: "Forwarding from 127.0.0.1:\(port) -> 9999"), forward.output)
            let echoed = try roundTrip(port: port, payload: Array("anyone there?".utf8))
            XCTAssertEqual(echoed, [], "nothing listens on 9999, so nothing comes back")
            XCTAssertTrue(forward.wait(for: "error forwarding port 9999 to pod web_default"), forward.output)
            XCTAssertTrue(forward.output.contains("unable to do port forwarding"), forward.output)
            // kubectl 1.32 gives up on the tunnel after an error from the pod and exits.
            let deadline = Date().addingTimeInterval(15)
            while forward.process.isRunning && Date() < deadline { usleep(50_000) }
            XCTAssertFalse(forward.process.isRunning, "kubectl exits after the error: \(forward.output)")
        }
    }

    func testPortForwardWithoutCreatePermissionOnPodsPortforwardIsForbidden() async throws {
        // A ServiceAccount that may read pods (kubectl's first GET) but not port-forward.
        _ = await tc.send("POST", "/api/v1/namespaces/default/serviceaccounts",
                          json: ["apiVersion": "v1", "kind": "ServiceAccount", "metadata": ["name": "reader"]])
        _ = await tc.send("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles", json: [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": ["name": "pod-reader"],
            "rules": [["apiGroups": [""], "resources": ["pods", "pods/portforward"], "verbs": ["get", "list"]]],
        ])
        _ = await tc.send("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", json: [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": ["name": "pod-reader"],
            "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"],
            "subjects": [["kind": "ServiceAccount", "name": "reader", "namespace": "default"]],
        ])
        let tokenReply = await tc.send("POST", "/api/v1/namespaces/default/serviceaccounts/reader/token",
                                       json: ["apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": [:]])
        let token = try XCTUnwrap(tokenReply.body[path: ["status", "token"]]?.stringValue, "\(tokenReply.body)")

        for environment in [[:], ["KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"]] {
            let port = try LoopbackTCP.freePort()
            let result = try ProcessRunner.run("kubectl", ["--kubeconfig", kubeconfig, "--token", token, "port-forward",
                                                           "--address", "127.0.0.1", "pod/web", "\(port):8080"],
                                               environment: environment, timeout: 30)
            XCTAssertNotEqual(result.status, 0, result.output)
            XCTAssertTrue(result.stderr.contains(#"pods "web" is forbidden: User "system:serviceaccount:default:reader" cannot create resource "pods/portforward" in API group "" in the namespace "default""#),
                          result.output)
        }
    }

    func testPortForwardToUnknownPodIsNotFound() throws {
        let port = try LoopbackTCP.freePort()
        let result = try ProcessRunner.run("kubectl", ["--kubeconfig", kubeconfig, "port-forward", "pod/missing", "\(port):8080"],
                                           timeout: 30)
        XCTAssertNotEqual(result.status, 0, result.output)
        XCTAssertTrue(result.stderr.contains(#"pods "missing" not found"#), result.output)
    }
}
