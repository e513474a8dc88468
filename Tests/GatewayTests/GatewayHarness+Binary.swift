import AgentGateAPI
import Foundation
import KubeCore
import TestSupport
import XCTest

/// The real `agentgate gateway` binary (built by `swift build`) in front of the harness's
/// cluster and store, configured as the operator would (the connection Secret).
struct GatewayProcess {
    var process: Process
    var port: Int
    var adminPort: Int
    var dataDirectory: URL
    var output: LockedText

    var connectionURL: String { "http://127.0.0.1:\(port)/c/default/conn" }
    var adminURL: String { "http://127.0.0.1:\(adminPort)" }
    var adminToken: String {
        (try? String(contentsOf: dataDirectory.appendingPathComponent("admin-token"), encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }
}

extension GatewayHarness {
    static var binary: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/agentgate")
    }

    /// Writes the connection Secret for ``config`` and starts a gateway process on ``storeURL``
    /// with its own data directory `name`; returns once it reports its ports.
    /// `storeArguments` replaces `--store <storeURL>`; `extraArguments` are added.
    func startGatewayBinary(name: String, storeArguments: [String]? = nil, extraArguments: [String] = []) async throws -> GatewayProcess {
        guard FileManager.default.isExecutableFile(atPath: Self.binary.path) else {
            throw XCTSkip("\(Self.binary.path) is missing: run `swift build` first")
        }
        _ = await cluster.request(method: "POST", path: "/api/v1/namespaces",
                                  body: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "agentgate-system"]])
        let encoded = try JSONEncoder().encode(config)
        try await cluster.applyObject([
            "apiVersion": "v1", "kind": "Secret",
            "metadata": ["name": .string(GatewayConnectionConfig.secretName(namespace: "default", name: "conn")),
                         "namespace": "agentgate-system",
                         "labels": [.init(stringLiteral: GatewayConnectionConfig.managedByLabel): .string(GatewayConnectionConfig.managedByValue)]],
            "data": [.init(stringLiteral: GatewayConnectionConfig.configKey): .string(encoded.base64EncodedString()),
                     .init(stringLiteral: GatewayConnectionConfig.tokenKey): .string(Data(saToken.utf8).base64EncodedString())],
        ])
        let kubeconfig = directory.appendingPathComponent("gateway.kubeconfig")
        try cluster.adminKubeconfig().write(to: kubeconfig, atomically: true, encoding: .utf8)
        let dataDirectory = directory.appendingPathComponent(name)
        let (process, pipe) = try ProcessRunner.start(Self.binary.path, [
            "gateway", "--kubeconfig", kubeconfig.path, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
            "--data-dir", dataDirectory.path,
        ] + (storeArguments ?? ["--store", storeURL]) + extraArguments)
        terminateOnStop(process)
        let output = LockedText()
        pipe.fileHandleForReading.readabilityHandler = { output.append(String(decoding: $0.availableData, as: UTF8.self)) }
        do {
            try await eventually(60, "the gateway binary reports its port: \(output.text)") {
                output.text.contains("admin API on port") || !process.isRunning
            }
        } catch {
            process.terminate()
            throw error
        }
        func number(after marker: String) -> Int? {
            guard let range = output.text.range(of: marker) else { return nil }
            return Int(output.text[range.upperBound...].prefix { $0.isNumber })
        }
        guard let port = number(after: "(port "), let adminPort = number(after: "admin API on port ") else {
            process.terminate()
            throw TimeoutError(description: "the gateway binary did not start: \(output.text)")
        }
        return GatewayProcess(process: process, port: port, adminPort: adminPort, dataDirectory: dataDirectory, output: output)
    }
}
