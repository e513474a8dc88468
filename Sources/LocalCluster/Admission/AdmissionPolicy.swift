import Foundation
import KubeCore
import KubeMachinery

/// A ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1), read and compiled once.
///
/// What is read: `failurePolicy` (default Fail), `matchConstraints`, `matchConditions`,
/// `variables`, `validations` (expression, message, messageExpression, reason) and
/// `paramKind`. What the server does not do: params (a policy with `paramKind` fails to
/// configure, under its failurePolicy), `auditAnnotations` (accepted, not evaluated), type
/// checking (expressions are checked for syntax and unknown variables only).
///
/// ``validate(_:)`` is what a create or update of the policy answers with: 422 and the field
/// errors kube-apiserver's validation would name (an expression that does not compile, a
/// failurePolicy or reason that is not supported, no validations).
struct AdmissionPolicy: Sendable {
    struct Expression: Sendable {
        let source: String
        let program: CELProgram
    }

    struct Validation: Sendable {
        let expression: Expression
        let message: String?
        let messageExpression: Expression?
        /// `Unauthorized`, `Forbidden`, `Invalid` or `RequestEntityTooLarge`; nil: Invalid.
        let reason: String?
    }

    let name: String
    let failOnError: Bool
    let matchConstraints: MatchResources
    let matchConditions: [(name: String, expression: Expression)]
    let variables: [(name: String, expression: Expression)]
    let validations: [Validation]
    /// Why the policy cannot run (a field error); every matching request then gets its failurePolicy.
    let configurationError: String?

    /// Variables of `validations[].expression`, `variables[].expression` and `matchConditions`.
    static let expressionVariables: Set<String> = ["object", "oldObject", "request", "params", "namespaceObject",
                                                   "authorizer", "variables"]
    /// `messageExpression` cannot ask the authorizer (kube compiles it without `authorizer`).
    static let messageVariables = expressionVariables.subtracting(["authorizer"])
    static let reasons = ["Unauthorized", "Forbidden", "Invalid", "RequestEntityTooLarge"]

    init(_ object: JSONValue) {
        var errors: [FieldError] = []
        self = Self.compile(object, errors: &errors)
    }

    private init(name: String, failOnError: Bool, matchConstraints: MatchResources,
                 matchConditions: [(name: String, expression: Expression)], variables: [(name: String, expression: Expression)],
                 validations: [Validation], configurationError: String?) {
        self.name = name
        self.failOnError = failOnError
        self.matchConstraints = matchConstraints
        self.matchConditions = matchConditions
        self.variables = variables
        self.validations = validations
        self.configurationError = configurationError
    }

    /// Field errors a write of this policy is refused with.
    static func validate(_ object: JSONValue) -> [FieldError] {
        var errors: [FieldError] = []
        _ = compile(object, errors: &errors)
        return errors
    }

    private static func compile(_ object: JSONValue, errors: inout [FieldError]) -> AdmissionPolicy {
        let spec = object["spec"] ?? [:]
        let name = object[path: ["metadata", "name"]]?.stringValue ?? ""
        let failurePolicy = spec["failurePolicy"]?.stringValue ?? "Fail"
        if !["Fail", "Ignore"].contains(failurePolicy) {
            errors.append(FieldError(.notSupported, field: "spec.failurePolicy", value: quoted(failurePolicy),
                                     detail: "supported values: \"Fail\", \"Ignore\""))
        }
        guard let constraints = spec["matchConstraints"] else {
            errors.append(FieldError(.required, field: "spec.matchConstraints", detail: ""))
            return AdmissionPolicy(name: name, failOnError: failurePolicy != "Ignore", matchConstraints: MatchResources([:]),
                                   matchConditions: [], variables: [], validations: [],
                                   configurationError: "spec.matchConstraints: Required value")
        }
        let matchConstraints = MatchResources(constraints)
        if matchConstraints.resourceRules.isEmpty {
            errors.append(FieldError(.required, field: "spec.matchConstraints.resourceRules", detail: ""))
        }
        errors += matchConstraints.problems(fieldPath: "spec.matchConstraints")

        func expression(_ source: String?, field: String, variables: Set<String>) -> Expression? {
            guard let source, !source.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                errors.append(FieldError(.required, field: field, detail: ""))
                return nil
            }
            do {
                return Expression(source: source, program: try CELProgram(compiling: source, variables: variables))
            } catch let error as CELError {
                errors.append(FieldError(.invalid, field: field, value: quoted(source),
                                         detail: "compilation failed: ERROR: <input>:\(error.line):\(error.column): \(error.message)"))
            } catch {
                errors.append(FieldError(.invalid, field: field, value: quoted(source), detail: "compilation failed: \(error)"))
            }
            return nil
        }

        var matchConditions: [(name: String, expression: Expression)] = []
        let conditionVariables = expressionVariables.subtracting(["variables"])
        for (index, condition) in (spec["matchConditions"]?.arrayValue ?? []).enumerated() {
            let field = "spec.matchConditions[\(index)]"
            let conditionName = condition["name"]?.stringValue ?? ""
            if conditionName.isEmpty { errors.append(FieldError(.required, field: "\(field).name", detail: "")) }
            if let compiled = expression(condition["expression"]?.stringValue, field: "\(field).expression", variables: conditionVariables) {
                matchConditions.append((conditionName, compiled))
            }
        }
        var variables: [(name: String, expression: Expression)] = []
        for (index, variable) in (spec["variables"]?.arrayValue ?? []).enumerated() {
            let field = "spec.variables[\(index)]"
            let variableName = variable["name"]?.stringValue ?? ""
            if variableName.isEmpty { errors.append(FieldError(.required, field: "\(field).name", detail: "")) }
            if let compiled = expression(variable["expression"]?.stringValue, field: "\(field).expression", variables: expressionVariables) {
                variables.append((variableName, compiled))
            }
        }
        var validations: [Validation] = []
        let declared = spec["validations"]?.arrayValue ?? []
        if declared.isEmpty && (spec["auditAnnotations"]?.arrayValue ?? []).isEmpty {
            errors.append(FieldError(.required, field: "spec.validations",
                                     detail: "validations or auditAnnotations must contain at least one item"))
        }
        for (index, validation) in declared.enumerated() {
            let field = "spec.validations[\(index)]"
            let reason = validation["reason"]?.stringValue
            if let reason, !reasons.contains(reason) {
                errors.append(FieldError(.notSupported, field: "\(field).reason", value: quoted(reason),
                                         detail: "supported values: " + reasons.map(quoted).joined(separator: ", ")))
            }
            var messageExpression: Expression?
            if let source = validation["messageExpression"]?.stringValue {
                messageExpression = expression(source, field: "\(field).messageExpression", variables: messageVariables)
            }
            if let compiled = expression(validation["expression"]?.stringValue, field: "\(field).expression", variables: expressionVariables) {
                validations.append(Validation(expression: compiled, message: validation["message"]?.stringValue,
                                              messageExpression: messageExpression, reason: reason))
            }
        }
        var configurationError = errors.first.map { "\($0)" }
        if configurationError == nil, spec["paramKind"] != nil {
            configurationError = "spec.paramKind: params are not supported by this server"
        }
        return AdmissionPolicy(name: name, failOnError: failurePolicy != "Ignore", matchConstraints: matchConstraints,
                               matchConditions: matchConditions, variables: variables, validations: validations,
                               configurationError: configurationError)
    }
}

/// A ValidatingAdmissionPolicyBinding: which policy, on what (`matchResources`, narrowing the
/// policy's own constraints), and what a failed validation does (`validationActions`).
struct AdmissionPolicyBinding: Sendable {
    let name: String
    let policyName: String
    /// nil: everything the policy matches.
    let matchResources: MatchResources?
    let deny: Bool
    let warn: Bool

    static let actions = ["Deny", "Warn", "Audit"]

    init(_ object: JSONValue) {
        let spec = object["spec"] ?? [:]
        name = object[path: ["metadata", "name"]]?.stringValue ?? ""
        policyName = spec["policyName"]?.stringValue ?? ""
        matchResources = spec["matchResources"].map(MatchResources.init)
        let actions = spec["validationActions"]?.arrayValue?.compactMap(\.stringValue) ?? []
        deny = actions.contains("Deny")
        warn = actions.contains("Warn")
    }

    /// Field errors a write of this binding is refused with.
    static func validate(_ object: JSONValue) -> [FieldError] {
        let spec = object["spec"] ?? [:]
        var errors: [FieldError] = []
        if (spec["policyName"]?.stringValue ?? "").isEmpty {
            errors.append(FieldError(.required, field: "spec.policyName", detail: ""))
        }
        let actions = spec["validationActions"]?.arrayValue?.compactMap(\.stringValue) ?? []
        if actions.isEmpty {
            errors.append(FieldError(.required, field: "spec.validationActions", detail: "at least one validation action is required"))
        }
        for (index, action) in actions.enumerated() where !Self.actions.contains(action) {
            errors.append(FieldError(.notSupported, field: "spec.validationActions[\(index)]", value: quoted(action),
                                     detail: "supported values: \"Audit\", \"Deny\", \"Warn\""))
        }
        if actions.contains("Deny") && actions.contains("Warn") {
            errors.append(FieldError(.invalid, field: "spec.validationActions", value: "[" + actions.map(quoted).joined(separator: ", ") + "]",
                                     detail: "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)"))
        }
        if let match = spec["matchResources"] {
            errors += MatchResources(match).problems(fieldPath: "spec.matchResources")
        }
        return errors
    }
}
