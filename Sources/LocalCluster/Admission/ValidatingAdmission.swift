import Foundation
import KubeCore
import KubeMachinery

/// Validating admission by ValidatingAdmissionPolicy, as kube-apiserver's
/// `admission/plugin/policy/validating` dispatcher decides it.
///
/// Flow for one write (``admit(_:)``), policies and bindings in name order:
/// 1. A policy whose `matchConstraints` do not match is skipped; one that cannot be
///    configured denies under failurePolicy Fail (`failed to configure policy: ...`).
/// 2. A binding applies when its policy exists (a binding naming a missing policy does
///    nothing) and its `matchResources`, if any, match.
/// 3. `matchConditions` (all must be true; an error counts under the failurePolicy), then
///    `variables` (in order; each sees the earlier ones; an error surfaces only where used),
///    then each validation: true admits; false fails with the messageExpression's string,
///    else `message`, else `failed expression: <expression>`; an error fails under the
///    failurePolicy with `expression '<expression>' resulted in error: <error>`.
/// 4. A failure under a `Deny` binding refuses the write. The first one is answered as
///    `admission.NewForbidden` shapes it: `<resource>.<group> "<name>" is forbidden:
///    ValidatingAdmissionPolicy '<policy>' with binding '<binding>' denied request: <message>`,
///    with the validation's `reason` (default `Invalid`) and its code (Forbidden 403,
///    Unauthorized 401, RequestEntityTooLarge 413, Invalid 422), and the message as a cause.
///    Under `Warn` it becomes a warning (`Warning` header); `Audit` is accepted and ignored.
///
/// Everything is read before the store lock is taken (``ResourceHandlers/validatingAdmission(_:)``),
/// so evaluating inside a read-modify-write never reads the store: the authorizer answers
/// from an RBAC snapshot taken with the policies.
struct ValidatingAdmission: Sendable {
    struct Hook: Sendable {
        let policy: AdmissionPolicy
        let bindings: [AdmissionPolicyBinding]
    }

    let hooks: [Hook]
    let authorizer: RBACAuthorizer
    let namespaceObject: JSONValue?

    private struct Failure {
        let policy: String
        let binding: String?
        let message: String
        let reason: String?
    }

    /// Refuses the write (throws the API error) or admits it, returning its warnings.
    func admit(_ attributes: AdmissionAttributes) throws -> [String] {
        var attributes = attributes
        attributes.namespaceObject = namespaceObject
        var denied: [Failure] = []
        var warnings: [String] = []
        for hook in hooks where hook.policy.matchConstraints.matches(attributes) {
            let policy = hook.policy
            if let problem = policy.configurationError {
                if policy.failOnError {
                    denied.append(Failure(policy: policy.name, binding: nil, message: "failed to configure policy: \(problem)", reason: nil))
                }
                continue
            }
            for binding in hook.bindings where binding.matchResources?.matches(attributes) ?? true {
                for failure in evaluate(policy, attributes) {
                    if binding.deny {
                        denied.append(Failure(policy: policy.name, binding: binding.name, message: failure.message, reason: failure.reason))
                    }
                    if binding.warn {
                        warnings.append("Validation failed for ValidatingAdmissionPolicy '\(policy.name)' with binding '\(binding.name)': \(failure.message)")
                    }
                }
            }
        }
        if let first = denied.first { throw APIError(status(for: first, attributes)) }
        return warnings
    }

    /// The validations of `policy` that fail for this request: message and reason of each.
    private func evaluate(_ policy: AdmissionPolicy, _ attributes: AdmissionAttributes) -> [(message: String, reason: String?)] {
        let onError: (String) -> [(message: String, reason: String?)] = { policy.failOnError ? [($0, nil)] : [] }
        var bindings: [String: CELValue] = [
            "object": attributes.object.map(CELValue.init(json:)) ?? .null,
            "oldObject": attributes.oldObject.map(CELValue.init(json:)) ?? .null,
            "request": attributes.request,
            "params": .null,
            "namespaceObject": namespaceObject.map(CELValue.init(json:)) ?? .null,
            "authorizer": .opaque(CELAuthorizer(requestResource: attributes.requestResourceCheck, decide: decide(for: attributes.user))),
        ]

        var conditionError: String?
        for condition in policy.matchConditions {
            switch Result(catching: { try condition.expression.program.evaluate(bindings: bindings) }) {
            case .success(.bool(false)): return []
            case .success(.bool(true)): continue
            case .success(let other):
                conditionError = conditionError ?? "matchCondition '\(condition.name)' must evaluate to bool, not \(other.typeName)"
            case .failure(let error):
                conditionError = conditionError ?? "expression '\(condition.expression.source)' resulted in error: \(Self.text(error))"
            }
        }
        if let conditionError { return onError(conditionError) }

        var variables = PolicyVariables()
        for variable in policy.variables {
            bindings["variables"] = .opaque(variables)
            variables.values[variable.name] = Result { try variable.expression.program.evaluate(bindings: bindings) }
                .mapError { CELError(message: Self.text($0), position: 0) }
        }
        bindings["variables"] = .opaque(variables)

        var failures: [(message: String, reason: String?)] = []
        for validation in policy.validations {
            let result: CELValue
            do {
                result = try validation.expression.program.evaluate(bindings: bindings)
            } catch {
                failures += onError("expression '\(validation.expression.source)' resulted in error: \(Self.text(error))")
                continue
            }
            if result == .bool(true) { continue }
            failures.append((message(for: validation, bindings), validation.reason ?? "Invalid"))
        }
        return failures
    }

    /// messageExpression's string (trimmed, one line, at most 5000 bytes), else `message`,
    /// else `failed expression: ...`.
    private func message(for validation: AdmissionPolicy.Validation, _ bindings: [String: CELValue]) -> String {
        var withoutAuthorizer = bindings
        withoutAuthorizer["authorizer"] = nil
        if let messageExpression = validation.messageExpression,
           case .string(let text)? = try? messageExpression.program.evaluate(bindings: withoutAuthorizer) {
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !trimmed.isEmpty, !trimmed.contains("\n"), trimmed.utf8.count <= 5000 { return trimmed }
        }
        if let message = validation.message?.trimmingCharacters(in: .whitespacesAndNewlines), !message.isEmpty {
            return message
        }
        return "failed expression: \(validation.expression.source.trimmingCharacters(in: .whitespacesAndNewlines))"
    }

    /// Authorization checks for the request's user, or the ServiceAccount a check names.
    private func decide(for user: UserInfo) -> CELAuthorizer.Decide {
        let authorizer = self.authorizer
        return { check in
            var principal = user
            if let account = check.serviceAccount {
                principal = UserInfo(username: UserInfo.serviceAccountUsername(namespace: account.namespace, name: account.name),
                                     groups: ["system:serviceaccounts", "system:serviceaccounts:\(account.namespace)"])
            }
            let attributes = AuthorizationAttributes(
                verb: check.verb, apiGroup: check.group, apiVersion: "*", resource: check.resource,
                subresource: check.subresource, namespace: check.namespace, name: check.name,
                isResourceRequest: check.isResourceRequest, path: check.path)
            let decision = authorizer.allowed(user: principal, attributes: attributes)
            return CELAuthorizationDecision(allowed: decision.allowed, reason: decision.reason)
        }
    }

    private func status(for failure: Failure, _ attributes: AdmissionAttributes) -> Status {
        let message: String
        if let binding = failure.binding {
            message = "ValidatingAdmissionPolicy '\(failure.policy)' with binding '\(binding)' denied request: \(failure.message)"
        } else {
            message = "ValidatingAdmissionPolicy '\(failure.policy)' denied request: \(failure.message)"
        }
        let resource = attributes.group.isEmpty ? attributes.resource : "\(attributes.resource).\(attributes.group)"
        let name = attributes.nameForMessages
        let reason = failure.reason ?? "Invalid"
        let codes = ["Forbidden": 403, "Unauthorized": 401, "RequestEntityTooLarge": 413, "Invalid": 422]
        return Status(message: "\(resource) \(quoted(name)) is forbidden: \(message)", reason: reason,
                      details: StatusDetails(name: name, group: attributes.group.isEmpty ? nil : attributes.group,
                                             kind: attributes.resource,
                                             causes: [StatusCause(reason: nil, message: message, field: nil)]),
                      code: codes[reason] ?? 422)
    }

    private static func text(_ error: Error) -> String {
        (error as? CELError)?.message ?? "\(error)"
    }
}

/// The `variables` of one evaluation: each name's value, or the error it evaluated to (raised
/// where the variable is used, as kube's lazily evaluated variables do).
struct PolicyVariables: CELObject {
    var values: [String: Result<CELValue, CELError>] = [:]
    var celTypeName: String { "kubernetes.variables" }

    func field(_ name: String) throws -> CELValue? {
        guard let value = values[name] else { return nil }
        switch value {
        case .success(let value): return value
        case .failure(let error): throw error
        }
    }
}
