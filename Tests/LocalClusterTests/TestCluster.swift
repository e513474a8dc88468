import HTTPServing
import AgentGateAPI
import Foundation
import KubeCore
import NIOHTTP1
import TestSupport
import XCTest
@testable import LocalCluster

/// A local cluster for one test: in-memory, random port, AgentGate CRDs installed, with
/// helpers that send requests through the real API handlers.
final class TestCluster {
    let cluster: LocalCluster
    let directory: URL

    init(useTLS: Bool = false, watchHistory: Int = 10_000, bookmarkInterval: Duration = .seconds(30)) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentgate-test-\(UUID().uuidString)")
        var configuration = LocalCluster.Configuration(dataDirectory: directory, port: 0, useTLS: useTLS)
        configuration.customResourceDefinitions = AgentGateCRDs.all.map(\.yaml)
        configuration.watchHistory = watchHistory
        configuration.bookmarkInterval = bookmarkInterval
        cluster = try await LocalCluster.start(configuration)
    }

    func stop() async {
        await cluster.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Writes the admin kubeconfig into the cluster's directory; its path, for real kubectl.
    func adminKubeconfig() throws -> String {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("admin.kubeconfig")
        try cluster.writeAdminKubeconfig(to: file)
        return file.path
    }

    /// Creates `pod` (in namespace default) through the API handlers; a refusal fails the test.
    func createPod(_ pod: JSONValue, file: StaticString = #filePath, line: UInt = #line) async {
        let created = await send("POST", "/api/v1/namespaces/default/pods", json: pod)
        XCTAssertEqual(created.status, 201, "\(created.body)", file: file, line: line)
    }

    struct Reply {
        var status: Int
        var body: JSONValue
        var raw: [UInt8]
        var stream: AsyncStream<[UInt8]>?
        var message: String { body["message"]?.stringValue ?? "" }
    }

    /// Sends a request as `token` (default: the admin) through the API handlers.
    func send(_ method: String, _ path: String, json: JSONValue? = nil, body: String? = nil,
              contentType: String = "application/json", accept: String? = nil, token: String? = nil) async -> Reply {
        var headers = HTTPHeaders()
        let bearer = token ?? cluster.adminToken
        if !bearer.isEmpty { headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        headers.add(name: "Content-Type", value: contentType)
        if let accept { headers.add(name: "Accept", value: accept) }
        let bytes = json.map { $0.serialized() } ?? body.map { Array($0.utf8) } ?? []
        let request = HTTPRequest(method: method, uri: path, headers: headers, body: bytes,
                                  bodyTooLarge: bytes.count > 3 * 1024 * 1024, remoteAddress: nil)
        let response = await cluster.apiServer.handle(request)
        switch response.body {
        case .bytes(let raw):
            return Reply(status: response.status, body: (try? JSONValue(parsing: raw)) ?? .null, raw: raw, stream: nil)
        case .stream(let stream):
            return Reply(status: response.status, body: .null, raw: [], stream: stream)
        }
    }

    /// Sends one request over a real TCP connection to the cluster's plain-HTTP port, as the
    /// admin (HTTP/1.1, `Connection: close`): for behaviour that depends on what is on the
    /// wire, such as a DELETE's body next to its query.
    func sendOverHTTP(_ method: String, _ path: String, body: String = "",
                      contentType: String = "application/json") throws -> Reply {
        let client = try LoopbackTCP(port: cluster.port)
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(cluster.adminToken)\r\n"
        if !body.isEmpty { head += "Content-Type: \(contentType)\r\n" }
        head += "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        try client.write(head + body)
        let raw = try client.readToEnd()
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, raw.count - 3)).first(where: { raw[$0..<$0 + 4].elementsEqual(separator) }) else {
            throw MalformedResponse(received: String(decoding: raw, as: UTF8.self))
        }
        let statusLine = String(decoding: raw[..<end], as: UTF8.self).split(separator: "\r\n").first ?? ""
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        let bytes = Array(raw[(end + 4)...])
        return Reply(status: status, body: (try? JSONValue(parsing: bytes)) ?? .null, raw: bytes, stream: nil)
    }

    struct MalformedResponse: Error { var received: String }

    /// Reads `count` watch events (parsed lines) from a streamed reply, failing after `timeout`.
    static func events(_ reply: Reply, count: Int, timeout: Double = 5) async throws -> [JSONValue] {
        guard let stream = reply.stream else { throw XCTSkip("not a stream: \(reply.status) \(reply.body)") }
        return try await withThrowingTaskGroup(of: [JSONValue].self) { group in
            group.addTask {
                var events: [JSONValue] = []
                var buffer: [UInt8] = []
                for await chunk in stream {
                    buffer += chunk
                    while let newline = buffer.firstIndex(of: 0x0a) {
                        let line = Array(buffer[..<newline])
                        buffer.removeSubrange(...newline)
                        events.append(try JSONValue(parsing: line))
                        if events.count == count { return events }
                    }
                }
                return events
            }
            group.addTask {
                try await Task.sleep(for: .seconds(timeout))
                return []
            }
            let first = try await group.next() ?? []
            group.cancelAll()
            return first
        }
    }

    func createNamespace(_ name: String) async {
        _ = await send("POST", "/api/v1/namespaces", json: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(name)]])
    }

    /// A valid AgentConnection in `namespace`.
    static func connection(_ name: String, namespace: String = "default", serviceAccount: String = "agent-sa") -> JSONValue {
        [
            "apiVersion": "agentgate.io/v1alpha1", "kind": "AgentConnection",
            "metadata": ["name": .string(name), "namespace": .string(namespace)],
            "spec": [
                "serviceAccountName": .string(serviceAccount),
                "identity": ["issuer": "https://issuer.example.com", "audiences": ["agentgate"], "allowedSubjects": ["agent-1"]],
            ],
        ]
    }
}
