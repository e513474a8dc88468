import AgentGateAPI
import Foundation
import Gateway
import KubeCore
import Masking
import XCTest

/// The masking key shared by gateway replicas through one mounted file, and its rotation.
final class MaskingKeyFileTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentgate-key-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// A connection whose MaskingRule hashes ConfigMap `data.api-key`.
    static let config = GatewayConnectionConfig(
        namespace: "default", name: "conn", generation: 1, uid: "uid-1", serviceAccountName: "agent", endpoint: nil,
        identity: AgentIdentity(issuer: "https://issuer.example", audiences: ["a"]), approval: nil, access: nil,
        recording: RecordingPolicySpec(), recordingPolicyName: nil,
        maskingRules: [NamedMaskingRule(name: "keys", spec: MaskingRuleSpec(
            fieldRules: [MaskingFieldRule(name: "api-key", apiGroups: [""], resources: ["configmaps"], paths: ["data.api-key"])],
            replacement: MaskReplacement(style: .hash)))],
        credentialExpiresAt: nil)

    static let configMap = Array(#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"api-key":"value-to-hash-123"}}"#.utf8)

    /// What a replica built on `registry` shows for the ConfigMap's `api-key`.
    func hashed(_ registry: ConnectionRegistry) throws -> String {
        let connection = try XCTUnwrap(registry.connection(namespace: "default", name: "conn"))
        let masked = connection.masker.maskJSON(Self.configMap, resource: MaskedResource(group: "", resource: "configmaps"))
        let value = try XCTUnwrap(try JSONValue(parsing: masked)[path: ["data", "api-key"]]?.stringValue)
        XCTAssertNotEqual(value, "value-to-hash-123", "the value is masked")
        return value
    }

    func replica(keyFile: String) throws -> (ConnectionRegistry, MaskingKeyFile) {
        let registry = ConnectionRegistry()
        let key = try MaskingKeyFile(path: keyFile, registry: registry)
        registry.put(Self.config, token: "sa-token")
        return (registry, key)
    }

    func testReplicasReadingOneKeyFileHashAValueAlikeAndARotationChangesTheHashOnAll() throws {
        let file = directory.appendingPathComponent("key").path
        try "first-key-0123456789abcdef\n".write(toFile: file, atomically: true, encoding: .utf8)
        let (a, keyA) = try replica(keyFile: file)
        let (b, keyB) = try replica(keyFile: file)
        let (c, keyC) = try replica(keyFile: file)
        let before = try hashed(a)
        XCTAssertEqual(try hashed(b), before)
        XCTAssertEqual(try hashed(c), before)
        XCTAssertNotEqual(before, try hashed(ConnectionRegistry().putting(Self.config)), "a replica with its own key hashes differently")

        try "second-key-0123456789abcdef".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertTrue(keyA.reload())
        XCTAssertTrue(keyB.reload())
        XCTAssertTrue(keyC.reload())
        let after = try hashed(a)
        XCTAssertNotEqual(after, before, "the rotated key hashes anew")
        XCTAssertEqual(try hashed(b), after)
        XCTAssertEqual(try hashed(c), after)
        XCTAssertEqual(keyA.rotationCount, 1)
        XCTAssertFalse(keyA.reload(), "an unchanged file is no rotation")
    }

    func testAMissingOrShortKeyFileIsRefusedAtStartAndKeptOnReload() throws {
        let file = directory.appendingPathComponent("key").path
        XCTAssertThrowsError(try replica(keyFile: file)) { error in
            XCTAssertTrue("\(error)".contains("--masking-key-file \(file): cannot be read"), "\(error)")
        }
        try "short".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try replica(keyFile: file)) { error in
            XCTAssertTrue("\(error)".contains("the key has 5 bytes; it needs at least 16"), "\(error)")
        }
        try "a-good-key-0123456789".write(toFile: file, atomically: true, encoding: .utf8)
        let (registry, key) = try replica(keyFile: file)
        let before = try hashed(registry)
        try "bad".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertFalse(key.reload(), "a broken rotation keeps the key in use")
        XCTAssertEqual(try hashed(registry), before)
    }
}

private extension ConnectionRegistry {
    func putting(_ config: GatewayConnectionConfig) -> ConnectionRegistry {
        put(config, token: "sa-token")
        return self
    }
}
