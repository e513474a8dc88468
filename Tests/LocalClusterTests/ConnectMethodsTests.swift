import Foundation
import KubeCore
import TestSupport
import XCTest
@testable import LocalCluster

/// `pods/exec`, `pods/attach` and `pods/portforward` are routed for GET and POST only, as in
/// kube-apiserver: any other method is 405 MethodNotAllowed with a `metav1.Status`, also when
/// it asks for a WebSocket or SPDY upgrade. Raw requests on the cluster's socket.
final class ConnectMethodsTests: XCTestCase {
    var tc: TestCluster!

    override func setUp() async throws {
        tc = try await TestCluster()
        await tc.createPod([
            "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "shell", "namespace": "default"],
            "spec": ["containers": [["name": "main", "image": "busybox"]]],
        ])
    }

    override func tearDown() async throws { await tc.stop() }

    /// Sends a request head (no body) and reads the response: its head, and its body by Content-Length.
    func send(_ method: String, _ path: String, upgrade: [String]) throws -> (head: String, body: JSONValue) {
        let client = try LoopbackTCP(port: tc.cluster.port, timeout: 5)
        let extra = upgrade.map { $0 + "\r\n" }.joined()
        try client.write("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(tc.cluster.adminToken)\r\n"
            + extra + "Content-Length: 0\r\n\r\n")
        let head = try client.readHead()
        let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        let body = method == "HEAD" ? [] : try client.read(count: length)
        return (head, (try? JSONValue(parsing: body)) ?? .null)
    }

    static let webSocketExec = ["Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol: v5.channel.k8s.io"]
    static let spdyExec = ["Connection: Upgrade", "Upgrade: SPDY/3.1", "X-Stream-Protocol-Version: v4.channel.k8s.io"]
    static let spdyPortForward = ["Connection: Upgrade", "Upgrade: SPDY/3.1", "X-Stream-Protocol-Version: portforward.k8s.io"]
    static let exec = "/api/v1/namespaces/default/pods/shell/exec?command=ls&stdout=true"

    func assertMethodNotAllowed(_ reply: (head: String, body: JSONValue), _ what: String,
                                file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(reply.head.hasPrefix("HTTP/1.1 405"), "\(what): \(reply.head)", file: file, line: line)
        XCTAssertEqual(reply.body["kind"], "Status", what, file: file, line: line)
        XCTAssertEqual(reply.body["reason"], "MethodNotAllowed", what, file: file, line: line)
        XCTAssertEqual(reply.body["code"], .int(405), what, file: file, line: line)
    }

    func testWebSocketExecUpgradeOnPutPatchOrOptionsIsMethodNotAllowed() throws {
        for method in ["PUT", "PATCH", "OPTIONS", "DELETE"] {
            assertMethodNotAllowed(try send(method, Self.exec, upgrade: Self.webSocketExec), "\(method) with Upgrade: websocket")
        }
    }

    func testWebSocketExecUpgradeOnGetStillSwitchesProtocols() throws {
        let reply = try send("GET", Self.exec, upgrade: Self.webSocketExec)
        XCTAssertTrue(reply.head.hasPrefix("HTTP/1.1 101"), reply.head)
    }

    func testSPDYUpgradesOnPutAreMethodNotAllowedAndOnPostSwitchProtocols() throws {
        assertMethodNotAllowed(try send("PUT", Self.exec, upgrade: Self.spdyExec), "PUT exec with Upgrade: SPDY/3.1")
        assertMethodNotAllowed(try send("PUT", "/api/v1/namespaces/default/pods/shell/attach?stdout=true", upgrade: Self.spdyExec),
                               "PUT attach with Upgrade: SPDY/3.1")
        assertMethodNotAllowed(try send("PUT", "/api/v1/namespaces/default/pods/shell/portforward", upgrade: Self.spdyPortForward),
                               "PUT portforward with Upgrade: SPDY/3.1")
        XCTAssertTrue(try send("POST", Self.exec, upgrade: Self.spdyExec).head.hasPrefix("HTTP/1.1 101"))
        XCTAssertTrue(try send("POST", "/api/v1/namespaces/default/pods/shell/portforward", upgrade: Self.spdyPortForward)
            .head.hasPrefix("HTTP/1.1 101"))
    }

    func testPlainRequestsToStreamingSubresourcesAreMethodNotAllowedUnlessGetOrPost() throws {
        for method in ["PUT", "PATCH", "DELETE", "OPTIONS"] {
            assertMethodNotAllowed(try send(method, Self.exec, upgrade: []), "plain \(method)")
        }
        let get = try send("GET", Self.exec, upgrade: [])
        XCTAssertTrue(get.head.hasPrefix("HTTP/1.1 400"), "GET without an upgrade: \(get.head)")
        XCTAssertEqual(get.body["message"], "Upgrade request required")
    }
}
