import Foundation
import KubeCore

/// An error from compiling or evaluating a CEL rule.
///
/// `position` is the offset, in Unicode scalars from the start of the rule's source, of the token
/// or sub-expression at fault; `line` and `column` (1-based) locate the same point for people.
/// Compile errors always carry a position. Evaluation errors carry the position of the
/// sub-expression that failed (e.g. the `.x` of a missing field), so a CRD author can find it.
///
/// Evaluation errors are values in CEL: `false && <error>` is `false`, `true || <error>` is
/// `true`. Errors that mean "stop evaluating" (step or depth limit) are marked `isResourceLimit`
/// and are never absorbed that way.
public struct CELError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public var position: Int
    public var line: Int
    public var column: Int
    /// True when the evaluation was cut short by the step or depth limit.
    public var isResourceLimit: Bool

    public init(message: String, position: Int, line: Int = 0, column: Int = 0, isResourceLimit: Bool = false) {
        self.message = message
        self.position = position
        self.line = line
        self.column = column
        self.isResourceLimit = isResourceLimit
    }

    public var description: String {
        line > 0 ? "\(line):\(column): \(message)" : message
    }

    /// Fills `line` and `column` from `position` within `source`.
    func located(in source: [Unicode.Scalar]) -> CELError {
        var copy = self
        var line = 1, column = 1
        for scalar in source.prefix(max(0, min(position, source.count))) {
            if scalar == "\n" { line += 1; column = 1 } else { column += 1 }
        }
        copy.line = line
        copy.column = column
        return copy
    }
}
