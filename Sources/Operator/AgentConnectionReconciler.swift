import AgentGateAPI
import ControllerRuntime
import Foundation
import KubeClient
import KubeCore
import Logging

/// AgentConnection: from spec to a running gateway configuration.
///
/// One pass, under the `agentgate.io/credentials` finalizer:
/// 1. Validate what the schema cannot (``SpecValidation``) → `Stalled`, `InvalidSpec`. An
///    issuer outside ``TrustedIssuers`` → `Stalled`, `IssuerNotTrusted`, and the Secret is
///    deleted: the one stop that withdraws the credential (the others keep the gateway on the
///    last good configuration), because that configuration was never acceptable.
/// 2. Resolve the ServiceAccount, the RecordingPolicy and the selected MaskingRules from the
///    informer caches → `Reconciling` (`ServiceAccountNotFound`, `RecordingPolicyNotFound`)
///    or `Stalled` (`RecordingPolicyInvalid`, `MaskingRuleInvalid`). Their informers requeue
///    the connection when they change, so nothing polls.
/// 3. Keep a usable token: the one in memory or in the stored Secret (a restarted operator
///    reuses it), else a TokenRequest with the spec's TTL. A token is replaced `rotateBefore`
///    ahead of expiry, or at once when the ServiceAccount was recreated or the TTL changed.
/// 4. Server-side apply the Secret (compiled ``GatewayConnectionConfig`` + token) in the
///    gateway namespace when it changed, then the status (`Ready`), then requeue at the
///    rotation time.
///
/// Conditions beside kstatus's three are warnings: kstatus, Flux and the Argo CD health check
/// read only Ready, Reconciling and Stalled, so these never make a connection unhealthy, and
/// `Ready`'s message points at them when they are False.
/// - `MaskingRulesSelected` (``setMaskingRulesSelected(_:namespace:generation:on:)``).
/// - `IssuerReachable` (``IssuerReachability``): True/`JWKSFetched`, False/`DiscoveryFailed` or
///   False/`JWKSFetchFailed`, Unknown/`Checking`. Not `Ready=False`, because the operator checks
///   from its own network position, not the gateway's, and the gateway keeps verifying with
///   the keys it already holds; the Secret is written either way. A failing issuer is checked
///   again after 30 s (the connection is requeued, and the condition flips back when it
///   answers), a reachable one after 5 min.
///
/// Writes for a new connection: finalizer, TokenRequest, Secret, status — four.
/// Deleting the connection deletes its Secret (credential and configuration) before the
/// finalizer is removed.
final class AgentConnectionReconciler: Reconciler, @unchecked Sendable {
    static let finalizer = "agentgate.io/credentials"

    let client: KubernetesClient
    let options: OperatorOptions
    let connections: Informer<AgentConnection>
    let serviceAccounts: Informer<ServiceAccount>
    let recordingPolicies: Informer<RecordingPolicy>
    let maskingRules: Informer<MaskingRule>
    let secrets: Informer<Secret>
    /// Whether issuers answer (nil: not checked).
    let issuers: IssuerReachability?
    let status: StatusApplier
    let events: EventRecorder
    let logger: Logger
    private let lock = NSLock()
    /// The Secret content this operator last wrote (or read) per connection.
    private var written: [ReconcileRequest: ConnectionSecret] = [:]
    /// The resourceVersions of each connection this operator wrote (finalizer, status).
    private var expected: [ReconcileRequest: OwnWrites] = [:]

    init(client: KubernetesClient, options: OperatorOptions, connections: Informer<AgentConnection>,
         serviceAccounts: Informer<ServiceAccount>, recordingPolicies: Informer<RecordingPolicy>,
         maskingRules: Informer<MaskingRule>, secrets: Informer<Secret>, issuers: IssuerReachability?, status: StatusApplier,
         events: EventRecorder, logger: Logger) {
        self.client = client
        self.options = options
        self.connections = connections
        self.serviceAccounts = serviceAccounts
        self.recordingPolicies = recordingPolicies
        self.maskingRules = maskingRules
        self.secrets = secrets
        self.issuers = issuers
        self.status = status
        self.events = events
        self.logger = logger
    }

    func reconcile(_ request: ReconcileRequest) async throws -> ReconcileResult {
        guard let connection = connections.cache.get(request) else {
            forget(request)
            lock.withLock { _ = expected.removeValue(forKey: request) }
            status.forget(AgentConnection.self, request)
            return .done
        }
        // The cache has not yet seen this operator's last write: acting on it would repeat that
        // write. The watch event for the newer version requeues the connection.
        let cached = connection.metadata.resourceVersion
        if lock.withLock({ expected[request]?.isBehind(cached) ?? false }) {
            return .done
        }
        return try await Finalizer.reconcile(connection, finalizer: Self.finalizer, client: client,
                                             apply: { try await self.apply($0, request, cachedVersion: cached) },
                                             cleanup: { try await self.cleanup($0, request) })
    }

    // MARK: Apply

    private func apply(_ connection: AgentConnection, _ request: ReconcileRequest, cachedVersion: String?) async throws -> ReconcileResult {
        if connection.metadata.resourceVersion != cachedVersion {
            // Finalizer.reconcile added the finalizer: a write over the cached version.
            expect(request, connection.metadata.resourceVersion, over: cachedVersion)
        }
        let spec = connection.spec
        let namespace = request.namespace
        let problems = SpecValidation.validate(spec)
        guard problems.isEmpty else {
            return try await stop(connection, .stalled(reason: "InvalidSpec", message: SpecValidation.summary(problems)))
        }
        guard options.trustedIssuers.trusts(spec.identity.issuer) else {
            // Not a configuration to keep serving: the credential goes, so the gateway stops.
            try await withdrawCredential(request)
            return try await stop(connection, .stalled(reason: "IssuerNotTrusted", message: options.trustedIssuers.refusal(of: spec.identity.issuer)),
                                  credential: .withdrawn)
        }
        guard let serviceAccount = serviceAccounts.cache.get(namespace: namespace, name: spec.serviceAccountName) else {
            return try await stop(connection, .reconciling(
                reason: "ServiceAccountNotFound",
                message: "ServiceAccount \(namespace)/\(spec.serviceAccountName) not found; create it or change spec.serviceAccountName"))
        }

        var recording = RecordingPolicySpec()
        var recordingPolicyName: String?
        if let reference = spec.recordingPolicyRef {
            guard let policy = recordingPolicies.cache.get(namespace: namespace, name: reference.name) else {
                return try await stop(connection, .reconciling(
                    reason: "RecordingPolicyNotFound",
                    message: "RecordingPolicy \(namespace)/\(reference.name) not found; create it or change spec.recordingPolicyRef.name"))
            }
            let policyProblems = SpecValidation.validate(policy.spec)
            guard policyProblems.isEmpty else {
                return try await stop(connection, .stalled(
                    reason: "RecordingPolicyInvalid",
                    message: "RecordingPolicy \(namespace)/\(reference.name) is invalid (\(SpecValidation.summary(policyProblems))); the gateway keeps the last good configuration"))
            }
            recording = policy.spec
            recordingPolicyName = reference.name
        }

        let rules = try spec.maskingRuleSelector.map { maskingRules.cache.list(namespace: namespace, selector: try $0.asSelector()) } ?? []
        let invalidRules = rules.filter { !SpecValidation.compile($0.spec).problems.isEmpty }.compactMap(\.metadata.name)
        guard invalidRules.isEmpty else {
            return try await stop(connection, .stalled(
                reason: "MaskingRuleInvalid",
                message: "selected MaskingRule(s) \(invalidRules.joined(separator: ", ")) do not compile (see their status); the gateway keeps the last good configuration"))
        }

        let ttl = (spec.credentials ?? CredentialPolicy()).tokenTTLSeconds ?? 3600
        let rotateBefore = (spec.credentials ?? CredentialPolicy()).rotateBeforeSeconds ?? 600
        let serviceAccountUID = serviceAccount.metadata.uid ?? ""
        let now = options.now()
        var stored = try await storedSecret(request)
        var credential = stored?.credential
        var rotated = false
        if credential?.isUsable(serviceAccount: spec.serviceAccountName, uid: serviceAccountUID, ttl: ttl,
                                rotateBefore: rotateBefore, now: now) != true {
            let issued: IssuedToken
            do {
                issued = try await client.createToken(namespace: namespace, serviceAccount: spec.serviceAccountName,
                                                      expirationSeconds: Int(ttl))
            } catch KubeError.notFound {
                return try await stop(connection, .reconciling(
                    reason: "ServiceAccountNotFound",
                    message: "ServiceAccount \(namespace)/\(spec.serviceAccountName) not found; create it or change spec.serviceAccountName"))
            } catch {
                _ = try? await stop(connection, .reconciling(reason: "TokenRequestFailed",
                                                             message: "requesting a token for ServiceAccount \(namespace)/\(spec.serviceAccountName) failed: \(error)"))
                throw error
            }
            rotated = credential != nil
            credential = ConnectionSecret.Credential(
                token: issued.token, issuedAt: now, expiresAt: issued.expirationTimestamp,
                serviceAccount: spec.serviceAccountName, serviceAccountUID: serviceAccountUID, tokenTTLSeconds: ttl,
                rotations: credential.map { $0.rotations + 1 } ?? 0)
        }
        guard let credential else { return .requeue }

        let endpoint = options.gatewayURL.map { Self.endpoint(gatewayURL: $0, namespace: namespace, name: request.name) }
        let config = GatewayConnectionConfig(
            namespace: namespace, name: request.name, generation: connection.metadata.generation ?? 0,
            uid: connection.metadata.uid ?? "", serviceAccountName: spec.serviceAccountName, endpoint: endpoint,
            identity: spec.identity, approval: spec.approval, access: spec.access, recording: recording,
            recordingPolicyName: recordingPolicyName,
            maskingRules: rules.map { NamedMaskingRule(name: $0.metadata.name ?? "", spec: $0.spec) },
            credentialExpiresAt: KubeTime.format(credential.expiresAt))
        let desired = ConnectionSecret(config: config, credential: credential)
        if stored != desired {
            let body = try desired.applyConfiguration(namespace: options.gatewayNamespace, connectionUID: connection.metadata.uid ?? "")
            _ = try await client.apply(.secrets, body, namespace: options.gatewayNamespace, fieldManager: options.fieldManager, force: true)
            remember(request, desired)
            stored = desired
        }
        if rotated {
            await events.record(.init(connection), type: .normal, reason: "CredentialRotated", action: "RotateCredential",
                                note: "requested a new token for ServiceAccount \(namespace)/\(spec.serviceAccountName), valid until \(KubeTime.format(credential.expiresAt)); the gateway uses it from now on")
        }

        let issuer = await issuers?.result(for: spec.identity.issuer)
        let ruleNames = rules.compactMap(\.metadata.name).sorted()
        var message = "serving"
        if let endpoint { message += " at \(endpoint)" }
        message += " with \(ruleNames.count) MaskingRule(s)"
        let selectsNothing = spec.maskingRuleSelector != nil && ruleNames.isEmpty
        if selectsNothing { message += " (spec.maskingRuleSelector selects none; the built-in rules still mask)" }
        if let outcome = issuer?.outcome, !outcome.isReachable { message += " (the operator cannot reach the issuer: see IssuerReachable)" }
        var newStatus = operatorStatus(connection)
        newStatus.endpoint = endpoint
        newStatus.appliedMaskingRules = ruleNames
        newStatus.credential = CredentialStatus(
            issuedAt: KubeTime.format(credential.issuedAt), expiresAt: KubeTime.format(credential.expiresAt),
            rotations: credential.rotations, secretName: GatewayConnectionConfig.secretName(namespace: namespace, name: request.name))
        var conditions = newStatus.conditions ?? []
        KStatus.set(.ready(reason: "Ready", message: message), generation: connection.metadata.generation, on: &conditions)
        Self.setMaskingRulesSelected(spec.maskingRuleSelector == nil ? nil : ruleNames, namespace: namespace,
                                     generation: connection.metadata.generation, on: &conditions)
        IssuerReachability.setCondition(issuer, issuer: spec.identity.issuer, checking: issuers != nil,
                                        generation: connection.metadata.generation, on: &conditions)
        newStatus.conditions = conditions
        expect(request, try await status.apply(newStatus, to: connection), over: connection.metadata.resourceVersion)

        let due = credential.rotationDue(rotateBefore: rotateBefore).timeIntervalSince(options.now())
        var requeue = Duration.milliseconds(Int64(max(1, due) * 1000))
        if let issuers {
            // Look again when the result lapses; a failing issuer is retried sooner, so it heals.
            requeue = min(requeue, issuer.map { issuers.period(of: $0.outcome) } ?? issuers.configuration.firstCheckWait)
        }
        return .requeueAfter(requeue)
    }

    static let maskingRulesSelected = "MaskingRulesSelected"

    /// `MaskingRulesSelected`: a warning beside the kstatus conditions, not a reason to be
    /// unready. A `maskingRuleSelector` that selects no MaskingRule is most often a typo in a
    /// label, and the connection then masks with the built-in rules only: `False`, reason
    /// `NoMaskingRuleSelected`, naming the namespace. `True` lists the selected rules. Absent
    /// when the connection has no selector. kstatus, Flux and the Argo CD health check read
    /// only Ready, Reconciling and Stalled, so this never makes the connection unhealthy.
    static func setMaskingRulesSelected(_ selected: [String]?, namespace: String, generation: Int64?, on conditions: inout [Condition]) {
        guard let selected else {
            conditions.remove(maskingRulesSelected)
            return
        }
        let condition = selected.isEmpty
            ? Condition(type: maskingRulesSelected, status: ConditionStatus.false, observedGeneration: generation, reason: "NoMaskingRuleSelected",
                        message: "spec.maskingRuleSelector selects no MaskingRule in namespace \(namespace); only the built-in rules mask this connection")
            : Condition(type: maskingRulesSelected, status: ConditionStatus.true, observedGeneration: generation, reason: "Selected",
                        message: "\(selected.count) MaskingRule(s): \(selected.joined(separator: ", "))")
        conditions.set(condition)
    }

    /// What a not-ready status says of the credential.
    enum CredentialState {
        /// The gateway keeps the last good configuration and credential: status keeps them too.
        case kept
        /// The Secret was deleted: status.credential goes with it.
        case withdrawn
    }

    /// Writes a not-ready status (keeping what the connection already has: endpoint, and the
    /// credential unless it was withdrawn), records a Warning Event when the status changed,
    /// and waits for a change of the inputs.
    private func stop(_ connection: AgentConnection, _ state: KStatus.State, credential: CredentialState = .kept) async throws -> ReconcileResult {
        var newStatus = operatorStatus(connection)
        if credential == .withdrawn { newStatus.credential = nil }
        var conditions = newStatus.conditions ?? []
        KStatus.set(state, generation: connection.metadata.generation, on: &conditions)
        newStatus.conditions = conditions
        let written = try await status.apply(newStatus, to: connection)
        expect(ReconcileRequest(namespace: connection.metadata.namespace ?? "", name: connection.metadata.name ?? ""), written,
               over: connection.metadata.resourceVersion)
        if written != nil {
            switch state {
            case .reconciling(let reason, let message), .stalled(let reason, let message):
                await events.record(.init(connection), type: .warning, reason: reason, action: "Reconcile", note: message)
            case .ready:
                break
            }
        }
        return .done
    }

    /// The operator's fields of the current status (never `sessions` or `pendingApprovals`,
    /// which the gateway owns).
    private func operatorStatus(_ connection: AgentConnection) -> AgentConnectionStatus {
        let current = connection.status
        return AgentConnectionStatus(observedGeneration: connection.metadata.generation, endpoint: current?.endpoint,
                                     credential: current?.credential, appliedMaskingRules: current?.appliedMaskingRules,
                                     conditions: current?.conditions)
    }

    static func endpoint(gatewayURL: String, namespace: String, name: String) -> String {
        var base = gatewayURL
        while base.hasSuffix("/") { base.removeLast() }
        return "\(base)/c/\(namespace)/\(name)"
    }

    // MARK: Cleanup

    private func cleanup(_ connection: AgentConnection, _ request: ReconcileRequest) async throws -> ReconcileResult {
        try await withdrawCredential(request)
        logger.info("deleted the credential and configuration of a removed connection", metadata: ["connection": "\(request)"])
        return .done
    }

    /// Deletes the connection's Secret (its credential and configuration), so the gateway
    /// stops serving it. Asked of the API server even when the cache shows none: a Secret
    /// another replica wrote just before it lost the Lease may not be in the cache yet.
    private func withdrawCredential(_ request: ReconcileRequest) async throws {
        let name = GatewayConnectionConfig.secretName(namespace: request.namespace, name: request.name)
        do {
            try await client.delete(.secrets, name: name, namespace: options.gatewayNamespace)
        } catch KubeError.notFound {
            // Already gone.
        }
        forget(request)
    }

    // MARK: What this operator wrote

    /// The Secret content in effect: what this operator last wrote, else what the informer's
    /// cache holds (synced before any reconcile, so after a restart a still-good token is found
    /// and reused instead of minting a new one).
    private func storedSecret(_ request: ReconcileRequest) async throws -> ConnectionSecret? {
        if let known = lock.withLock({ written[request] }) { return known }
        let name = GatewayConnectionConfig.secretName(namespace: request.namespace, name: request.name)
        guard let secret = secrets.cache.get(namespace: options.gatewayNamespace, name: name),
              let parsed = ConnectionSecret(secret: secret) else { return nil }
        remember(request, parsed)
        return parsed
    }

    /// Records that this operator wrote `resourceVersion` over `base` (nil: nothing written).
    private func expect(_ request: ReconcileRequest, _ resourceVersion: String?, over base: String?) {
        guard let resourceVersion else { return }
        lock.withLock { expected[request, default: OwnWrites()].wrote(resourceVersion, over: base) }
    }

    private func remember(_ request: ReconcileRequest, _ secret: ConnectionSecret) {
        lock.withLock { written[request] = secret }
    }

    func forget(_ request: ReconcileRequest) {
        _ = lock.withLock { written.removeValue(forKey: request) }
    }

    /// Called for changes to the connection Secrets: one that no longer holds what this
    /// operator wrote (edited or deleted by someone else) is forgotten so the next pass repairs it.
    func secretChanged(_ request: ReconcileRequest, now secret: Secret?) -> Bool {
        lock.withLock {
            guard let known = written[request] else { return secret == nil }
            if let secret, ConnectionSecret(secret: secret) == known { return false }
            written.removeValue(forKey: request)
            return true
        }
    }
}
