import Foundation
import Gateway
import KubeCore
import SessionStore
import TestSupport
import XCTest

/// The admin web page logs in with OIDC (authorization code with PKCE, in the browser) and
/// then reads and decides as that person: headless Chromium runs the page's own script
/// (scripts/e2e/webpage_check.py over the DevTools protocol) against a dev issuer with a
/// public client, and the admin API verifies the ID token it gets.
final class WebPageLoginTests: XCTestCase {
    var harness: GatewayHarness!
    var plane: AdminPlane!

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/e2e/webpage_check.py")

    override func setUp() async throws {
        guard ["/usr/bin/chromium", "/usr/bin/chromium-browser"].contains(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw XCTSkip("chromium is not installed (apt-get install chromium)")
        }
        harness = try await GatewayHarness(approval: GatewayApprovalTests.policy)
        plane = try await AdminPlane(harness, breakGlassToken: nil, webLogin: (subject: "wendy", groups: ["sre"]))
    }

    override func tearDown() async throws {
        await plane?.stop()
        await harness?.stop()
    }

    func testThePageLogsInWithPKCEListsSessionsAndApprovesAsThePerson() async throws {
        try await harness.cluster.applyObject([
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "web", "namespace": "default"],
            "spec": ["replicas": 1, "selector": ["matchLabels": ["app": "web"]],
                     "template": ["metadata": ["labels": ["app": "web"]], "spec": ["containers": [["name": "c", "image": "busybox"]]]]],
        ])
        let agent = try await harness.token()
        let url = "\(harness.connectionURL)/apis/apps/v1/namespaces/default/deployments/web"
        let held = Task { try await GatewayHarness.send(.DELETE, url, headers: [("Authorization", "Bearer \(agent)")]) }
        let store = harness.store
        try await eventually(20, "a pending approval") { try await !store.listApprovals(ApprovalFilter(state: .pending)).isEmpty }

        let screenshot = harness.directory.appendingPathComponent("page.png")
        let run = try ProcessRunner.run("python3", [Self.script.path, plane.url + "/", screenshot.path, "--approve", "--timeout", "30"],
                                        timeout: 120)
        XCTAssertEqual(run.status, 0, run.output)
        let report = try JSONValue(parsing: Array(run.stdout.utf8))
        XCTAssertFalse(report["sessions"]?.arrayValue?.isEmpty ?? true, run.output)
        let clicked = try XCTUnwrap(report["clicked"]?.stringValue, run.output)

        let answer = try await held.value
        XCTAssertEqual(answer.status, 200, "approved from the page: \(answer.body)")
        let approval = try await harness.store.approval(id: clicked)
        XCTAssertEqual(approval?.decidedBy, "wendy", "the decision is the logged-in person's")
        XCTAssertEqual(approval?.reason, "approved from the web page")
        // The page's reads are audited as wendy's, from the browser's address.
        let reads = try await harness.store.listReads(RecordingReadFilter(viewer: "wendy"))
        XCTAssertTrue(reads.contains { $0.event.action == .listSessions && $0.event.issuer == plane.issuerURL }, "\(reads)")
        XCTAssertTrue(reads.contains { $0.event.action == .readSession }, "the page opened a session: \(reads)")
    }

    /// The page's login keeps the browser-side steps honest: a login answer with a state this
    /// page did not start is refused, and no token is kept.
    func testALoginAnswerWithAForeignStateIsRefused() async throws {
        let screenshot = harness.directory.appendingPathComponent("page.png")
        let run = try ProcessRunner.run("python3", [Self.script.path, plane.url + "/?code=stolen&state=forged", screenshot.path,
                                                    "--timeout", "5"], timeout: 60)
        XCTAssertNotEqual(run.status, 0, "no session list without a login: \(run.output)")
        let reads = try await harness.store.listReads(RecordingReadFilter())
        XCTAssertEqual(reads, [], "nothing was read")
    }
}
