import AgentGateAPI
import AsyncHTTPClient
import ControllerRuntime
import Foundation
import KubeCore
import OIDC

/// Whether each OIDC issuer answers: discovery (`/.well-known/openid-configuration`), then a
/// JWKS at its `jwks_uri` holding at least one key the gateway accepts. What an
/// AgentConnection's `IssuerReachable` condition reports.
///
/// Contract:
/// - One check per issuer at a time, shared by every connection naming it: a result stands
///   for ``Configuration/reachableFor`` (5 min) when the issuer answered and
///   ``Configuration/retryAfter`` (30 s) when it did not, so many connections on one issuer
///   cost one fetch per period. Issuers are keyed exactly as written: discovery must name the
///   issuer exactly, so `https://idp/` and `https://idp` may well differ.
/// - ``result(for:)`` never blocks a reconcile for long: it returns the last result (even
///   past its period, while a new check runs) or, for an issuer never checked, waits at most
///   ``Configuration/firstCheckWait`` (2 s) and otherwise returns nil ("checking").
/// - When a check ends with another outcome than the last one (or is the first), handlers run
///   with the issuer, so the connections naming it are reconciled again: the condition flips
///   back when an issuer heals, without polling.
/// - Fetches go through ``OIDCDiscovery``, the code the gateway verifies tokens with. They run
///   from the operator's network position, which may differ from the gateway's; that is why
///   the outcome is a warning condition and not a reason for `Ready=False` (see
///   ``AgentConnectionReconciler``). Only issuers the ``TrustedIssuers`` list admits are
///   checked; with no list, whoever may create a connection can make the operator GET
///   `<any https URL>/.well-known/openid-configuration` and read the outcome in status, one
///   more reason to set `--trusted-issuer`.
public final class IssuerReachability: @unchecked Sendable {   // state behind `lock`
    public struct Configuration: Sendable {
        /// How long a reachable issuer's result stands.
        public var reachableFor: Duration = .seconds(300)
        /// How soon an issuer that failed is checked again.
        public var retryAfter: Duration = .seconds(30)
        /// How long a reconcile waits for an issuer's first check.
        public var firstCheckWait: Duration = .seconds(2)
        /// Bound of each HTTP request (discovery, JWKS).
        public var requestTimeout: Duration = .seconds(10)

        public init() {}
    }

    enum Outcome: Equatable, Sendable {
        case reachable(jwksURI: String, keys: Int)
        case discoveryFailed(String)
        case jwksFetchFailed(String)

        var isReachable: Bool { if case .reachable = self { true } else { false } }
    }

    struct Result: Sendable {
        var outcome: Outcome
        var checkedAt: ContinuousClock.Instant
    }

    let configuration: Configuration
    private let discovery: OIDCDiscovery
    private let lock = NSLock()
    private var results: [String: Result] = [:]
    private var checking: [String: Task<Result, Never>] = [:]
    private var handlers: [@Sendable (String) -> Void] = []
    /// Bounds memory when connections name many issuers over time (most clusters have a few).
    private static let capacity = 1024

    init(configuration: Configuration) {
        self.configuration = configuration
        let seconds = configuration.requestTimeout.components.seconds
        discovery = OIDCDiscovery(http: Self.http, timeout: .seconds(max(1, seconds)))
    }

    /// The client of every check: process-wide like `HTTPClient.shared` (never shut down), but
    /// a connection that fails fails the check at once rather than being retried until the
    /// timeout (the check is retried instead), and redirects are not followed, as the
    /// gateway's client follows none.
    private static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .seconds(10)))
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// Registers a handler called with an issuer whose outcome changed.
    func addHandler(_ handler: @escaping @Sendable (String) -> Void) {
        lock.withLock { handlers.append(handler) }
    }

    /// The issuer's latest result, starting a check when it is due (see the contract).
    func result(for issuer: String) async -> Result? {
        let now = ContinuousClock.now
        let (known, started): (Result?, Task<Result, Never>?) = lock.withLock {
            let known = results[issuer]
            if let known, now - known.checkedAt < period(of: known.outcome) { return (known, nil) }
            if let running = checking[issuer] { return (known, running) }
            let task = Task { await self.check(issuer) }
            checking[issuer] = task
            return (known, task)
        }
        if let known { return known }
        guard let started else { return nil }
        // Not a task group: it would wait for its children, and awaiting a check cannot be cancelled.
        let wait = configuration.firstCheckWait
        return await withCheckedContinuation { (continuation: CheckedContinuation<Result?, Never>) in
            let answer = FirstAnswer(continuation)
            Task { answer.resume(await started.value) }
            Task {
                try? await Task.sleep(for: wait)
                answer.resume(nil)
            }
        }
    }

    /// How long `outcome` stands before the issuer is checked again.
    func period(of outcome: Outcome) -> Duration {
        outcome.isReachable ? configuration.reachableFor : configuration.retryAfter
    }

    private func check(_ issuer: String) async -> Result {
        let outcome = await fetch(issuer)
        let result = Result(outcome: outcome, checkedAt: .now)
        let (changed, toCall): (Bool, [@Sendable (String) -> Void]) = lock.withLock {
            let previous = results[issuer]
            if results.count >= Self.capacity, previous == nil { results.removeAll(keepingCapacity: true) }
            results[issuer] = result
            checking[issuer] = nil
            return (previous?.outcome != outcome, handlers)
        }
        if changed { for handler in toCall { handler(issuer) } }
        return result
    }

    private func fetch(_ issuer: String) async -> Outcome {
        let jwksURI: String
        do {
            jwksURI = try await discovery.jwksURI(of: issuer)
        } catch {
            return .discoveryFailed(error.message)
        }
        do {
            let keys = try await discovery.keys(at: jwksURI)
            let usable = keys.filter { OIDCDiscovery.algorithm(of: $0) != nil }.count
            guard usable > 0 else {
                return .jwksFetchFailed("the JWKS at \(jwksURI) has no RS256, ES256 or EdDSA signing key (\(keys.count) key(s) in all)")
            }
            return .reachable(jwksURI: jwksURI, keys: usable)
        } catch {
            return .jwksFetchFailed(error.message)
        }
    }

    // MARK: The condition

    static let conditionType = "IssuerReachable"

    /// `IssuerReachable`: a warning beside the kstatus conditions, like `MaskingRulesSelected`.
    /// `True`/`JWKSFetched` names the JWKS and its key count; `False`/`DiscoveryFailed` or
    /// `False`/`JWKSFetchFailed` carries the failure in one sentence; `Unknown`/`Checking`
    /// while the first check runs (an earlier result for this generation, from before a
    /// restart, stays instead).
    /// Absent when the operator does not check issuers.
    static func setCondition(_ result: Result?, issuer: String, checking: Bool, generation: Int64?, on conditions: inout [Condition]) {
        guard checking else {
            conditions.remove(conditionType)
            return
        }
        let condition: Condition
        switch result?.outcome {
        case nil where conditions.contains(where: { $0.type == conditionType && $0.observedGeneration == generation }):
            return  // what an earlier check of this spec found (before a restart) stands until this one ends
        case nil:
            condition = Condition(type: conditionType, status: ConditionStatus.unknown, observedGeneration: generation, reason: "Checking",
                                  message: "checking that \(issuer) answers OIDC discovery and serves its signing keys")
        case .reachable(let jwksURI, let keys)?:
            condition = Condition(type: conditionType, status: ConditionStatus.true, observedGeneration: generation, reason: "JWKSFetched",
                                  message: "\(issuer) answers OIDC discovery; its JWKS at \(jwksURI) has \(keys) signing key(s)")
        case .discoveryFailed(let why)?:
            condition = Condition(type: conditionType, status: ConditionStatus.false, observedGeneration: generation, reason: "DiscoveryFailed",
                                  message: "OIDC discovery of \(issuer) failed: \(why); agents' tokens cannot be verified until it answers")
        case .jwksFetchFailed(let why)?:
            condition = Condition(type: conditionType, status: ConditionStatus.false, observedGeneration: generation, reason: "JWKSFetchFailed",
                                  message: "fetching the signing keys of \(issuer) failed: \(why); agents' tokens cannot be verified until it serves them")
        }
        conditions.set(condition)
    }
}

/// Resumes a continuation with whichever answer comes first.
private final class FirstAnswer<Value: Sendable>: @unchecked Sendable {   // state behind `lock`
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Value, Never>?

    init(_ continuation: CheckedContinuation<Value, Never>) {
        self.continuation = continuation
    }

    func resume(_ value: Value) {
        lock.withLock { () -> CheckedContinuation<Value, Never>? in
            defer { continuation = nil }
            return continuation
        }?.resume(returning: value)
    }
}
