import Foundation
import KubeCore
import XCTest
@testable import LocalCluster

/// `pods/eviction` (kubectl drain) and `pods/ephemeralcontainers` (kubectl debug), with dry runs
/// that change nothing, as the gateway's approval previews rely on.
final class PodSubresourceTests: XCTestCase {
    var tc: TestCluster!
    let pods = "/api/v1/namespaces/default/pods"

    override func setUp() async throws {
        tc = try await TestCluster()
        let created = await tc.send("POST", pods, json: ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": "web"],
                                                         "spec": ["containers": [["name": "main", "image": "busybox"]]]])
        XCTAssertEqual(created.status, 201, created.message)
    }

    override func tearDown() async throws { await tc.stop() }

    static let eviction: JSONValue = ["apiVersion": "policy/v1", "kind": "Eviction", "metadata": ["name": "web", "namespace": "default"]]

    func testAnEvictionDeletesThePodAndItsDryRunsDoNot() async throws {
        let dry = await tc.send("POST", "\(pods)/web/eviction?dryRun=All", json: Self.eviction)
        XCTAssertEqual(dry.status, 201, dry.message)
        var inBody = Self.eviction
        inBody["deleteOptions"] = ["dryRun": ["All"]]
        let dryInBody = await tc.send("POST", "\(pods)/web/eviction", json: inBody)
        XCTAssertEqual(dryInBody.status, 201, dryInBody.message)
        let stillThere = await tc.send("GET", "\(pods)/web").status
        XCTAssertEqual(stillThere, 200, "a dry-run eviction deletes nothing")
        let evicted = await tc.send("POST", "\(pods)/web/eviction", json: Self.eviction)
        XCTAssertEqual(evicted.status, 201, evicted.message)
        XCTAssertEqual(evicted.body["status"], "Success")
        let gone = await tc.send("GET", "\(pods)/web").status
        XCTAssertEqual(gone, 404)
        let missing = await tc.send("POST", "\(pods)/web/eviction?dryRun=All", json: Self.eviction)
        XCTAssertEqual(missing.status, 404, "the dry run of evicting a missing pod is refused as the eviction would be")
    }

    func testAnEphemeralContainerIsAddedOnlyThroughItsSubresourceAndNotByADryRun() async throws {
        let patch: JSONValue = ["spec": ["ephemeralContainers": [["name": "debugger", "image": "busybox"]],
                                         "containers": [["name": "other", "image": "nginx"]]]]
        let dry = await tc.send("PATCH", "\(pods)/web/ephemeralcontainers?dryRun=All", json: patch,
                                contentType: "application/strategic-merge-patch+json")
        XCTAssertEqual(dry.status, 200, dry.message)
        XCTAssertEqual(dry.body[path: ["spec", "ephemeralContainers"]]?.arrayValue?.count, 1)
        let unchanged = await tc.send("GET", "\(pods)/web")
        XCTAssertNil(unchanged.body[path: ["spec", "ephemeralContainers"]], "the dry run added nothing")
        let added = await tc.send("PATCH", "\(pods)/web/ephemeralcontainers", json: patch,
                                  contentType: "application/strategic-merge-patch+json")
        XCTAssertEqual(added.status, 200, added.message)
        let pod = await tc.send("GET", "\(pods)/web")
        XCTAssertEqual(pod.body[path: ["spec", "ephemeralContainers"]]?.arrayValue?.first?["name"], "debugger")
        XCTAssertEqual(pod.body[path: ["spec", "containers"]]?.arrayValue?.first?["name"], "main", "nothing but ephemeral containers changes")
        let removed = await tc.send("PATCH", "\(pods)/web/ephemeralcontainers", json: ["spec": ["ephemeralContainers": []]],
                                    contentType: "application/merge-patch+json")
        XCTAssertEqual(removed.status, 422, removed.message)
    }
}
