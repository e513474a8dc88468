import AgentGateAPI
import Foundation
import KubeCore
import SessionStore
import TestSupport
import XCTest

/// Failover, measured: three real `agentgate gateway` processes on one PostgreSQL database,
/// four agents' requests spread over them, one replica SIGKILLed or PostgreSQL restarted in
/// the middle, and every request accounted for against the store afterwards.
///
/// The agents reach the replicas through ``ReplicaBalancer``: round robin, a new connection
/// per request, the next replica when a connection is refused (a Service after the dead
/// endpoint's readiness failed), and, as client-go does, a GET (never a write) cut by a reset
/// retried on the next replica. Every request carries a unique marker in its
/// `Kubectl-Session` header, which the gateway records on the exchange.
///
/// Lost = an answer with 2xx whose exchange is not in the store, or a request that got no
/// answer and is not in the store either. The tests print their figures as a table; README.md
/// ("Deploy to a cluster", "Failover") quotes them.
final class GatewayFailoverTests: XCTestCase {
    var harness: GatewayHarness!
    /// The PostgreSQL cluster of the restart test (its own, so the restart cuts no other test).
    var ownPostgres: OwnPostgres?

    override func setUp() async throws {
        harness = try await GatewayHarness(backend: .postgres)
        try await harness.cluster.applyObject(["apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": ["name": "seed", "namespace": "default"], "data": ["k": "v"]])
    }

    override func tearDown() async throws {
        await harness?.stop()  // its gateway processes first, then their PostgreSQL
        if let ownPostgres { _ = await ownPostgres.run("stop") }
    }

    private func replicas(_ count: Int, storeURL: String? = nil) async throws -> [GatewayProcess] {
        var started: [GatewayProcess] = []
        for index in 0..<count {
            let replica = try await harness.startGatewayBinary(name: "gw-\(index)", storeArguments: storeURL.map { ["--store", $0] })
            started.append(replica)
        }
        return started
    }

    /// The agents' tokens; every replica verifies one before the traffic starts, so it has the
    /// issuer's keys (a fresh replica answers 401 to the requests that arrive while its first
    /// fetch of the keys is in flight).
    private func agentTokens(warming gateways: [GatewayProcess]) async throws -> [String] {
        var tokens: [String] = []
        for _ in 0..<4 { tokens.append(try await harness.token()) }
        for gateway in gateways {
            let warm = try await GatewayHarness.send(.GET, "\(gateway.connectionURL)/api/v1/namespaces/default",
                                                     headers: [("Authorization", "Bearer \(tokens[0])"), ("Kubectl-Session", "warm-up")])
            XCTAssertEqual(warm.status, 200, warm.body)
        }
        return tokens
    }

    /// How many requests each replica refused because recording failed (503), and how many
    /// answers it sent whose completion it could not record, from their logs.
    private func storeErrorsLogged(_ gateways: [GatewayProcess]) -> (refused: Int, completionsFailed: Int) {
        let logs = gateways.map(\.output.text).joined()
        return (logs.components(separatedBy: "recording failed on").count - 1,
                logs.components(separatedBy: "] completing exchange").count - 1)
    }

    func testAKilledReplicaLosesNoAnsweredExchangeAndAgentsCarryOnOnTheOthers() async throws {
        let gateways = try await replicas(3)
        let traffic = AgentTraffic(balancer: ReplicaBalancer(ports: gateways.map(\.port)), tokens: try await agentTokens(warming: gateways),
                                   scenario: "kill")
        let started = Date()
        async let finished = traffic.run(until: started.addingTimeInterval(10))
        try await Task.sleep(for: .seconds(4))
        let killedAt = Date()
        kill(gateways[0].process.processIdentifier, SIGKILL)
        gateways[0].process.waitUntilExit()
        let outcomes = await finished

        // The survivors' heartbeats recover a dead replica's cut exchanges; do it now rather
        // than wait for the next one.
        _ = try await harness.store.recoverInterrupted()
        let recorded = FailoverFigures.byMarker(try await harness.exchanges())
        let figures = FailoverFigures(outcomes: outcomes, recorded: recorded)
        figures.print(title: "one of three replicas SIGKILLed after \(Self.seconds(killedAt.timeIntervalSince(started))) s of 10 s")
        let answeredByTheKilled = outcomes.filter { $0.replica == 0 }
        let cut = recorded.values.joined().filter { $0.state == .incomplete }
        print("the killed replica answered \(answeredByTheKilled.count) request(s), "
              + "\(answeredByTheKilled.filter(figures.recordedWithItsAnswer).count) of them recorded with their answer; "
              + "\(cut.count) exchange(s) it had begun were cut and recovered as incomplete")

        // A write in flight on the replica at the moment it is killed has its connection cut
        // and gets no answer (writes are not retried). That is not a lost request as long as
        // the write was not done unrecorded (checked in the cluster below): the agent knows it
        // failed. At most one such write per agent.
        let cutByTheKill = outcomes.filter { $0.status == nil && $0.method != "GET" && $0.sentAt <= killedAt && $0.answeredAt >= killedAt }
        XCTAssertLessThanOrEqual(cutByTheKill.count, traffic.tokens.count, "\(cutByTheKill)")
        let cutMarkers = Set(cutByTheKill.map(\.marker))
        let unexpected = outcomes.filter { !($0.status.map { (200..<300).contains($0) } ?? false) && !cutMarkers.contains($0.marker) }
        XCTAssertEqual(unexpected.count, 0, "every request was answered 2xx, but writes cut by the kill: \(unexpected.prefix(5))")
        XCTAssertGreaterThan(answeredByTheKilled.count, 50, "replica 0 had its share of the traffic before it was killed")
        for outcome in answeredByTheKilled where outcome.status.map({ $0 < 300 }) ?? false {
            XCTAssertTrue(figures.recordedWithItsAnswer(outcome), "answered \(outcome.status!) by the killed replica, not in the store: \(outcome.marker)")
        }
        let afterKill = outcomes.filter { $0.sentAt > killedAt.addingTimeInterval(0.2) }
        XCTAssertGreaterThan(afterKill.count, 100, "the agents kept sending after the kill")
        let failedAfterKill = afterKill.filter { !($0.status.map { $0 < 300 } ?? false) || $0.replica == 0 }
        XCTAssertEqual(failedAfterKill.count, 0, "the agents' next requests succeed on the other two: \(failedAfterKill.prefix(5))")
        XCTAssertEqual(figures.unrecordedAnswers.count, 0, "\(figures.unrecordedAnswers.prefix(5))")
        let lost = figures.lostMarkers.filter { !cutMarkers.contains($0) }
        XCTAssertEqual(lost.count, 0, "lost requests: \(lost.prefix(10))")
        let inProgress = recorded.values.joined().filter { $0.state == .inProgress }
        XCTAssertEqual(inProgress.count, 0, "the cut exchanges were recovered as incomplete: \(inProgress.map(\.kubectlSession))")
        try await assertEveryWriteDoneIsRecorded(outcomes, recorded: recorded)
    }

    /// The restart (`pg_ctl stop -m fast`, 3 s down, start) cuts the statements in flight: a
    /// request whose exchange could not be begun is answered 503 (FailClosed) and not
    /// forwarded. Requests that arrive while PostgreSQL is down wait in the driver's pool for a
    /// connection and are recorded and answered when it is back. An answer whose completion
    /// was cut waits for PostgreSQL to come back and is recorded before it is sent.
    func testAPostgreSQLRestartLosesNoRequestAndRecordingResumesByItself() async throws {
        let postgres = try await OwnPostgres.start()
        ownPostgres = postgres
        let gateways = try await replicas(3, storeURL: postgres.storeURL)
        let traffic = AgentTraffic(balancer: ReplicaBalancer(ports: gateways.map(\.port)), tokens: try await agentTokens(warming: gateways),
                                   scenario: "pg")
        let started = Date()
        async let finished = traffic.run(until: started.addingTimeInterval(12))
        try await Task.sleep(for: .seconds(3))
        let stoppedAt = Date()
        let restart = await postgres.run("restart", "3")
        let backAt = Date()
        XCTAssertEqual(restart.status, 0, "restarting PostgreSQL: \(restart.output)")
        let outcomes = await finished

        let store = try await SessionStores.open(url: postgres.storeURL)
        var all: [ExchangeRecord] = []
        for session in try await store.listSessions(SessionFilter(limit: 1000)) { all += try await store.exchanges(sessionID: session.id) }
        try await store.close()
        let recorded = FailoverFigures.byMarker(all)
        let figures = FailoverFigures(outcomes: outcomes, recorded: recorded)
        figures.print(title: "PostgreSQL stopped at \(Self.seconds(stoppedAt.timeIntervalSince(started))) s, "
                      + "back at \(Self.seconds(backAt.timeIntervalSince(started))) s of 12 s (FailClosed)")
        let logged = storeErrorsLogged(gateways)
        print("the replicas logged \(logged.refused) request(s) refused because recording failed, "
              + "\(logged.completionsFailed) answer(s) whose completion could not be recorded")
        let recordedTimes = outcomes.filter { figures.recordedWithItsAnswer($0) }.map(\.answeredAt).sorted()
        let gap = zip(recordedTimes, recordedTimes.dropFirst()).max { $0.1.timeIntervalSince($0.0) < $1.1.timeIntervalSince($1.0) }
        if let gap {
            print("no answer was recorded for \(Self.seconds(gap.1.timeIntervalSince(gap.0))) s (\(Self.seconds(gap.0.timeIntervalSince(started))) s "
                  + "to \(Self.seconds(gap.1.timeIntervalSince(started))) s); recording resumed by itself "
                  + "\(Self.seconds(gap.1.timeIntervalSince(backAt))) s after PostgreSQL was back")
        }

        XCTAssertGreaterThan(gap.map { $0.1.timeIntervalSince($0.0) } ?? 0, 2, "the restart happened in the middle of the traffic")
        let unexpected = outcomes.filter { !($0.status.map { (200..<300).contains($0) || $0 == 503 } ?? false) }
        XCTAssertEqual(unexpected.count, 0, "every request was answered 2xx or 503: \(unexpected.prefix(5))")
        for outcome in outcomes where outcome.status == 503 {
            XCTAssertTrue(outcome.body.contains(#""kind":"Status""#) && outcome.body.contains("FailClosed"), outcome.body)
        }
        XCTAssertEqual(figures.lost, 0, "lost requests: \(figures.lostMarkers.prefix(10))")
        XCTAssertEqual(figures.unrecordedAnswers.count, 0,
                       "no answer went out without its record (FailClosed waits for it): \(figures.unrecordedAnswers.prefix(5))")
        XCTAssertEqual(logged.completionsFailed, 0)
        let resumed = outcomes.filter { $0.sentAt > backAt.addingTimeInterval(2) }
        XCTAssertGreaterThan(resumed.count, 100, "the agents kept sending after PostgreSQL was back")
        let notResumed = resumed.filter { !($0.status.map { $0 < 300 } ?? false) || !figures.recordedWithItsAnswer($0) }
        XCTAssertEqual(notResumed.count, 0, "recording resumed by itself 2 s after PostgreSQL was back: \(notResumed.prefix(5))")
        try await assertEveryWriteDoneIsRecorded(outcomes, recorded: recorded)
    }

    /// FailClosed, checked in the cluster: every ConfigMap the agents created exists only if
    /// its exchange is in the store, and a create answered 503 was not done.
    private func assertEveryWriteDoneIsRecorded(_ outcomes: [AgentRequestOutcome], recorded: [String: [ExchangeRecord]],
                                                file: StaticString = #filePath, line: UInt = #line) async throws {
        let listed = await harness.cluster.request(method: "GET", path: "/api/v1/namespaces/default/configmaps", body: nil)
        XCTAssertEqual(listed.status, 200, file: file, line: line)
        let existing = Set((listed.body["items"]?.arrayValue ?? []).compactMap { $0[path: ["metadata", "name"]]?.stringValue })
        for outcome in outcomes where outcome.method == "POST" {
            if existing.contains(outcome.marker) {
                XCTAssertNotNil(recorded[outcome.marker], "\(outcome.marker) was created but not recorded", file: file, line: line)
            }
            if outcome.status == 503 {
                XCTAssertFalse(existing.contains(outcome.marker), "\(outcome.marker) answered 503 but created", file: file, line: line)
            }
        }
    }

    static func seconds(_ interval: TimeInterval) -> String { String(format: "%.1f", interval) }
}

/// One agent request and what became of it.
struct AgentRequestOutcome: Sendable, CustomStringConvertible {
    var marker: String
    var method: String
    var sentAt: Date
    var answeredAt: Date
    /// The status the agent got; nil when no replica answered.
    var status: Int?
    /// The body of an answer that is not 2xx (a Status), for the assertion messages.
    var body: String
    /// The index of the replica that answered.
    var replica: Int?
    /// Connections tried: 1, or more when a replica refused or a GET was cut.
    var attempts: Int
    /// Why there is no answer.
    var failure: String?

    var description: String { "\(method) \(marker): \(status.map(String.init) ?? "no answer (\(failure ?? ""))") from \(replica.map(String.init) ?? "-") after \(attempts) attempt(s) \(body.prefix(160))" }
}

/// Client-side round robin over gateway replicas, a new connection per request. A refused
/// connection goes to the next replica (nothing was sent); a GET whose connection breaks
/// before an answer is retried on the next replica, as client-go does; a write is not.
final class ReplicaBalancer: @unchecked Sendable {
    let ports: [Int]
    private let lock = NSLock()
    private var next = 0

    init(ports: [Int]) { self.ports = ports }

    /// Sends `request` (a whole HTTP/1.1 request with `Connection: close`); blocking.
    func send(_ request: String, retryable: Bool) -> (status: Int?, body: String, replica: Int?, attempts: Int, failure: String?) {
        let first = lock.withLock { defer { next += 1 }; return next }
        var attempts = 0
        var failure = "every replica refused the connection"
        for offset in 0..<ports.count {
            let replica = (first + offset) % ports.count
            attempts += 1
            let answer: String
            do {
                answer = String(decoding: try LoopbackExchange.run(port: ports[replica], request: Array(request.utf8)), as: UTF8.self)
            } catch .refused {
                continue
            } catch {
                failure = "\(error) on replica \(replica)"
                if retryable, error == .broken { continue }
                return (nil, "", nil, attempts, failure)
            }
            let statusLine = answer.prefix { $0 != "\r" }.split(separator: " ")
            guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
                failure = "no status line from replica \(replica): \(answer.prefix(80))"
                if retryable { continue }
                return (nil, "", nil, attempts, failure)
            }
            let body = answer.range(of: "\r\n\r\n").map { String(answer[$0.upperBound...]) } ?? ""
            return (status, body, replica, attempts, nil)
        }
        return (nil, "", nil, attempts, failure)
    }
}

/// One request and its whole answer on a new connection to 127.0.0.1, blocking.
enum LoopbackExchange {
    enum Failure: Error, CustomStringConvertible {
        /// Nothing was sent.
        case refused
        /// Reset or closed before the whole answer.
        case broken
        case timedOut

        var description: String {
            switch self {
            case .refused: "refused"
            case .broken: "connection broken before the answer"
            case .timedOut: "no answer within \(LoopbackExchange.timeoutSeconds) s"
            }
        }
    }

    /// Far longer than a request can wait on a restarting database (the store's 8 s bound on
    /// a write, then the gateway's 15 s patience for an answer's record), so that every
    /// request is answered by the gateway (with its record, or 503 FailClosed) before the
    /// agent gives up on it.
    static let timeoutSeconds = 65

    static func run(port: Int, request: [UInt8]) throws(Failure) -> [UInt8] {
        let connection: LoopbackTCP
        do { connection = try LoopbackTCP(port: port, timeout: Double(timeoutSeconds)) } catch { throw .refused }
        do {
            try connection.write(request)
            return try connection.readToEnd()
        } catch {
            throw (error as? LoopbackTCP.Failure)?.stage == .timedOut ? .timedOut : .broken
        }
    }
}

/// Four agents (one thread each) sending until a deadline: three reads (a ConfigMap, a list
/// of pods, the namespace) for every create of a ConfigMap named after the request's marker.
final class AgentTraffic: @unchecked Sendable {
    let balancer: ReplicaBalancer
    let tokens: [String]
    let scenario: String

    init(balancer: ReplicaBalancer, tokens: [String], scenario: String) {
        self.balancer = balancer
        self.tokens = tokens
        self.scenario = scenario
    }

    func run(until deadline: Date) async -> [AgentRequestOutcome] {
        await withCheckedContinuation { continuation in
            let group = DispatchGroup()
            let outcomes = LockedBox<[AgentRequestOutcome]>([])
            for (agent, token) in tokens.enumerated() {
                group.enter()
                Thread.detachNewThread {
                    var mine: [AgentRequestOutcome] = []
                    var n = 0
                    while Date() < deadline {
                        mine.append(self.send(agent: agent, token: token, n: n))
                        n += 1
                        usleep(5_000)
                    }
                    outcomes.value += mine
                    group.leave()
                }
            }
            group.notify(queue: .global()) { continuation.resume(returning: outcomes.value) }
        }
    }

    private func send(agent: Int, token: String, n: Int) -> AgentRequestOutcome {
        let marker = "\(scenario)-a\(agent)-\(n)"
        let (method, path, body): (String, String, String) = switch n % 4 {
        case 0: ("GET", "/api/v1/namespaces/default/configmaps/seed", "")
        case 1: ("GET", "/api/v1/namespaces/default/pods?limit=5", "")
        case 2: ("GET", "/api/v1/namespaces/default", "")
        default: ("POST", "/api/v1/namespaces/default/configmaps",
                  #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"\#(marker)"},"data":{"n":"\#(n)"}}"#)
        }
        var request = "\(method) /c/default/conn\(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
            + "Kubectl-Session: \(marker)\r\nConnection: close\r\n"
        if !body.isEmpty { request += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        request += "\r\n" + body
        let sentAt = Date()
        let answer = balancer.send(request, retryable: method == "GET")
        return AgentRequestOutcome(marker: marker, method: method, sentAt: sentAt, answeredAt: Date(), status: answer.status,
                                   body: answer.status.map { $0 < 300 } ?? true ? "" : String(answer.body.prefix(400)),
                                   replica: answer.replica, attempts: answer.attempts, failure: answer.failure)
    }
}

/// Requests sent, answered (by code), recorded and lost, from the agents' outcomes and the
/// store's exchanges.
struct FailoverFigures {
    static func seconds(_ interval: TimeInterval) -> String { String(format: "%.1f", interval) }

    let outcomes: [AgentRequestOutcome]
    let recorded: [String: [ExchangeRecord]]

    static func byMarker(_ exchanges: [ExchangeRecord]) -> [String: [ExchangeRecord]] {
        Dictionary(grouping: exchanges.filter { $0.kubectlSession != nil }) { $0.kubectlSession! }
    }

    /// The exchange is in the store, completed with the status the agent got.
    func recordedWithItsAnswer(_ outcome: AgentRequestOutcome) -> Bool {
        recorded[outcome.marker]?.contains { $0.state == .complete && $0.statusCode == outcome.status } ?? false
    }

    private func answered2xx(_ outcome: AgentRequestOutcome) -> Bool { outcome.status.map { (200..<300).contains($0) } ?? false }

    /// Answers with 2xx whose exchange is missing from the store or lacks that answer.
    var unrecordedAnswers: [AgentRequestOutcome] { outcomes.filter { answered2xx($0) && !recordedWithItsAnswer($0) } }

    var lostMarkers: [String] {
        outcomes.filter { (answered2xx($0) || $0.status == nil) && recorded[$0.marker] == nil }.map(\.marker)
    }
    var lost: Int { lostMarkers.count }

    func print(title: String) {
        var rows: [(String, Int)] = [("requests sent", outcomes.count)]
        for (code, count) in Dictionary(grouping: outcomes.compactMap(\.status)) { $0 }.mapValues(\.count).sorted(by: { $0.key < $1.key }) {
            rows.append(("answered \(code)", count))
        }
        rows.append(("no answer", outcomes.filter { $0.status == nil }.count))
        rows.append(("answered by the next replica (refused, or a GET cut)", outcomes.filter { $0.status != nil && $0.attempts > 1 }.count))
        rows.append(("recorded (exchange in the store)", outcomes.filter { recorded[$0.marker] != nil }.count))
        rows.append(("answered 2xx, recorded with that answer", outcomes.filter { answered2xx($0) && recordedWithItsAnswer($0) }.count))
        rows.append(("answered 2xx, recorded without the answer", unrecordedAnswers.filter { recorded[$0.marker] != nil }.count))
        rows.append(("lost", lost))
        let width = rows.map(\.0.count).max() ?? 0
        var table = "\nFailover figures: \(title)\n"
        for (name, value) in rows { table += "  " + name.padding(toLength: width, withPad: " ", startingAt: 0) + "  \(value)\n" }
        for outcome in outcomes where outcome.status.map({ $0 >= 300 && $0 != 503 }) ?? true {
            table += "  \(outcome), sent at \(outcome.sentAt), given up \(Self.seconds(outcome.answeredAt.timeIntervalSince(outcome.sentAt))) s later\n"
        }
        Swift.print(table)
    }
}

/// A PostgreSQL cluster of the test's own (scripts/postgres-test-server.sh under another
/// directory and port), which the test may restart without cutting other tests' connections.
struct OwnPostgres: Sendable {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/postgres-test-server.sh").path
    let environment: [String: String]
    /// A fresh schema on it.
    let storeURL: String

    static func start() async throws -> OwnPostgres {
        let port = try LoopbackTCP.freePort()
        let environment = ["AGENTGATE_PG_DIR": "/tmp/agentgate-pg-failover", "AGENTGATE_PG_PORT": "\(port)"]
        let unstarted = OwnPostgres(environment: environment, storeURL: "")
        _ = await unstarted.run("stop")  // one a crashed run left behind, on another port
        let started = await unstarted.run("start")
        let url = started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard started.status == 0, url.hasPrefix("postgres://") else {
            throw TimeoutError(description: "could not start a PostgreSQL of the test's own: \(started.output)")
        }
        let schema = "failover_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        return OwnPostgres(environment: environment, storeURL: url + "?schema=" + schema)
    }

    /// Runs the script with `arguments` on a thread of its own, off the cooperative pool (the
    /// cluster under test serves the gateways from this process meanwhile).
    func run(_ arguments: String...) async -> (status: Int32, stdout: String, output: String) {
        let environment = self.environment
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                do {
                    let result = try ProcessRunner.run("bash", [Self.script] + arguments, environment: environment, timeout: 60)
                    continuation.resume(returning: (result.status, result.stdout, result.output))
                } catch {
                    continuation.resume(returning: (-1, "", "bash \(Self.script): \(error)"))
                }
            }
        }
    }
}
