import Foundation
import KubeCore
import XCTest
@testable import LocalCluster

/// API-SEMANTICS.md items 10–13: list, watch, Tables, discovery.
final class ReadSemanticsTests: XCTestCase {
    var tc: TestCluster!
    let agc = "/apis/agentgate.io/v1alpha1/namespaces/default/agentconnections"
    let tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"

    override func setUp() async throws { tc = try await TestCluster(watchHistory: 20, bookmarkInterval: .milliseconds(200)) }
    override func tearDown() async throws { await tc.stop() }

    func makeConfigMaps(_ count: Int, labels: (Int) -> JSONValue = { _ in [:] }) async {
        for i in 0..<count {
            _ = await tc.send("POST", "/api/v1/namespaces/default/configmaps",
                              json: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": .string("cm-\(i)"), "labels": labels(i)]])
        }
    }

    // 10
    func testListFiltersBySelectorsAndPaginatesWithContinue() async throws {
        await makeConfigMaps(5) { i in ["tier": .string(i % 2 == 0 ? "even" : "odd")] }
        let even = await tc.send("GET", "/api/v1/namespaces/default/configmaps?labelSelector=tier%3Deven")
        XCTAssertEqual(even.body["items"]?.arrayValue?.count, 3)
        XCTAssertEqual(even.body["kind"], "ConfigMapList")
        XCTAssertNotNil(even.body[path: ["metadata", "resourceVersion"]]?.stringValue)
        let set = await tc.send("GET", "/api/v1/namespaces/default/configmaps?labelSelector=tier%20in%20(odd)")
        XCTAssertEqual(set.body["items"]?.arrayValue?.count, 2)
        let byName = await tc.send("GET", "/api/v1/configmaps?fieldSelector=metadata.name%3Dcm-3")
        XCTAssertEqual(byName.body["items"]?.arrayValue?.compactMap { $0[path: ["metadata", "name"]]?.stringValue }, ["cm-3"])
        let unsupported = await tc.send("GET", "/api/v1/configmaps?fieldSelector=spec.foo%3Dx")
        XCTAssertEqual(unsupported.status, 400)

        var names: [String] = []
        var token = ""
        var pages = 0
        repeat {
            let page = await tc.send("GET", "/api/v1/namespaces/default/configmaps?limit=2&continue=\(token)")
            names += page.body["items"]?.arrayValue?.compactMap { $0[path: ["metadata", "name"]]?.stringValue } ?? []
            token = page.body[path: ["metadata", "continue"]]?.stringValue?.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            pages += 1
        } while !token.isEmpty && pages < 10
        XCTAssertEqual(pages, 3)
        XCTAssertEqual(names, (0..<5).map { "cm-\($0)" })
        let rv0 = await tc.send("GET", "/api/v1/namespaces/default/configmaps?resourceVersion=0")
        XCTAssertEqual(rv0.body["items"]?.arrayValue?.count, 5)
    }

    // 11
    func testWatchFromZeroReplaysThenFollowsAndResumesFromResourceVersion() async throws {
        await makeConfigMaps(2)
        let watch = await tc.send("GET", "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=0")
        _ = await tc.send("DELETE", "/api/v1/namespaces/default/configmaps/cm-0")
        let events = try await TestCluster.events(watch, count: 3)
        XCTAssertEqual(events.map { $0["type"]?.stringValue ?? "" }, ["ADDED", "ADDED", "DELETED"])

        let rv = events[1][path: ["object", "metadata", "resourceVersion"]]!.stringValue!
        let resumed = await tc.send("GET", "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=\(rv)")
        let replay = try await TestCluster.events(resumed, count: 1)
        XCTAssertEqual(replay.first?["type"], "DELETED", "a watch resumed from a resourceVersion gets what happened after it")
    }

    func testWatchPastKeptHistoryGets410AndSelectorTransitionsBecomeAddedAndDeleted() async throws {
        let first = await tc.send("POST", "/api/v1/namespaces/default/configmaps",
                                  json: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "old"]]).body
        await makeConfigMaps(30)
        let rv = first[path: ["metadata", "resourceVersion"]]!.stringValue!
        let expired = await tc.send("GET", "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=\(rv)")
        let error = try await TestCluster.events(expired, count: 1)
        XCTAssertEqual(error.first?["type"], "ERROR")
        XCTAssertEqual(error.first?[path: ["object", "code"]], .int(410))
        XCTAssertEqual(error.first?[path: ["object", "reason"]], "Expired")

        let selected = await tc.send("GET", "/api/v1/namespaces/default/configmaps?watch=true&labelSelector=pick%3Dyes")
        _ = await tc.send("PATCH", "/api/v1/namespaces/default/configmaps/cm-1", json: ["metadata": ["labels": ["pick": "yes"]]],
                          contentType: "application/merge-patch+json")
        _ = await tc.send("PATCH", "/api/v1/namespaces/default/configmaps/cm-1", json: ["metadata": ["labels": ["pick": "no"]]],
                          contentType: "application/merge-patch+json")
        let transitions = try await TestCluster.events(selected, count: 2)
        XCTAssertEqual(transitions.map { $0["type"]?.stringValue ?? "" }, ["ADDED", "DELETED"])
    }

    func testStreamingListSendsInitialEventsThenAnnotatedBookmark() async throws {
        await makeConfigMaps(2)
        let watch = await tc.send("GET", "/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")
        let events = try await TestCluster.events(watch, count: 3)
        XCTAssertEqual(events.map { $0["type"]?.stringValue ?? "" }, ["ADDED", "ADDED", "BOOKMARK"])
        XCTAssertEqual(events[2][path: ["object", "metadata", "annotations", "k8s.io/initial-events-end"]], "true")
    }

    func testWatchHonoursTimeoutSeconds() async throws {
        let watch = await tc.send("GET", "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1")
        let started = Date()
        let events = try await TestCluster.events(watch, count: 100, timeout: 5)
        XCTAssertTrue(events.isEmpty)
        XCTAssertLessThan(Date().timeIntervalSince(started), 4, "the stream ends after timeoutSeconds")
    }

    // 12
    func testTableUsesPrinterColumns() async throws {
        _ = await tc.send("POST", agc, json: TestCluster.connection("t"))
        let table = await tc.send("GET", agc, accept: tableAccept)
        XCTAssertEqual(table.body["kind"], "Table")
        let names = table.body["columnDefinitions"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        for expected in ["Name", "Ready", "Endpoint", "Sessions", "Pending", "Age"] {
            XCTAssertTrue(names.contains(expected), "\(expected) missing from \(names)")
        }
        XCTAssertEqual(table.body["rows"]?.arrayValue?.first?["cells"]?.arrayValue?.first, "t")
        XCTAssertEqual(table.body["rows"]?.arrayValue?.first?[path: ["object", "kind"]], "PartialObjectMetadata")
    }

    // 13
    func testDiscoveryListsCRDsWithShortNamesCategoriesAndStatus() async throws {
        let groups = await tc.send("GET", "/apis")
        XCTAssertTrue(groups.body["groups"]?.arrayValue?.contains { $0["name"] == "agentgate.io" } ?? false)
        let resources = await tc.send("GET", "/apis/agentgate.io/v1alpha1")
        let agcEntry = resources.body["resources"]?.arrayValue?.first { $0["name"] == "agentconnections" }
        XCTAssertEqual(agcEntry?["shortNames"], ["agc"])
        XCTAssertEqual(agcEntry?["categories"], ["agentgate"])
        XCTAssertTrue(resources.body["resources"]?.arrayValue?.contains { $0["name"] == "agentconnections/status" } ?? false)
        let core = await tc.send("GET", "/api/v1")
        XCTAssertTrue(core.body["resources"]?.arrayValue?.contains { $0["name"] == "serviceaccounts/token" } ?? false)
        let awaited1 = await tc.send("GET", "/version").body["major"]
        XCTAssertEqual(awaited1, "1")
        let openapi = await tc.send("GET", "/openapi/v3")
        XCTAssertNotNil(openapi.body[path: ["paths", "apis/agentgate.io/v1alpha1", "serverRelativeURL"]])

        _ = await tc.send("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/recordingpolicies.agentgate.io")
        let after = await tc.send("GET", "/apis/agentgate.io/v1alpha1")
        XCTAssertFalse(after.body["resources"]?.arrayValue?.contains { $0["name"] == "recordingpolicies" } ?? true,
                       "discovery follows CRD deletion")
    }
}
