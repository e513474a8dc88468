import KubeCore

/// Values a CEL expression can hold and call methods on but never build or look inside:
/// Kubernetes' `authorizer` and the checks and decisions its methods return, or the lazily
/// bound `variables` of a ValidatingAdmissionPolicy.
///
/// Contract: the interpreter resolves `value.field` through ``field(_:)`` and
/// `value.method(args)` through ``call(_:args:)``; `nil` from either means "no such field" /
/// "no such overload", which the interpreter reports with the expression's position. An error
/// thrown from either is a CEL error value (absorbed by `||`/`&&` as usual), repositioned at
/// the call.
public protocol CELObject: Sendable {
    /// The CEL type name, e.g. `kubernetes.authorization.Authorizer`.
    var celTypeName: String { get }
    /// `value.name`; nil when the object has no such field.
    func field(_ name: String) throws -> CELValue?
    /// `value.name(args...)`; nil when no overload fits.
    func call(_ name: String, args: [CELValue]) throws -> CELValue?
}

extension CELObject {
    public func field(_ name: String) throws -> CELValue? { nil }
    public func call(_ name: String, args: [CELValue]) throws -> CELValue? { nil }
}

/// Holds a ``CELObject`` inside a ``CELValue``. Two boxes are equal only when they are the
/// same box, as cel-go compares these receiver-only values by identity.
public final class CELObjectBox: Sendable, Equatable {
    public let object: any CELObject

    public init(_ object: any CELObject) { self.object = object }

    public static func == (lhs: CELObjectBox, rhs: CELObjectBox) -> Bool { lhs === rhs }
}

extension CELValue {
    /// Wraps an opaque object.
    public static func opaque(_ object: any CELObject) -> CELValue { .object(CELObjectBox(object)) }
}
