import XCTest

/// The shared SessionStore behaviours (Behaviours) on PostgreSQL at $AGENTGATE_TEST_POSTGRES_URL, a fresh schema per test.
/// Without the variable every test here FAILS (never skips): run `bash scripts/test.sh`.
/// Keep this list in step with the other backend's class.
final class PostgresSessionStoreTests: XCTestCase {
    private let backend = TestBackend.postgres

    func testSessionsAreGroupedBySidOrJti() async throws { try await Behaviours.sessionsAreGroupedBySidOrJti(backend) }
    func testNewSessionStartsAfterFifteenMinutesIdle() async throws { try await Behaviours.newSessionStartsAfterFifteenMinutesIdle(backend) }
    func testFiltersEachNarrowTheList() async throws { try await Behaviours.filtersEachNarrowTheList(backend) }
    func testExchangeBegunIsVisibleAsInProgressBeforeCompletion() async throws { try await Behaviours.exchangeBegunIsVisibleAsInProgressBeforeCompletion(backend) }
    func testCompleteSetsStatusLatencyAndBodies() async throws { try await Behaviours.completeSetsStatusLatencyAndBodies(backend) }
    func testCompletionMovesLastActivityOnlyForLongExchanges() async throws { try await Behaviours.completionMovesLastActivityOnlyForLongExchanges(backend) }
    func testLastActivityMovesInWholeSecondStepsWhileCountsStayExact() async throws { try await Behaviours.lastActivityMovesInWholeSecondStepsWhileCountsStayExact(backend) }
    func testStreamChunksReplayInOrderWithTimestamps() async throws { try await Behaviours.streamChunksReplayInOrderWithTimestamps(backend) }
    func testRecoverInterruptedMarksDeadInstancesInProgressIncomplete() async throws { try await Behaviours.recoverInterruptedMarksDeadInstancesInProgressIncomplete(backend) }
    func testReplicaDoesNotMarkLiveReplicasExchangesIncomplete() async throws { try await Behaviours.replicaDoesNotMarkLiveReplicasExchangesIncomplete(backend) }
    func testPruneDeletesOldSessionsAndKeepsRecent() async throws { try await Behaviours.pruneDeletesOldSessionsAndKeepsRecent(backend) }
    func testPruneOfOneConnectionLeavesOtherConnectionsSessions() async throws { try await Behaviours.pruneOfOneConnectionLeavesOtherConnectionsSessions(backend) }
    func testWritesCancelledMidwayLeaveTheStoreWritable() async throws { try await Behaviours.writesCancelledMidwayLeaveTheStoreWritable(backend) }
    func testInjectionShapedValuesRoundTripHarmlessly() async throws { try await Behaviours.injectionShapedValuesRoundTripHarmlessly(backend) }
    func testConcurrentExchangesAllStoredWithUniqueSequences() async throws { try await Behaviours.concurrentExchangesAllStoredWithUniqueSequences(backend) }
    func testAFailingWriteAmongConcurrentOnesFailsAlone() async throws { try await Behaviours.aFailingWriteAmongConcurrentOnesFailsAlone(backend) }
    func testStatsCountActiveAndTotalSessionsPerConnection() async throws { try await Behaviours.statsCountActiveAndTotalSessionsPerConnection(backend) }
    func testMigrateIsIdempotentAndDataSurvivesReopen() async throws { try await Behaviours.migrateIsIdempotentAndDataSurvivesReopen(backend) }
    func testApprovalIsDecidedExactlyOnce() async throws { try await Behaviours.approvalIsDecidedExactlyOnce(backend) }
    func testApprovalsListByStateAndConnectionNewestFirst() async throws { try await Behaviours.approvalsListByStateAndConnectionNewestFirst(backend) }
    func testClosingAndRecoveryAbandonPendingApprovals() async throws { try await Behaviours.closingAndRecoveryAbandonPendingApprovals(backend) }
    func testAlertWindowsCountHitsFromEveryInstanceAndFireOnce() async throws { try await Behaviours.alertWindowsCountHitsFromEveryInstanceAndFireOnce(backend) }
    func testAlertHitsRacingOnInstancesFireExactlyOnce() async throws { try await Behaviours.alertHitsRacingOnInstancesFireExactlyOnce(backend) }
    func testARefusedStreamIsTakenOnceByAnyInstanceUntilItExpires() async throws { try await Behaviours.aRefusedStreamIsTakenOnceByAnyInstanceUntilItExpires(backend) }
    func testReplicasStartingTogetherMigrateOnceAndAllServe() async throws { try await Behaviours.replicasStartingTogetherMigrateOnceAndAllServe(backend) }
    func testDecisionOnOneInstanceIsNotifiedToAnother() async throws { try await Behaviours.decisionOnOneInstanceIsNotifiedToAnother(backend) }
}
