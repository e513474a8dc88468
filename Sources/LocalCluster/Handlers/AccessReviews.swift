import HTTPServing
import Foundation
import KubeCore

/// The create-only review kinds of `authorization.k8s.io/v1` and `authentication.k8s.io/v1`
/// (`kubectl auth can-i`, `can-i --list`, `auth whoami`). Nothing is stored: the server
/// answers the posted object with its `status` filled, 201, as kube-apiserver does.
///
/// - SelfSubjectAccessReview: may the requester do `spec.resourceAttributes` (or
///   `nonResourceAttributes`)? LocalSubjectAccessReview and SubjectAccessReview ask the same
///   for `spec.user`/`groups`/`uid`/`extra` (creating them is itself authorized by RBAC).
/// - SelfSubjectRulesReview: every rule RBAC grants the requester in `spec.namespace`.
/// - SelfSubjectReview: who the requester is (after impersonation).
/// - TokenReview: who a bearer token authenticates as.
/// Decisions come from the server's ``RBACAuthorizer``; `denied` stays false because RBAC
/// never denies explicitly.
extension ResourceHandlers {
    static let reviewKinds: Set<String> = ["SelfSubjectAccessReview", "SubjectAccessReview", "LocalSubjectAccessReview",
                                           "SelfSubjectRulesReview", "SelfSubjectReview", "TokenReview"]

    func serveReview(_ request: APIRequest) throws -> HTTPResponse {
        let definition = request.definition
        guard request.info.verb == "create", request.info.subresource.isEmpty else {
            throw APIError(.methodNotAllowed("the server does not allow this method on the requested resource"))
        }
        var review = try ObjectRules(definition: definition, now: Date()).checkTypeMeta(try request.decodedBody())
        review["metadata"] = ["creationTimestamp": .null]
        let spec = review["spec"] ?? [:]
        switch definition.kind {
        case "SelfSubjectAccessReview":
            review["status"] = try accessReviewStatus(spec, user: request.user, definition: definition)
        case "SubjectAccessReview", "LocalSubjectAccessReview":
            let user = UserInfo(username: spec["user"]?.stringValue ?? "", uid: spec["uid"]?.stringValue ?? "",
                                groups: spec["groups"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                                extra: (spec["extra"]?.objectValue ?? [:]).mapValues { $0.arrayValue?.compactMap(\.stringValue) ?? [] })
            if user.username.isEmpty && user.groups.isEmpty {
                throw invalid(definition, FieldError(.invalid, field: "spec.user", value: "\"\"",
                                                     detail: "at least one of user or group must be specified"))
            }
            if definition.kind == "LocalSubjectAccessReview" {
                let namespace = spec[path: ["resourceAttributes", "namespace"]]?.stringValue ?? ""
                if namespace != request.info.namespace {
                    throw invalid(definition, FieldError(.invalid, field: "spec.resourceAttributes.namespace",
                                                         value: "\"\(namespace)\"", detail: "must match metadata.namespace"))
                }
                review.set(.string(request.info.namespace), at: ["metadata", "namespace"])
            }
            review["status"] = try accessReviewStatus(spec, user: user, definition: definition)
        case "SelfSubjectRulesReview":
            review["status"] = rulesReviewStatus(user: request.user, namespace: spec["namespace"]?.stringValue ?? "")
        case "SelfSubjectReview":
            review["status"] = ["userInfo": userInfoJSON(request.user)]
        case "TokenReview":
            let token = spec["token"]?.stringValue ?? ""
            if let user = server.authenticator?.authenticate(bearerToken: token) {
                review["status"] = ["authenticated": true, "user": userInfoJSON(user),
                                    "audiences": .array((server.tokenIssuer?.apiAudiences ?? []).map { .string($0) })]
            } else {
                review["status"] = ["authenticated": false, "error": "invalid bearer token"]
            }
        default:
            throw APIError(.methodNotAllowed("the server does not allow this method on the requested resource"))
        }
        return .object(201, review)
    }

    private func invalid(_ definition: ResourceDefinition, _ error: FieldError) -> APIError {
        APIError(.invalid(group: definition.group, kind: definition.kind, name: "", errors: [error]))
    }

    /// `status` of an access review: RBAC's decision for `user` on the spec's attributes.
    private func accessReviewStatus(_ spec: JSONValue, user: UserInfo, definition: ResourceDefinition) throws -> JSONValue {
        let resource = spec["resourceAttributes"].flatMap { $0 == .null ? nil : $0 }
        let nonResource = spec["nonResourceAttributes"].flatMap { $0 == .null ? nil : $0 }
        guard (resource == nil) != (nonResource == nil) else {
            throw invalid(definition, FieldError(.invalid, field: "spec.resourceAttributes", value: "nil",
                                                 detail: "exactly one of nonResourceAttributes or resourceAttributes must be specified"))
        }
        let attributes: AuthorizationAttributes
        if let resource {
            func field(_ name: String) -> String { resource[name]?.stringValue ?? "" }
            attributes = .resource(verb: field("verb"), group: field("group"), version: field("version"),
                                   resource: field("resource"), subresource: field("subresource"),
                                   namespace: field("namespace"), name: field("name"))
        } else {
            attributes = .nonResource(verb: nonResource?["verb"]?.stringValue ?? "", path: nonResource?["path"]?.stringValue ?? "")
        }
        guard let authorizer = server.authorizer else { return ["allowed": true] }
        let decision = authorizer.allowed(user: user, attributes: attributes)
        var status: JSONValue = ["allowed": .bool(decision.allowed)]
        if !decision.reason.isEmpty { status["reason"] = .string(decision.reason) }
        return status
    }

    /// `status` of a SelfSubjectRulesReview: the rules RBAC grants `user` in `namespace`.
    private func rulesReviewStatus(user: UserInfo, namespace: String) -> JSONValue {
        guard let authorizer = server.authorizer else {
            return ["resourceRules": [["verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]]],
                    "nonResourceRules": [["verbs": ["*"], "nonResourceURLs": ["*"]]], "incomplete": false]
        }
        let (rules, errors) = authorizer.rules(for: user, namespace: namespace)
        func strings(_ values: [String]) -> JSONValue { .array(values.map { .string($0) }) }
        var resourceRules: [JSONValue] = []
        var nonResourceRules: [JSONValue] = []
        for rule in rules {
            if !rule.resources.isEmpty {
                var entry: JSONValue = ["verbs": strings(rule.verbs), "apiGroups": strings(rule.apiGroups),
                                        "resources": strings(rule.resources)]
                if !rule.resourceNames.isEmpty { entry["resourceNames"] = strings(rule.resourceNames) }
                resourceRules.append(entry)
            }
            if !rule.nonResourceURLs.isEmpty {
                nonResourceRules.append(["verbs": strings(rule.verbs), "nonResourceURLs": strings(rule.nonResourceURLs)])
            }
        }
        var status: JSONValue = ["resourceRules": .array(resourceRules), "nonResourceRules": .array(nonResourceRules),
                                 "incomplete": .bool(!errors.isEmpty)]
        if !errors.isEmpty { status["evaluationError"] = .string(errors.joined(separator: ", ")) }
        return status
    }

    private func userInfoJSON(_ user: UserInfo) -> JSONValue {
        var info: JSONValue = ["username": .string(user.username), "groups": .array(user.groups.map { .string($0) })]
        if !user.uid.isEmpty { info["uid"] = .string(user.uid) }
        if !user.extra.isEmpty { info["extra"] = .object(user.extra.mapValues { .array($0.map { .string($0) }) }) }
        return info
    }
}
