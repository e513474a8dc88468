import Foundation
import KubeCore

/// The CEL implementation of ``ValidationRuleEvaluator``: plug it into ``SchemaValidator`` to
/// enforce a CRD's `x-kubernetes-validations`.
///
/// Each distinct rule is compiled once and cached (rules repeat on every request). Failures are
/// worded as apiextensions-apiserver words them: the rule's `message` (trimmed) or
/// `failed rule: <rule>` when it evaluates to false, and `<error> evaluating rule: <rule or
/// message>` when evaluation fails (missing key, overflow, bad duration, cost limit, ...).
public final class CELRuleEvaluator: ValidationRuleEvaluator, @unchecked Sendable {
    private let lock = NSLock()
    private var programs: [String: Result<CELProgram, CELError>] = [:]
    private let maxSteps: Int

    public init(maxSteps: Int = CELProgram.defaultMaxSteps) {
        self.maxSteps = maxSteps
    }

    /// The compiled rule, or its compile error; cached either way.
    public func program(for rule: String) -> Result<CELProgram, CELError> {
        lock.lock()
        defer { lock.unlock() }
        if let cached = programs[rule] { return cached }
        let compiled: Result<CELProgram, CELError>
        do {
            compiled = .success(try CELProgram(compiling: rule, maxSteps: maxSteps))
        } catch let error as CELError {
            compiled = .failure(error)
        } catch {
            compiled = .failure(CELError(message: "\(error)", position: 0))
        }
        programs[rule] = compiled
        return compiled
    }

    public func evaluate(_ rule: ValidationRule, value: JSONValue, oldValue: JSONValue?) -> RuleFailure? {
        let trimmedMessage = rule.message?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let described = trimmedMessage.isEmpty ? rule.rule.trimmingCharacters(in: .whitespacesAndNewlines) : trimmedMessage
        do {
            let valid = try program(for: rule.rule).get().validate(self: value, oldSelf: oldValue)
            if valid { return nil }
            return RuleFailure(message: trimmedMessage.isEmpty ? "failed rule: \(described)" : trimmedMessage)
        } catch let error as CELError {
            return RuleFailure(message: "\(error.message) evaluating rule: \(described)")
        } catch {
            return RuleFailure(message: "\(error) evaluating rule: \(described)")
        }
    }
}
