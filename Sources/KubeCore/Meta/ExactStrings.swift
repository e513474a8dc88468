/// Identity comparisons byte for byte, as Go and the Kubernetes API make them.
///
/// Swift's `==` on `String` compares canonical equivalence: "\u{212A}" (KELVIN SIGN) equals
/// "K", and "e\u{301}" equals "é". Kubernetes, an OIDC provider and RBAC tell those apart, so
/// an identity that only *looks* like an allowed one (a group an IdP user could name
/// "\u{212A}ube-admins" beside an allowed "Kube-admins") must not pass for it. Subjects, groups,
/// issuers and audiences that decide access are compared with these.
extension String {
    /// The same UTF-8 bytes.
    @inlinable public func hasSameBytes(as other: String) -> Bool {
        utf8.elementsEqual(other.utf8)
    }
}

extension Sequence where Element == String {
    /// Whether an element has the same UTF-8 bytes as `value`.
    @inlinable public func containsSameBytes(as value: String) -> Bool {
        contains { $0.hasSameBytes(as: value) }
    }
}
