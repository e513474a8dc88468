import Foundation

/// Evaluates `x-kubernetes-validations` rules with KubeCore's CEL evaluator. Programs are
/// compiled once per rule text and cached; a rule that does not compile or errors at run
/// time fails validation with the error as the message (kube-apiserver rejects such CRDs at
/// creation; here the object is rejected, which is the safe side).
public final class CELRuleEvaluator: ValidationRuleEvaluator, @unchecked Sendable {
    private let lock = NSLock()
    private var programs: [String: Result<CELProgram, Error>] = [:]

    public init() {}

    func program(_ rule: String) -> Result<CELProgram, Error> {
        lock.lock()
        defer { lock.unlock() }
        if let cached = programs[rule] { return cached }
        let compiled = Result { try CELProgram(compiling: rule) }
        programs[rule] = compiled
        return compiled
    }

    public func evaluate(_ rule: ValidationRule, value: JSONValue, oldValue: JSONValue?) -> RuleFailure? {
        let message = rule.message ?? "failed rule: \(rule.rule)"
        switch program(rule.rule) {
        case .failure(let error):
            return RuleFailure(message: "compilation failed: \(error)")
        case .success(let program):
            do {
                return try program.validate(self: value, oldSelf: oldValue) ? nil : RuleFailure(message: message)
            } catch {
                return RuleFailure(message: "\(message): \(error)")
            }
        }
    }
}
