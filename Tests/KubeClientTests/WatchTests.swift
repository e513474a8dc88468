import Foundation
@testable import KubeClient
import KubeCore
import TestSupport
import XCTest

/// Events a background consumer received, and the view they build (name → resourceVersion).
actor EventLog {
    private(set) var events: [(type: String, name: String, rv: String)] = []
    private(set) var view: [String: String] = [:]
    private(set) var syncs = 0

    func record(_ event: WatchEvent<JSONValue>) {
        switch event {
        case .synced:
            syncs += 1
            events.append(("SYNCED", "", ""))
        case .bookmark:
            break
        case .added(let o), .modified(let o), .deleted(let o):
            let name = o[path: ["metadata", "name"]]?.stringValue ?? ""
            let rv = o[path: ["metadata", "resourceVersion"]]?.stringValue ?? ""
            events.append((event.typeName, name, rv))
            if case .deleted = event { view[name] = nil } else { view[name] = rv }
        }
    }

    func changes() -> [String] {
        events.filter { $0.type != "SYNCED" }.map { "\($0.type) \($0.name)" }
    }

    /// Waits until `condition` holds for this log (TestSupport's `eventually`), failing after
    /// `seconds` with the events received so far.
    func waitUntil(_ seconds: Double = 10, _ condition: @Sendable (isolated EventLog) -> Bool) async throws {
        do {
            try await eventually(seconds, "the event log's condition") { await self.holds(condition) }
        } catch is TimeoutError {
            throw TimeoutError(description: "timed out after \(seconds) s; events so far: \(changes())")
        }
    }

    private func holds(_ condition: (isolated EventLog) -> Bool) -> Bool { condition(self) }
}

/// Consumes `watcher` in a background task into `log`.
func consume(_ watcher: Watcher<JSONValue>, into log: EventLog) -> Task<Void, Never> {
    Task {
        for await event in watcher { await log.record(event) }
    }
}

func fastBackoff() -> WatchOptions {
    var options = WatchOptions()
    options.backoff = WatchBackoff(initial: .milliseconds(50), maximum: .milliseconds(200), resetAfter: .seconds(120), jitter: 0.2)
    return options
}

final class WatchTests: XCTestCase {
    func testEventsArriveInOrderAfterAStreamedInitialList() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "pre-1", namespace: "default")))
            _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "pre-2", namespace: "default")))
            let iterator = client.watch(.configMaps, namespace: "default", options: fastBackoff()).makeAsyncIterator()
            var initial: [String] = []
            while let event = await iterator.next() {
                if case .synced = event { break }
                initial.append("\(event.typeName) \(event.object?[path: ["metadata", "name"]]?.stringValue ?? "")")
            }
            XCTAssertEqual(initial, ["ADDED pre-1", "ADDED pre-2"])
            XCTAssertTrue(iterator.statistics.usedStreamingList, "the initial list is streamed (sendInitialEvents)")

            _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "a", namespace: "default")))
            _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "b", namespace: "default")))
            _ = try await client.mergePatch(.configMaps, name: "a", namespace: "default", ["data": ["x": "1"]])
            try await client.delete(.configMaps, name: "b", namespace: "default")
            _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "other-ns", namespace: "kube-system")))
            var seen: [String] = []
            while seen.count < 4, let event = await iterator.next() {
                if case .bookmark = event { continue }
                seen.append("\(event.typeName) \(event.object?[path: ["metadata", "name"]]?.stringValue ?? "")")
            }
            XCTAssertEqual(seen, ["ADDED a", "ADDED b", "MODIFIED a", "DELETED b"])
        }
    }

    func testFallsBackToListThenWatchWhenTheServerRefusesStreamingLists() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "pre", namespace: "default")))
            var options = fastBackoff()
            options.omitResourceVersionMatchForTesting = true  // the server answers 422 to this streaming list
            let errors = ErrorBox()
            options.onError = { errors.append($0) }
            let iterator = client.watch(.configMaps, namespace: "default", options: options).makeAsyncIterator()
            let first = await iterator.next()
            XCTAssertEqual(first?.object?[path: ["metadata", "name"]], "pre")
            guard case .synced = await iterator.next() else { return XCTFail("expected synced after the list") }
            XCTAssertFalse(iterator.statistics.usedStreamingList)
            XCTAssertEqual(iterator.statistics.lists, 1)
            XCTAssertTrue(errors.all.contains { if case .invalid = $0 as? KubeError { return true } else { return false } }, "\(errors.all)")
            _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "after", namespace: "default")))
            let next = await iterator.next()
            XCTAssertEqual(next?.typeName, "ADDED")
            XCTAssertEqual(next?.object?[path: ["metadata", "name"]], "after")
        }
    }

    func testBookmarksAdvanceTheResumePoint() async throws {
        try await withCluster(bookmarkInterval: .milliseconds(100)) { fixture in
            let client = try fixture.client()
            let iterator = client.watch(.configMaps, namespace: "default", options: fastBackoff()).makeAsyncIterator()
            guard case .synced(let start) = await iterator.next() else { return XCTFail("expected synced") }
            // Changes to another resource move the cluster's revision, but no configmap event comes.
            let secret = try await client.create(Secret(metadata: ObjectMeta(name: "s", namespace: "default"), stringData: ["k": "v"]))
            let secretRV = Int(secret.metadata.resourceVersion ?? "") ?? 0
            XCTAssertGreaterThan(secretRV, Int(start) ?? 0)
            var bookmarked: String?
            while bookmarked == nil, let event = await iterator.next() {
                if case .bookmark(let rv) = event, (Int(rv) ?? 0) >= secretRV { bookmarked = rv }
            }
            XCTAssertEqual(iterator.resourceVersion, bookmarked, "the resume point is the bookmark's resourceVersion")
        }
    }

    func testCancellingTheConsumerEndsTheServerSideWatch() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            let log = EventLog()
            let before = fixture.cluster.apiServer.store.watcherCount
            let task = consume(client.watch(.configMaps, options: fastBackoff()), into: log)
            try await log.waitUntil { $0.syncs == 1 }
            XCTAssertEqual(fixture.cluster.apiServer.store.watcherCount, before + 1)
            task.cancel()
            await task.value
            try await eventually(5, "the watch request ends with its consumer") { fixture.cluster.apiServer.store.watcherCount == before }
        }
    }
}

final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [Error] = []
    func append(_ error: Error) { lock.lock(); errors.append(error); lock.unlock() }
    var all: [Error] { lock.lock(); defer { lock.unlock() }; return errors }
}
