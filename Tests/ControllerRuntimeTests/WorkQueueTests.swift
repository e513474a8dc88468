import ControllerRuntime
import Foundation
import TestSupport
import XCTest

final class WorkQueueTests: XCTestCase {
    func testKeyAddedTwiceWhileWaitingIsHandedOutOnce() async throws {
        let queue = WorkQueue<String>()
        queue.add("a")
        queue.add("a")
        queue.add("b")
        XCTAssertEqual(queue.depth, 2)
        let first = await queue.get()
        let second = await queue.get()
        XCTAssertEqual([first, second], ["a", "b"])
        XCTAssertEqual(queue.depth, 0)
    }

    func testKeyBeingProcessedIsNotHandedOutAgainUntilDoneThenRunsAgain() async throws {
        let queue = WorkQueue<String>()
        queue.add("a")
        let taken = await queue.get()
        XCTAssertEqual(taken, "a")
        // Added while processing: must not go to a second worker now...
        queue.add("a")
        XCTAssertEqual(queue.depth, 0, "a key in processing must not be queued for another worker")
        let second = Task { await queue.get() }
        try await Task.sleep(for: .milliseconds(50))
        queue.add("b")
        let otherKey = await second.value
        XCTAssertEqual(otherKey, "b", "the waiting worker gets the other key, not the one in processing")
        // ...but must run again once the first run is done.
        queue.done("a")
        XCTAssertEqual(queue.depth, 1)
        let again = await queue.get()
        XCTAssertEqual(again, "a")
    }

    func testBackoffDoublesFromFiveMillisecondsAndStopsAtThousandSeconds() {
        let backoff = ExponentialBackoff()
        XCTAssertEqual(backoff.delay(afterFailures: 0), .milliseconds(5))
        XCTAssertEqual(backoff.delay(afterFailures: 1), .milliseconds(10))
        XCTAssertEqual(backoff.delay(afterFailures: 2), .milliseconds(20))
        XCTAssertEqual(backoff.delay(afterFailures: 10), .milliseconds(5120))
        XCTAssertEqual(backoff.delay(afterFailures: 18), .seconds(1000), "5 ms × 2^18 = 1310 s is capped")
        XCTAssertEqual(backoff.delay(afterFailures: 500), .seconds(1000))
    }

    func testRateLimitedAddWaitsTheKeysBackoffAndForgetResetsIt() async throws {
        let queue = WorkQueue<String>(backoff: ExponentialBackoff(base: .milliseconds(100)))
        queue.addRateLimited("a")
        queue.addRateLimited("a")
        XCTAssertEqual(queue.numRequeues("a"), 2)
        XCTAssertEqual(queue.depth, 0, "a rate-limited key waits before it is queued")
        let started = ContinuousClock.now
        let key = await queue.get()
        let waited = ContinuousClock.now - started
        XCTAssertEqual(key, "a")
        XCTAssertGreaterThanOrEqual(waited, .milliseconds(90), "first retry waits the base delay")
        queue.forget("a")
        XCTAssertEqual(queue.numRequeues("a"), 0)
        queue.done("a")
    }

    func testAddAfterKeepsTheEarliestDeadlinePerKey() async throws {
        let queue = WorkQueue<String>()
        queue.addAfter("a", .seconds(30))
        queue.addAfter("a", .milliseconds(50))
        queue.addAfter("a", .seconds(10))
        let started = ContinuousClock.now
        let key = try await withTimeout(5, "the 50 ms deadline") { await queue.get() }
        XCTAssertEqual(key, "a")
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
        queue.done("a")
        try await Task.sleep(for: .milliseconds(100))
        XCTAssertEqual(queue.depth, 0, "the later deadlines were folded into the earliest one")
    }

    func testShutDownWakesWaitingWorkersAndIgnoresLaterAdds() async throws {
        let queue = WorkQueue<String>()
        let waiter = Task { await queue.get() }
        try await Task.sleep(for: .milliseconds(50))
        queue.shutDown()
        let woken = await waiter.value
        XCTAssertNil(woken)
        queue.add("late")
        XCTAssertEqual(queue.depth, 0)
        let afterShutdown = await queue.get()
        XCTAssertNil(afterShutdown)
    }

    func testManyWorkersNeverHoldTheSameKeyAtOnce() async throws {
        let queue = WorkQueue<Int>()
        let tracker = ConcurrencyTracker()
        let producer = Task {
            for round in 0..<700 {
                queue.add(round % 7)
                if round % 7 == 6 { try? await Task.sleep(for: .milliseconds(1)) }
            }
        }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    while let key = await queue.get() {
                        tracker.begin("\(key)")
                        try? await Task.sleep(for: .microseconds(200))
                        tracker.end("\(key)")
                        queue.done(key)
                    }
                }
            }
            await producer.value
            try? await Task.sleep(for: .milliseconds(300))
            queue.shutDown()
        }
        XCTAssertEqual(tracker.maxOverlap, 1, "one key ran on two workers at once")
        XCTAssertGreaterThan(tracker.total, 7)
    }
}

/// Counts runs per key and the most runs of one key seen at the same time.
final class ConcurrencyTracker: @unchecked Sendable {
    private let lock = NSLock()
    private var inFlight: [String: Int] = [:]
    private var runs: [String: [ContinuousClock.Instant]] = [:]
    private(set) var maxOverlapValue = 0

    func begin(_ key: String) {
        lock.withLock {
            inFlight[key, default: 0] += 1
            maxOverlapValue = max(maxOverlapValue, inFlight[key]!)
            runs[key, default: []].append(.now)
        }
    }

    func end(_ key: String) {
        lock.withLock { inFlight[key, default: 0] -= 1 }
    }

    private var replicas: Set<String> = []
    private var finishedCounts: [String: Int] = [:]

    /// `begin`, remembering which replica ran it.
    func begin(_ key: String, by replica: String) {
        begin(key)
        lock.withLock { _ = replicas.insert(replica) }
    }

    /// Counts a run that got to its end (was not cancelled).
    func markFinished(_ key: String) {
        lock.withLock { finishedCounts[key, default: 0] += 1 }
    }

    var reconcilers: Set<String> { lock.withLock { replicas } }
    func finished(_ key: String) -> Int { lock.withLock { finishedCounts[key] ?? 0 } }
    var maxOverlap: Int { lock.withLock { maxOverlapValue } }
    var total: Int { lock.withLock { runs.values.map(\.count).reduce(0, +) } }
    func count(_ key: String) -> Int { lock.withLock { runs[key]?.count ?? 0 } }
    func times(_ key: String) -> [ContinuousClock.Instant] { lock.withLock { runs[key] ?? [] } }
}
