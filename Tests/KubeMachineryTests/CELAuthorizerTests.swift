import KubeCore
import KubeMachinery
import XCTest

/// The CEL `authorizer` library: what each chain asks the decider, and what a Decision answers.
/// The decider here allows exactly one question, so each assertion shows which question was asked.
final class CELAuthorizerTests: XCTestCase {
    final class Asked: @unchecked Sendable {
        private let lock = NSLock()
        private var checks: [CELAuthorizationCheck] = []
        func record(_ check: CELAuthorizationCheck) { lock.withLock { checks.append(check) } }
        var last: CELAuthorizationCheck? { lock.withLock { checks.last } }
    }

    let asked = Asked()

    func evaluate(_ source: String) throws -> CELValue {
        let asked = self.asked
        let useAgentSA = CELAuthorizationCheck(verb: "use", resource: "serviceaccounts", namespace: "team", name: "agent-sa")
        let authorizer = CELAuthorizer(requestResource: CELAuthorizationCheck(verb: "", group: "agentgate.io", resource: "agentconnections",
                                                                              namespace: "team", name: "demo")) { check in
            asked.record(check)
            return check == useAgentSA ? CELAuthorizationDecision(allowed: true, reason: "RBAC: allowed by RoleBinding")
                                       : CELAuthorizationDecision(allowed: false)
        }
        let program = try CELProgram(compiling: source, variables: ["authorizer"])
        return try program.evaluate(bindings: ["authorizer": .opaque(authorizer)])
    }

    func testAResourceCheckAsksForItsGroupResourceNamespaceNameAndVerb() throws {
        XCTAssertEqual(try evaluate("authorizer.group('').resource('serviceaccounts').namespace('team').name('agent-sa').check('use').allowed()"),
                       .bool(true))
        XCTAssertEqual(try evaluate("authorizer.group('').resource('serviceaccounts').namespace('team').name('agent-sa').check('use').reason()"),
                       .string("RBAC: allowed by RoleBinding"))
        XCTAssertEqual(try evaluate("authorizer.group('').resource('serviceaccounts').namespace('team').name('other').check('use').allowed()"),
                       .bool(false))
        XCTAssertEqual(asked.last?.name, "other")
        XCTAssertEqual(try evaluate("authorizer.group('').resource('serviceaccounts').namespace('team').check('use').errored()"), .bool(false))
        XCTAssertEqual(asked.last?.name, "", "no name(): any name")
    }

    func testRequestResourcePathAndServiceAccountAskTheirOwnQuestions() throws {
        _ = try evaluate("authorizer.requestResource.subresource('status').check('patch')")
        XCTAssertEqual(asked.last, CELAuthorizationCheck(verb: "patch", group: "agentgate.io", resource: "agentconnections",
                                                         subresource: "status", namespace: "team", name: "demo"))
        _ = try evaluate("authorizer.path('/healthz').check('get')")
        XCTAssertEqual(asked.last?.isResourceRequest, false)
        XCTAssertEqual(asked.last?.path, "/healthz")
        _ = try evaluate("authorizer.serviceAccount('team', 'agent-sa').group('apps').resource('deployments').check('list')")
        XCTAssertEqual(asked.last?.serviceAccount, .init(namespace: "team", name: "agent-sa"), "asked as the ServiceAccount")
    }

    func testBadArgumentsAreErrorsAndUnknownMethodsHaveNoOverload() {
        XCTAssertThrowsError(try evaluate("authorizer.serviceAccount('Not_A_Namespace', 'sa')")) { error in
            XCTAssertEqual((error as? CELError)?.message, "Invalid service account namespace")
        }
        XCTAssertThrowsError(try evaluate("authorizer.serviceAccount('team', 'bad name')")) { error in
            XCTAssertEqual((error as? CELError)?.message, "Invalid service account name")
        }
        XCTAssertThrowsError(try evaluate("authorizer.group('').resource(' ')")) { error in
            XCTAssertEqual((error as? CELError)?.message, "resource must not be empty")
        }
        XCTAssertThrowsError(try evaluate("authorizer.check('get')")) { error in
            XCTAssertTrue((error as? CELError)?.message.contains("no such overload") ?? false, "\(error)")
        }
        // An error is a CEL error value: a decisive other side of || wins over it.
        XCTAssertEqual(try evaluate("true || authorizer.group('').resource('').check('get').allowed()"), .bool(true))
    }
}
