import Foundation

/// What a Kubernetes API request is about, derived from its method, path and query exactly
/// as kube-apiserver's `RequestInfoFactory.NewRequestInfo` (apiserver `endpoints/request`)
/// derives it. The embedded API server routes with it, the gateway records and authorises
/// with it, so the two must agree with a real cluster byte for byte.
///
/// Rules, in order:
/// 1. Fewer than three path segments, or a first segment that is not an API prefix
///    (`api`, `apis`), or a grouped prefix with fewer than four segments: a non-resource
///    request (`/healthz`, `/version`, `/api`, `/apis/apps/v1`, `/openapi/v3`); `verb` is the
///    lowercased method and nothing else is set — except `apiPrefix`, which upstream
///    records before finding a grouped path too short (`/apis/apps/v1` has `apiPrefix` `apis`).
/// 2. `api/{version}/…` has no group; `apis/{group}/{version}/…` has one.
/// 3. A following `watch` or `proxy` segment is the verb (`/api/v1/watch/pods`, deprecated
///    but served); otherwise the method decides: POST create, GET/HEAD get, PUT update,
///    PATCH patch, DELETE delete, anything else "".
/// 4. `namespaces/{ns}` sets the namespace; what follows is the resource, unless it is a
///    namespace subresource (`status`, `finalize`), in which case the resource is
///    `namespaces` itself (`/api/v1/namespaces/ns` is the namespace object `ns`).
/// 5. `parts` = resource / name / subresource / anything else. `proxy` (as a verb) takes no
///    subresource: `/api/v1/proxy/namespaces/ns/pods/p/x` has name `p` and parts `x`…
/// 6. A `get` without a name is `list`, or `watch` when `?watch=` is present and not
///    `false`/`0` (case-insensitive; any other value, even empty, means true). A
///    `fieldSelector` that demands `metadata.name=x` then names the request, if `x` is a
///    valid path segment; if the list options do not decode (bad selector, non-integer
///    `limit`/`timeoutSeconds`), only `watch` is honoured and no name is taken.
/// 7. A `delete` without a name is `deletecollection`.
/// 8. For `list`, `watch` and `deletecollection` not reached through a verb prefix, the raw
///    `fieldSelector` / `labelSelector` are kept (kube-apiserver's selector authorisation).
///
/// `path` must be the percent-decoded path, as Go's `URL.Path` is. A proxy in front of an
/// API server must first pass the raw path through `RequestInfoResolver.cleanPath(_:)`,
/// which rejects what would make it and the API server read the path differently.
public struct RequestInfo: Sendable, Hashable {
    public var isResourceRequest: Bool
    public var path: String
    /// The Kubernetes verb for resource requests; the lowercased HTTP method otherwise.
    public var verb: String
    public var apiPrefix: String
    public var apiGroup: String
    public var apiVersion: String
    public var namespace: String
    public var resource: String
    public var subresource: String
    public var name: String
    /// Path segments from the resource on: `[resource, name, subresource, …]`.
    public var parts: [String]
    /// The raw `fieldSelector` of a list, watch or deletecollection (rule 8).
    public var fieldSelector: String
    /// The raw `labelSelector` of a list, watch or deletecollection (rule 8).
    public var labelSelector: String

    public init(isResourceRequest: Bool = false, path: String, verb: String, apiPrefix: String = "",
                apiGroup: String = "", apiVersion: String = "", namespace: String = "", resource: String = "",
                subresource: String = "", name: String = "", parts: [String] = [],
                fieldSelector: String = "", labelSelector: String = "") {
        self.isResourceRequest = isResourceRequest
        self.path = path
        self.verb = verb
        self.apiPrefix = apiPrefix
        self.apiGroup = apiGroup
        self.apiVersion = apiVersion
        self.namespace = namespace
        self.resource = resource
        self.subresource = subresource
        self.name = name
        self.parts = parts
        self.fieldSelector = fieldSelector
        self.labelSelector = labelSelector
    }
}

/// kube-apiserver answers 500 with this message for `/api/v1/watch` and `/api/v1/proxy`
/// with nothing after the verb.
public struct RequestInfoError: Error, Sendable, Hashable, CustomStringConvertible, LocalizedError {
    public var message: String
    public var description: String { message }
    public var errorDescription: String? { message }
}

/// Derives `RequestInfo`; see `RequestInfo` for the rules.
public struct RequestInfoResolver: Sendable, Hashable {
    /// Path prefixes under which resources live, without slashes.
    public var apiPrefixes: Set<String>
    /// Prefixes whose next segment is the version, not a group.
    public var grouplessAPIPrefixes: Set<String>

    public init(apiPrefixes: Set<String> = ["api", "apis"], grouplessAPIPrefixes: Set<String> = ["api"]) {
        self.apiPrefixes = apiPrefixes
        self.grouplessAPIPrefixes = grouplessAPIPrefixes
    }

    /// Verbs carried as a path segment after the version.
    static let specialVerbs: Set<String> = ["proxy", "watch"]
    /// Path verbs after which the third part is not a subresource.
    static let specialVerbsWithoutSubresources: Set<String> = ["proxy"]
    /// Subresources of a namespace, so `/namespaces/ns/status` is not a resource `status`.
    public static let namespaceSubresources: Set<String> = ["status", "finalize"]
    static let verbsWithSelectors: Set<String> = ["list", "watch", "deletecollection"]

    /// Never fails: for the two malformed verb-prefix paths it returns what is known, as
    /// kube-apiserver's resolver does alongside its error. Use `resolveStrictly` to get the error.
    public func resolve(method: String, path: String, query: [String: [String]] = [:]) -> RequestInfo {
        derive(method: method, path: path, query: query).info
    }

    /// `resolve` with a raw query string (`watch=1&fieldSelector=...`), decoded as Go's
    /// `URL.Query()` decodes it.
    public func resolve(method: String, path: String, rawQuery: String?) -> RequestInfo {
        resolve(method: method, path: path, query: Self.parseQuery(rawQuery ?? ""))
    }

    /// Like `resolve`, but throws where kube-apiserver answers 500
    /// (`unable to determine kind and namespace from url, /api/v1/watch`).
    public func resolveStrictly(method: String, path: String, query: [String: [String]] = [:]) throws -> RequestInfo {
        let (info, error) = derive(method: method, path: path, query: query)
        if let error { throw error }
        return info
    }

    private func derive(method: String, path: String, query: [String: [String]]) -> (info: RequestInfo, error: RequestInfoError?) {
        var info = RequestInfo(path: path, verb: method.lowercased())
        var parts = Self.splitPath(path)
        guard parts.count >= 3, apiPrefixes.contains(parts[0]) else { return (info, nil) }
        let prefix = parts.removeFirst()
        info.apiPrefix = prefix
        if !grouplessAPIPrefixes.contains(prefix) {
            // The prefix is consumed, so this asks for four segments in all.
            guard parts.count >= 3 else { return (info, nil) }
            info.apiGroup = parts.removeFirst()
        }
        info.isResourceRequest = true
        info.apiVersion = parts.removeFirst()

        var verbViaPathPrefix = false
        if Self.specialVerbs.contains(parts[0]) {
            guard parts.count >= 2 else {
                return (info, RequestInfoError(message: "unable to determine kind and namespace from url, \(path)"))
            }
            info.verb = parts.removeFirst()
            verbViaPathPrefix = true
        } else {
            switch method {
            case "POST": info.verb = "create"
            case "GET", "HEAD": info.verb = "get"
            case "PUT": info.verb = "update"
            case "PATCH": info.verb = "patch"
            case "DELETE": info.verb = "delete"
            default: info.verb = ""
            }
        }

        if parts[0] == "namespaces" {
            if parts.count > 1 {
                info.namespace = parts[1]
                if parts.count > 2 && !Self.namespaceSubresources.contains(parts[2]) {
                    parts.removeFirst(2)
                }
            }
        }
        info.parts = parts

        if parts.count >= 3 && !Self.specialVerbsWithoutSubresources.contains(info.verb) {
            info.subresource = parts[2]
        }
        if parts.count >= 2 { info.name = parts[1] }
        info.resource = parts[0]

        if info.name.isEmpty && info.verb == "get" {
            let options = ListOptionsView(query: query)
            info.verb = options.watch ? "watch" : "list"
            if let name = options.fieldSelector?.requiresExactMatch("metadata.name"),
               Self.isValidPathSegmentName(name) {
                info.name = name
            }
        }
        if info.name.isEmpty && info.verb == "delete" {
            info.verb = "deletecollection"
        }
        if !verbViaPathPrefix && Self.verbsWithSelectors.contains(info.verb) {
            info.fieldSelector = query["fieldSelector"]?.first ?? ""
            info.labelSelector = query["labelSelector"]?.first ?? ""
        }
        return (info, nil)
    }

    /// `strings.Split(strings.Trim(path, "/"), "/")`, empty for `/` and ``.
    ///
    /// Bytes, as Go splits them, not Characters: a `/` followed by a combining mark (`/%CC%81x`
    /// decoded) is one Character, and splitting Characters would read `pods/\u{301}x` as one
    /// resource where the API server reads resource `pods` and name `\u{301}x`, so an access or
    /// approval rule on `pods` would not see the request.
    static func splitPath(_ path: String) -> [String] {
        let slash = UInt8(ascii: "/")
        var trimmed = path.utf8[...]
        while trimmed.first == slash { trimmed.removeFirst() }
        while trimmed.last == slash { trimmed.removeLast() }
        if trimmed.isEmpty { return [] }
        // Every piece lies between ASCII slashes, so on scalar boundaries: the conversion is exact.
        return trimmed.split(separator: slash, omittingEmptySubsequences: false).map { String(Substring($0)) }
    }

    /// apimachinery's `IsValidPathSegmentName`: not `.`/`..`, no `/` or `%` (bytes, as Go
    /// looks for them: `%` followed by a combining mark is still a `%`).
    static func isValidPathSegmentName(_ name: String) -> Bool {
        name != "." && name != ".." && !name.utf8.contains(UInt8(ascii: "/")) && !name.utf8.contains(UInt8(ascii: "%"))
    }
}

/// The part of `metav1.ListOptions` decoding that decides the verb and the name. When any
/// option fails to decode the whole decode fails upstream, and only `watch` is kept.
private struct ListOptionsView {
    var watch = false
    var fieldSelector: Fields.Selector?

    init(query: [String: [String]]) {
        // `Convert_Slice_string_To_bool`: only "false" and "0" (any case) are false.
        if let value = query["watch"]?.first {
            let lowered = value.lowercased()
            watch = lowered != "false" && lowered != "0"
        }
        var decodes = true
        // `strconv.ParseInt(v, 10, 64)`: an empty or spaced value fails too.
        for key in ["limit", "timeoutSeconds"] {
            if let value = query[key]?.first, Int64(value) == nil { decodes = false }
        }
        if let value = query["labelSelector"]?.first, (try? Labels.Selector(parsing: value)) == nil {
            decodes = false
        }
        var fieldSelector: Fields.Selector?
        if let value = query["fieldSelector"]?.first {
            fieldSelector = try? Fields.Selector(parsing: value)
            if fieldSelector == nil { decodes = false }
        }
        self.fieldSelector = decodes ? fieldSelector : nil
    }
}
