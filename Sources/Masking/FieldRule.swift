/// A MaskingRule field rule: the values at `paths` of the objects of some resources are
/// masked whatever they hold (a ConfigMap key that carries a password, a CRD's `spec.apiKey`).
///
/// Path syntax: dot-separated member names; `*` for every member of an object; `[*]` for every
/// item of a list and `[N]` for one; e.g. `data.*`, `spec.template.spec.containers[*].args`,
/// `spec.credentials.token`. Paths start at the object (its `kind` level), for the object
/// itself, each item of a list of it, and the object of each watch event.
public struct FieldRule: Sendable, Hashable {
    public enum Component: Sendable, Hashable {
        case member(String)
        case anyMember
        case anyItem
        case item(Int)
    }

    public var name: String
    /// API groups the rule applies to (`""` is the core group); nil or `*` means all.
    public var apiGroups: [String]?
    /// Resources (plural, as in RBAC: `configmaps`); nil or `*` means all.
    public var resources: [String]?
    public var paths: [[Component]]
    public var replacement: Replacement

    public init(name: String, apiGroups: [String]? = nil, resources: [String]? = nil, paths: [String],
                replacement: Replacement = .mask) throws(FieldPathError) {
        self.name = name
        self.apiGroups = apiGroups
        self.resources = resources
        self.paths = try paths.map { path throws(FieldPathError) in try FieldRule.parse(path) }
        self.replacement = replacement
    }

    /// Whether the rule covers objects of `resource` (nil: the resource is unknown, so only
    /// rules that name no resource apply).
    func applies(to resource: MaskedResource?) -> Bool {
        func matches(_ list: [String]?, _ value: String?) -> Bool {
            guard let list, !list.isEmpty, !list.contains("*") else { return true }
            guard let value else { return false }
            return list.contains(value)
        }
        return matches(apiGroups, resource?.group) && matches(resources, resource?.resource)
    }

    /// Parses one path; the error names the path and what is wrong with it.
    public static func parse(_ path: String) throws(FieldPathError) -> [Component] {
        func fail(_ reason: String) -> FieldPathError { FieldPathError(path: path, reason: reason) }
        guard !path.isEmpty else { throw fail("is empty") }
        var components: [Component] = []
        for segment in path.split(separator: ".", omittingEmptySubsequences: false) {
            guard !segment.isEmpty else { throw fail("has an empty segment (two dots, or a dot at an end)") }
            var name = Substring(segment)
            var indexes: [Component] = []
            while name.hasSuffix("]") {
                guard let open = name.lastIndex(of: "[") else { throw fail("has a ] without [") }
                let index = name[name.index(after: open)..<name.index(before: name.endIndex)]
                if index == "*" {
                    indexes.insert(.anyItem, at: 0)
                } else if let number = Int(index), number >= 0 {
                    indexes.insert(.item(number), at: 0)
                } else {
                    throw fail("has [\(index)]; a list index is [*] or a number")
                }
                name = name[..<open]
            }
            guard !name.isEmpty else { throw fail("has an index with no member name before it") }
            guard !name.contains("["), !name.contains("]") else { throw fail("has an unbalanced bracket in \"\(name)\"") }
            components.append(name == "*" ? .anyMember : .member(String(name)))
            components += indexes
        }
        return components
    }
}

/// The resource a body belongs to, as the gateway's RequestInfo names it.
public struct MaskedResource: Sendable, Hashable {
    public var group: String
    public var resource: String
    public init(group: String, resource: String) {
        self.group = group
        self.resource = resource
    }
}

public struct FieldPathError: Error, CustomStringConvertible, Sendable, Equatable {
    public var path: String
    public var reason: String
    public var description: String { "field path \"\(path)\" \(reason); write it like data.* or spec.containers[*].args" }
}
