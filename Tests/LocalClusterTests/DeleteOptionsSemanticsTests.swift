import Foundation
import KubeCore
import XCTest
@testable import LocalCluster

/// Where DELETE reads its DeleteOptions, as kube-apiserver's delete handlers do: from a
/// non-empty body, and only then; from the query when the body is empty. Sent over a real
/// TCP connection, because the point is what is on the wire.
final class DeleteOptionsSemanticsTests: XCTestCase {
    var tc: TestCluster!
    let configMaps = "/api/v1/namespaces/default/configmaps"

    override func setUp() async throws { tc = try await TestCluster() }
    override func tearDown() async throws { await tc.stop() }

    func createConfigMap(_ name: String, labels: JSONValue = [:]) async throws -> JSONValue {
        let created = await tc.send("POST", configMaps, json: [
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": .string(name), "labels": labels], "data": ["k": "v"],
        ])
        XCTAssertEqual(created.status, 201, created.message)
        return created.body
    }

    func status(of name: String) async -> Int { await tc.send("GET", "\(configMaps)/\(name)").status }

    func testDeleteWithABodyIgnoresDryRunInTheQueryAndDeletes() async throws {
        _ = try await createConfigMap("c")
        let reply = try tc.sendOverHTTP("DELETE", "\(configMaps)/c?dryRun=All", body: #"{"propagationPolicy":"Background"}"#)
        XCTAssertEqual(reply.status, 200, reply.message)
        let after = await status(of: "c")
        XCTAssertEqual(after, 404, "kube-apiserver reads DeleteOptions from the body only, so ?dryRun=All is ignored")
    }

    func testDeleteWithDryRunInTheBodyKeepsTheObject() async throws {
        let created = try await createConfigMap("c")
        let reply = try tc.sendOverHTTP("DELETE", "\(configMaps)/c", body: #"{"dryRun":["All"],"propagationPolicy":"Background"}"#)
        XCTAssertEqual(reply.status, 200, reply.message)
        XCTAssertEqual(reply.body[path: ["metadata", "name"]], "c", "a dry run answers the object it would delete")
        let kept = await tc.send("GET", "\(configMaps)/c")
        XCTAssertEqual(kept.status, 200)
        XCTAssertEqual(kept.body[path: ["metadata", "resourceVersion"]], created[path: ["metadata", "resourceVersion"]])
    }

    func testDeleteWithDryRunInAYAMLBodyKeepsTheObject() async throws {
        _ = try await createConfigMap("c")
        let reply = try tc.sendOverHTTP("DELETE", "\(configMaps)/c", body: "dryRun:\n- All\n", contentType: "application/yaml")
        XCTAssertEqual(reply.status, 200, reply.message)
        let after = await status(of: "c")
        XCTAssertEqual(after, 200)
    }

    func testDeleteWithDryRunInAProtobufBodyKeepsTheObject() async throws {
        _ = try await createConfigMap("c")
        func field(_ number: UInt8, _ bytes: [UInt8]) -> [UInt8] { [number << 3 | 2, UInt8(bytes.count)] + bytes }
        let typeMeta = field(1, Array("v1".utf8)) + field(2, Array("DeleteOptions".utf8))
        let options = field(4, Array("Background".utf8)) + field(5, Array("All".utf8))
        let body = KubernetesProtobuf.magic + field(1, typeMeta) + field(2, options)
        let reply = await tc.send("DELETE", "\(configMaps)/c", body: String(decoding: body, as: UTF8.self),
                                  contentType: "application/vnd.kubernetes.protobuf")
        XCTAssertEqual(reply.status, 200, reply.message)
        let after = await status(of: "c")
        XCTAssertEqual(after, 200, "dryRun in a protobuf DeleteOptions body keeps the object")
    }

    func testDeleteWithAnEmptyBodyReadsDryRunFromTheQuery() async throws {
        _ = try await createConfigMap("c")
        let reply = try tc.sendOverHTTP("DELETE", "\(configMaps)/c?dryRun=All")
        XCTAssertEqual(reply.status, 200, reply.message)
        let after = await status(of: "c")
        XCTAssertEqual(after, 200)
    }

    func testDryRunDeleteStillChecksPreconditionsAndExistence() async throws {
        _ = try await createConfigMap("c")
        let wrongUID = try tc.sendOverHTTP("DELETE", "\(configMaps)/c", body: #"{"dryRun":["All"],"preconditions":{"uid":"not-it"}}"#)
        XCTAssertEqual(wrongUID.status, 409, wrongUID.message)
        XCTAssertTrue(wrongUID.message.contains("Precondition failed: UID in precondition: not-it"), wrongUID.message)
        let missing = try tc.sendOverHTTP("DELETE", "\(configMaps)/absent", body: #"{"dryRun":["All"]}"#)
        XCTAssertEqual(missing.status, 404, missing.message)
    }

    func testDryRunDeleteOfAnObjectWithFinalizersAnswersItMarkedButStoresNothing() async throws {
        let created = await tc.send("POST", configMaps, json: [
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "held", "finalizers": ["example.com/hold"]],
        ])
        XCTAssertEqual(created.status, 201, created.message)
        let reply = try tc.sendOverHTTP("DELETE", "\(configMaps)/held", body: #"{"dryRun":["All"]}"#)
        XCTAssertEqual(reply.status, 200, reply.message)
        XCTAssertNotNil(reply.body[path: ["metadata", "deletionTimestamp"]])
        let stored = await tc.send("GET", "\(configMaps)/held")
        XCTAssertNil(stored.body[path: ["metadata", "deletionTimestamp"]])
    }

    func testDeleteCollectionReadsDryRunFromTheBodyOrElseTheQuery() async throws {
        for name in ["a", "b"] { _ = try await createConfigMap(name, labels: ["set": "x"]) }
        let inBody = try tc.sendOverHTTP("DELETE", "\(configMaps)?labelSelector=set%3Dx", body: #"{"dryRun":["All"]}"#)
        XCTAssertEqual(inBody.status, 200, inBody.message)
        XCTAssertEqual(inBody.body["items"]?.arrayValue?.count, 2, "the dry run lists what it would delete")
        let afterBody = await tc.send("GET", "\(configMaps)?labelSelector=set%3Dx").body["items"]?.arrayValue?.count
        XCTAssertEqual(afterBody, 2, "dryRun in the body keeps the objects")

        let inQuery = try tc.sendOverHTTP("DELETE", "\(configMaps)?labelSelector=set%3Dx&dryRun=All")
        XCTAssertEqual(inQuery.status, 200, inQuery.message)
        let afterQuery = await tc.send("GET", "\(configMaps)?labelSelector=set%3Dx").body["items"]?.arrayValue?.count
        XCTAssertEqual(afterQuery, 2, "dryRun in the query, with no body, keeps the objects")

        let bodyWins = try tc.sendOverHTTP("DELETE", "\(configMaps)?labelSelector=set%3Dx&dryRun=All",
                                           body: #"{"propagationPolicy":"Background"}"#)
        XCTAssertEqual(bodyWins.status, 200, bodyWins.message)
        let afterBodyWins = await tc.send("GET", "\(configMaps)?labelSelector=set%3Dx").body["items"]?.arrayValue?.count
        XCTAssertEqual(afterBodyWins, 0, "with a body, ?dryRun=All is ignored and the objects are deleted")
    }

    func testDeleteBodyThatIsNotDeleteOptionsIsRefusedAndDeletesNothing() async throws {
        _ = try await createConfigMap("c")
        let notJSON = try tc.sendOverHTTP("DELETE", "\(configMaps)/c", body: "not json")
        XCTAssertEqual(notJSON.status, 400, notJSON.message)
        XCTAssertEqual(notJSON.body["reason"], "BadRequest")

        let pod = try tc.sendOverHTTP("DELETE", "\(configMaps)/c", body: #"{"apiVersion":"v1","kind":"Pod"}"#)
        XCTAssertEqual(pod.status, 400, pod.message)
        XCTAssertTrue(pod.message.contains("cannot be converted to DeleteOptions"), pod.message)

        let dryRunString = try tc.sendOverHTTP("DELETE", "\(configMaps)/c", body: #"{"dryRun":"All"}"#)
        XCTAssertEqual(dryRunString.status, 400, dryRunString.message)
        XCTAssertEqual(dryRunString.message, "json: cannot unmarshal string into Go struct field DeleteOptions.dryRun of type []string")

        let unknownDryRun = try tc.sendOverHTTP("DELETE", "\(configMaps)/c", body: #"{"dryRun":["Some"]}"#)
        XCTAssertEqual(unknownDryRun.status, 422, unknownDryRun.message)
        XCTAssertEqual(unknownDryRun.body[path: ["details", "causes"]]?.arrayValue?.first?["field"], "dryRun")

        let unknownPolicy = try tc.sendOverHTTP("DELETE", "\(configMaps)/c", body: #"{"propagationPolicy":"Later"}"#)
        XCTAssertEqual(unknownPolicy.status, 422, unknownPolicy.message)
        XCTAssertTrue(unknownPolicy.message.contains("propagationPolicy: Unsupported value: \"Later\""), unknownPolicy.message)

        let after = await status(of: "c")
        XCTAssertEqual(after, 200, "no refused request deleted anything")
    }
}
