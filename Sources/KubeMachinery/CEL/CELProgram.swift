import Foundation
import KubeCore

/// A compiled CEL expression: a CRD `x-kubernetes-validations` rule, or (with other
/// ``variables`` and ``evaluate(bindings:)``) a ValidatingAdmissionPolicy expression.
///
/// Compile once, evaluate many times: the parsed tree (including literal regular expressions)
/// is immutable and `Sendable`, and each evaluation keeps its own state. Compilation rejects
/// syntax errors, unknown variables and over-deep nesting with a ``CELError`` whose position
/// points at the offending token. Evaluation binds `self` (the value at the rule's schema node)
/// and, for transition rules, `oldSelf`; it is bounded by ``maxSteps`` so a hostile or careless
/// rule cannot hang the API server.
///
/// ```swift
/// let rule = try CELProgram(compiling: "duration(self.rotateBefore) < duration(self.tokenTTL)")
/// let ok = try rule.validate(self: spec)
/// ```
public struct CELProgram: Sendable {
    public let source: String
    /// Evaluation steps allowed per call; each visited node, loop iteration and element a builtin
    /// walks counts one.
    public let maxSteps: Int
    /// Whether the rule mentions `oldSelf`, i.e. is a transition rule that only applies on update.
    public let referencesOldSelf: Bool
    /// The top-level variables the expression may reference (`self`, `oldSelf` for CRD rules;
    /// `object`, `request`, `authorizer`... for admission policies).
    public let variables: Set<String>

    let root: CELExpr
    private let scalars: [Unicode.Scalar]

    public static let defaultMaxSteps = 1_000_000
    /// The variables of a CRD validation rule.
    public static let ruleVariables: Set<String> = ["self", "oldSelf"]

    /// Compiles `source`; `variables` are the names it may reference besides macro variables
    /// and type names (an unknown one is a compile error, as in CEL's checker).
    public init(compiling source: String, variables: Set<String> = CELProgram.ruleVariables,
                maxSteps: Int = CELProgram.defaultMaxSteps) throws {
        let scalars = Array(source.unicodeScalars)
        self.source = source
        self.scalars = scalars
        self.maxSteps = maxSteps
        self.variables = variables
        do {
            root = try CELParser.parse(scalars)
            var usesOldSelf = false
            try CELProgram.checkReferences(root, declared: variables, bound: [], usesOldSelf: &usesOldSelf)
            referencesOldSelf = usesOldSelf
        } catch let error as CELError {
            throw error.located(in: scalars)
        }
    }

    /// Evaluates the rule against a JSON value (and the previous value, for transition rules).
    public func evaluate(self selfValue: JSONValue, oldSelf: JSONValue? = nil) throws -> CELValue {
        try evaluate(self: CELValue(json: selfValue), oldSelf: oldSelf.map(CELValue.init(json:)))
    }

    /// Evaluates the rule against already-converted values (saves the conversion when many
    /// rules run against the same object).
    public func evaluate(self selfValue: CELValue, oldSelf: CELValue? = nil) throws -> CELValue {
        var interpreter = CELInterpreter(selfValue: selfValue, oldSelf: oldSelf, maxSteps: maxSteps)
        do {
            return try interpreter.eval(root)
        } catch let error as CELError {
            throw error.located(in: scalars)
        }
    }

    /// Evaluates the expression with its top-level variables bound (names not given are
    /// unbound: referencing one is an evaluation error).
    public func evaluate(bindings: [String: CELValue]) throws -> CELValue {
        var interpreter = CELInterpreter(bindings: bindings.map { (name: $0.key, value: $0.value) }, maxSteps: maxSteps)
        do {
            return try interpreter.eval(root)
        } catch let error as CELError {
            throw error.located(in: scalars)
        }
    }

    /// Evaluates a validation rule, which must produce a bool: `true` means the object is valid.
    public func validate(self selfValue: JSONValue, oldSelf: JSONValue? = nil) throws -> Bool {
        let result = try evaluate(self: selfValue, oldSelf: oldSelf)
        guard case .bool(let valid) = result else {
            throw CELError(message: "rule must evaluate to a bool, got \(result.typeName)", position: 0).located(in: scalars)
        }
        return valid
    }

    /// Rejects identifiers that are neither variables (`self`, `oldSelf`, macro variables) nor
    /// type names, as CEL's checker does at compile time.
    private static func checkReferences(_ expr: CELExpr, declared: Set<String>, bound: [String], usesOldSelf: inout Bool) throws {
        switch expr.kind {
        case .literal: return
        case .identifier(let name):
            if name == "oldSelf" && !bound.contains(name) { usesOldSelf = true }
            guard declared.contains(name) || bound.contains(name) || CELFunctions.typeNames.contains(name) else {
                throw CELError(message: "undeclared reference to '\(name)'", position: expr.position)
            }
        case .select(let e, _), .has(let e, _), .matches(let e, _), .not(let e), .negate(let e):
            try checkReferences(e, declared: declared, bound: bound, usesOldSelf: &usesOldSelf)
        case .index(let a, let b), .binary(_, let a, let b), .and(let a, let b), .or(let a, let b):
            try checkReferences(a, declared: declared, bound: bound, usesOldSelf: &usesOldSelf)
            try checkReferences(b, declared: declared, bound: bound, usesOldSelf: &usesOldSelf)
        case .call(_, let target, let args):
            for e in (target.map { [$0] } ?? []) + args { try checkReferences(e, declared: declared, bound: bound, usesOldSelf: &usesOldSelf) }
        case .list(let items):
            for e in items { try checkReferences(e, declared: declared, bound: bound, usesOldSelf: &usesOldSelf) }
        case .map(let entries):
            for entry in entries {
                try checkReferences(entry.key, declared: declared, bound: bound, usesOldSelf: &usesOldSelf)
                try checkReferences(entry.value, declared: declared, bound: bound, usesOldSelf: &usesOldSelf)
            }
        case .conditional(let a, let b, let c):
            for e in [a, b, c] { try checkReferences(e, declared: declared, bound: bound, usesOldSelf: &usesOldSelf) }
        case .comprehension(_, let range, let variable, let predicate, let transform):
            try checkReferences(range, declared: declared, bound: bound, usesOldSelf: &usesOldSelf)
            for e in [predicate, transform].compactMap({ $0 }) {
                try checkReferences(e, declared: declared, bound: bound + [variable], usesOldSelf: &usesOldSelf)
            }
        }
    }
}
