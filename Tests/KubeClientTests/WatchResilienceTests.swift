import Foundation
@testable import KubeClient
import KubeCore
import TestSupport
import XCTest

/// A clock whose sleeps return at once and advance its time; after `limit` sleeps it parks the
/// sleeper until cancelled, so a test can read the schedule then cancel.
final class FakeClock: WatchClock, @unchecked Sendable {
    private let lock = NSLock()
    private var time: Duration = .seconds(1000)
    private var slept: [Duration] = []
    let limit: Int

    init(limit: Int) { self.limit = limit }

    var sleeps: [Duration] { lock.lock(); defer { lock.unlock() }; return slept }

    func now() -> Duration { lock.lock(); defer { lock.unlock() }; return time }

    func advance(_ by: Duration) { lock.lock(); time += by; lock.unlock() }

    func sleep(for duration: Duration) async throws {
        let park = lock.withLock {
            slept.append(duration)
            time += duration
            return slept.count >= limit
        }
        if park {
            while true { try await Task.sleep(for: .seconds(60)) }
        }
        await Task.yield()
    }
}

final class WatchResilienceTests: XCTestCase {
    /// The server list of configmaps (all namespaces), as name → resourceVersion.
    func serverView(_ client: KubernetesClient) async throws -> [String: String] {
        let list = try await client.list(.configMaps)
        var view: [String: String] = [:]
        for item in list.items {
            view[item[path: ["metadata", "name"]]?.stringValue ?? ""] = item[path: ["metadata", "resourceVersion"]]?.stringValue ?? ""
        }
        return view
    }

    func testServerRestartUnderARunningWatchLosesNothingAndRepeatsNothing() async throws {
        try await withCluster { fixture in
            let client = try fixture.client()
            let log = EventLog()
            let task = consume(client.watch(.configMaps, namespace: "default", options: fastBackoff()), into: log)
            defer { task.cancel() }
            try await log.waitUntil { $0.syncs == 1 }
            for name in ["c1", "c2", "c3"] {
                _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: name, namespace: "default")))
            }
            try await log.waitUntil { $0.changes().count == 3 }
            try await fixture.restart()
            _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "c4", namespace: "default")))
            _ = try await client.mergePatch(.configMaps, name: "c1", namespace: "default", ["data": ["v": "2"]])
            try await client.delete(.configMaps, name: "c2", namespace: "default")
            try await log.waitUntil { $0.changes().count >= 6 }
            try await Task.sleep(for: .milliseconds(300))  // room for a wrongly repeated event to show up
            let changes = await log.changes()
            XCTAssertEqual(changes, ["ADDED c1", "ADDED c2", "ADDED c3", "ADDED c4", "MODIFIED c1", "DELETED c2"])
            let view = await log.view
            let server = try await serverView(client)
            XCTAssertEqual(view, server)
            let syncs = await log.syncs
            XCTAssertEqual(syncs, 1, "a resumed watch needs no relist")
        }
    }

    func testResourceVersionOutOfHistoryRelistsAndDeliversTheDifference() async throws {
        try await withCluster(watchHistory: 3) { fixture in
            let client = try fixture.client()
            for name in ["keep", "change", "remove"] {
                _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: name, namespace: "default")))
            }
            var options = WatchOptions()
            // Long enough for the changes below to land while the watcher waits to reconnect.
            options.backoff = WatchBackoff(initial: .seconds(2), maximum: .seconds(2), jitter: 0)
            let watcher = client.watch(.configMaps, namespace: "default", options: options)
            let iterator = watcher.makeAsyncIterator()
            var initial = 0
            while let event = await iterator.next() {
                if case .synced = event { break }
                initial += 1
            }
            XCTAssertEqual(initial, 3)
            let log = EventLog()
            let task = Task {
                while let event = await iterator.next() { await log.record(event) }
            }
            defer { task.cancel() }
            try await fixture.restart()
            // More changes than the history keeps, while the watcher is disconnected.
            try await client.delete(.configMaps, name: "remove", namespace: "default")
            _ = try await client.mergePatch(.configMaps, name: "change", namespace: "default", ["data": ["v": "2"]])
            for index in 0..<5 {
                _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "new-\(index)", namespace: "default")))
            }
            _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "elsewhere", namespace: "kube-system")))
            try await log.waitUntil(15) { $0.syncs >= 1 }
            let changes = await log.changes()
            XCTAssertEqual(Set(changes), Set(["DELETED remove", "MODIFIED change"] + (0..<5).map { "ADDED new-\($0)" }), "\(changes)")
            XCTAssertEqual(changes.count, 7, "\(changes)")
            XCTAssertEqual(iterator.statistics.relistsAfterGone, 1)
            var expected = try await serverView(client)
            expected["elsewhere"] = nil
            expected["keep"] = nil  // delivered before the log started
            var view = await log.view
            view["keep"] = expected["keep"]
            XCTAssertEqual(view, expected)
        }
    }

    func testRepeatedRestartsWithChangesKeepTheConsumersViewEqualToTheServer() async throws {
        try await withCluster(bookmarkInterval: .milliseconds(200)) { fixture in
            let client = try fixture.client()
            let log = EventLog()
            let task = consume(client.watch(.configMaps, options: fastBackoff()), into: log)
            defer { task.cancel() }
            try await log.waitUntil { $0.syncs == 1 }
            var counter = 0
            for round in 0..<3 {
                for _ in 0..<4 {
                    counter += 1
                    _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "r\(round)-\(counter)", namespace: "default")))
                }
                _ = try await client.mergePatch(.configMaps, name: "r\(round)-\(counter)", namespace: "default", ["data": ["round": .string("\(round)")]])
                try await client.delete(.configMaps, name: "r\(round)-\(counter - 1)", namespace: "default")
                if round > 0 {
                    try await client.delete(.configMaps, name: "r\(round - 1)-\(counter - 4)", namespace: "default")
                }
                try await fixture.restart(downFor: .milliseconds(150 * (round + 1)))
            }
            _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "final", namespace: "kube-system")))
            let expected = try await serverView(client)
            do {
                try await log.waitUntil(15) { $0.view == expected }
            } catch {
                let view = await log.view
                XCTFail("view \(view) != server \(expected): \(error)")
            }
            let changes = await log.changes()
            let adds = changes.filter { $0.hasPrefix("ADDED") }
            XCTAssertEqual(adds.count, Set(adds).count, "no object delivered twice as new: \(changes)")
        }
    }

    func testBackoffScheduleDoublesTo30SecondsWithJitterOnAnInjectedClock() async throws {
        let fixture = try await ClusterFixture()
        let url = fixture.cluster.url
        await fixture.tearDown()  // nothing listens there any more
        let client = try KubernetesClient(config: KubeConfig(server: url, credentials: .token("unused")))
        let clock = FakeClock(limit: 9)
        var options = WatchOptions()
        options.clock = clock
        options.random = { 0.5 }
        let iterator = client.watch(.configMaps, options: options).makeAsyncIterator()
        let task = Task { await iterator.next() }
        try? await eventually(20, "nine backoff sleeps") { clock.sleeps.count >= 9 }
        task.cancel()
        let last = await task.value
        XCTAssertNil(last, "cancellation ends the watch")
        let seconds = clock.sleeps.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
        let expected = [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30, 30, 30].map { $0 * 1.1 }  // jitter 0.2 × 0.5
        XCTAssertEqual(seconds.count, expected.count)
        for (got, want) in zip(seconds, expected) { XCTAssertEqual(got, want, accuracy: 0.001) }
        try await client.shutdown()
    }

    func testBackoffResetsAfterTwoHealthyMinutes() {
        var backoff = WatchBackoff(jitter: 0)
        XCTAssertEqual(backoff.nextDelay(now: .seconds(0), random: 0), .milliseconds(800))
        XCTAssertEqual(backoff.nextDelay(now: .seconds(1), random: 0), .milliseconds(1600))
        XCTAssertEqual(backoff.nextDelay(now: .seconds(100), random: 0), .milliseconds(3200), "99 s apart: still backing off")
        XCTAssertEqual(backoff.nextDelay(now: .seconds(221), random: 0), .milliseconds(800), "121 s healthy: back to 0.8 s")
        var jittered = WatchBackoff()
        let delay = jittered.nextDelay(now: .zero, random: 0.999)
        XCTAssertGreaterThan(delay, .milliseconds(800))
        XCTAssertLessThanOrEqual(delay, .milliseconds(960))
    }
}
