import AgentGateAPI
import Foundation
import KubeClient
import KubeCore
@testable import Operator
import TestSupport
import XCTest

/// The operator compares resourceVersions for equality only (Kubernetes says they are opaque):
/// it learns which versions are older from its own writes.
final class StatusApplierTests: XCTestCase {
    /// Versions that order the other way as numbers and as text: neither order may be used.
    func testOwnWritesOrdersOpaqueVersionsByItsWritesNotByTheirText() {
        var history = OwnWrites()
        history.wrote("10", over: "9")        // as text "10" < "9"; the write says "9" is older
        XCTAssertTrue(history.isBehind("9"))
        history.wrote("b-7f", over: "10")     // not numbers at all
        history.wrote("a-01", over: "b-7f")   // a second write: everything before it is older
        XCTAssertTrue(history.isBehind("9"))
        XCTAssertTrue(history.isBehind("10"))
        XCTAssertTrue(history.isBehind("b-7f"))
        XCTAssertFalse(history.isBehind("zz"), "a version someone else wrote is acted on")
        XCTAssertFalse(history.isBehind(nil))
        XCTAssertFalse(history.isBehind("a-01"), "the latest write is acted on")
        XCTAssertFalse(history.isBehind("9"), "once the cache showed the latest write, the history is cleared")
    }

    func testAWriteThatChangedNothingDoesNotMakeItsOwnVersionOlder() {
        var history = OwnWrites()
        history.wrote("abc", over: "abc")
        XCTAssertFalse(history.isBehind("abc"))
    }

    /// Through the embedded API server: a stale copy costs no request, a copy at a version this
    /// operator did not write is acted on.
    func testStatusIsNotReappliedOnAStaleCopyButIsOnAVersionSomeoneElseWrote() async throws {
        try await withCluster { fixture in
            let admin = try fixture.client()
            let created = try await admin.create(ClusterFixture.connection("opaque"))
            let operatorClient = try fixture.client()
            let applier = StatusApplier(client: operatorClient, fieldManager: "agentgate-operator")
            let status = AgentConnectionStatus(observedGeneration: 1, endpoint: "https://gateway.example.com/c/default/opaque")

            let written = try await applier.apply(status, to: created)
            XCTAssertNotNil(written)
            XCTAssertNotEqual(written, created.metadata.resourceVersion)
            XCTAssertEqual(operatorClient.statistics.writes, 1)

            // The informer's copy before the write arrives: nothing to do.
            let again = try await applier.apply(status, to: created)
            XCTAssertNil(again, "the cache lags this operator's own write")
            XCTAssertEqual(operatorClient.statistics.writes, 1)

            // Someone else wrote since (a label), and the copy at that version lacks the status:
            // its version is not one this operator wrote over, so the status is applied again.
            var labelled = try await admin.get(AgentConnection.self, name: "opaque", namespace: "default")
            labelled.metadata.labels = ["team": "a"]
            let updated = try await admin.update(labelled)
            var foreign = created
            foreign.metadata.resourceVersion = updated.metadata.resourceVersion
            let reapplied = try await applier.apply(status, to: foreign)
            XCTAssertNotNil(reapplied)
            XCTAssertEqual(operatorClient.statistics.writes, 2)
            let stored = try await admin.get(AgentConnection.self, name: "opaque", namespace: "default")
            XCTAssertEqual(stored.status?.endpoint, status.endpoint)
        }
    }
}
