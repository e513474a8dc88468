import Foundation
import KubeCore

/// metav1.DeleteOptions as kube-apiserver's delete and deletecollection handlers read them
/// (apiserver `endpoints/handlers/delete.go`):
///
/// 1. A non-empty request body is decoded as a DeleteOptions (JSON or YAML), and then the
///    query's `dryRun`, `propagationPolicy`, `gracePeriodSeconds` and `orphanDependents`
///    are ignored. kubectl always sends a body (`{"propagationPolicy":"Background"}`), so
///    `kubectl delete` with `?dryRun=All` added to its URL really deletes.
/// 2. An empty body: the options come from the query.
/// 3. A body that is not a DeleteOptions, or a field of the wrong type, is 400 BadRequest
///    (kube-apiserver 1.35+; older servers answered 500). Values outside what the API allows
///    (`dryRun` other than `All`, an unknown `propagationPolicy`) are 422 Invalid.
struct DeleteOptions: Sendable, Equatable {
    var dryRun: [String] = []
    var gracePeriodSeconds: Int64?
    var preconditionUID: String?
    var preconditionResourceVersion: String?
    var propagationPolicy: String?
    var orphanDependents: Bool?

    /// Whether the delete only reports what it would do (`dryRun: ["All"]`).
    var isDryRun: Bool { dryRun.contains("All") }

    init() {}

    /// The options of a DELETE request: from its body when it has one, else from its query.
    init(_ request: APIRequest) throws {
        if request.http.body.isEmpty {
            try self.init(query: request.query)
        } else {
            try self.init(body: request.decodedBody())
        }
        try validate()
    }

    init(query: [String: [String]]) throws {
        dryRun = query["dryRun"] ?? []
        propagationPolicy = query["propagationPolicy"]?.first
        if let text = query["gracePeriodSeconds"]?.first {
            guard let value = Int64(text) else {
                throw APIError(.badRequest("gracePeriodSeconds: invalid value \"\(text)\": not an integer"))
            }
            gracePeriodSeconds = value
        }
        if let text = query["orphanDependents"]?.first {
            guard let value = Bool(text) else {
                throw APIError(.badRequest("orphanDependents: invalid value \"\(text)\": not true or false"))
            }
            orphanDependents = value
        }
    }

    init(body: JSONValue) throws {
        guard let fields = body.objectValue else {
            throw APIError(.badRequest("the body of a DELETE request must be a DeleteOptions object, got a JSON \(body.typeName)"))
        }
        let kind = fields["kind"]?.stringValue ?? "DeleteOptions"
        if kind != "DeleteOptions" {
            let apiVersion = fields["apiVersion"]?.stringValue ?? ""
            throw APIError(.badRequest("decoded object cannot be converted to DeleteOptions: the body is a \(kind) (apiVersion \"\(apiVersion)\")"))
        }
        func typeError(_ field: String, _ goType: String) -> APIError {
            APIError(.badRequest("json: cannot unmarshal \(Self.jsonType(fields[field]!)) into Go struct field DeleteOptions.\(field) of type \(goType)"))
        }
        func present(_ field: String) -> JSONValue? {
            guard let value = fields[field], value != .null else { return nil }
            return value
        }
        if let value = present("dryRun") {
            guard let items = value.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else { throw typeError("dryRun", "[]string") }
            dryRun = items.compactMap(\.stringValue)
        }
        if let value = present("gracePeriodSeconds") {
            guard case .int(let seconds) = value else { throw typeError("gracePeriodSeconds", "int64") }
            gracePeriodSeconds = Int64(seconds)
        }
        if let value = present("propagationPolicy") {
            guard let policy = value.stringValue else { throw typeError("propagationPolicy", "v1.DeletionPropagation") }
            propagationPolicy = policy
        }
        if let value = present("orphanDependents") {
            guard case .bool(let orphan) = value else { throw typeError("orphanDependents", "bool") }
            orphanDependents = orphan
        }
        if let value = present("preconditions") {
            guard let preconditions = value.objectValue else { throw typeError("preconditions", "v1.Preconditions") }
            for (field, item) in preconditions where item != .null && item.stringValue == nil {
                throw APIError(.badRequest("json: cannot unmarshal \(Self.jsonType(item)) into Go struct field Preconditions.preconditions.\(field) of type string"))
            }
            preconditionUID = preconditions["uid"]?.stringValue
            preconditionResourceVersion = preconditions["resourceVersion"]?.stringValue
        }
    }

    /// apimachinery's ValidateDeleteOptions.
    func validate() throws {
        var errors: [FieldError] = []
        if orphanDependents != nil, let propagationPolicy {
            errors.append(FieldError(.invalid, field: "propagationPolicy", value: "\"\(propagationPolicy)\"",
                                     detail: "orphanDependents and deletionPropagation cannot be both set"))
        }
        if let propagationPolicy, !["Foreground", "Background", "Orphan"].contains(propagationPolicy) {
            errors.append(FieldError(.notSupported, field: "propagationPolicy", value: "\"\(propagationPolicy)\"",
                                     detail: "supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""))
        }
        if dryRun.contains(where: { $0 != "All" }) {
            let shown = "[]string{" + dryRun.map { "\"\($0)\"" }.joined(separator: ", ") + "}"
            errors.append(FieldError(.notSupported, field: "dryRun", value: shown, detail: "supported values: \"All\""))
        }
        if !errors.isEmpty {
            throw APIError(.invalid(group: "meta.k8s.io", kind: "DeleteOptions", name: "", errors: errors))
        }
    }

    /// The JSON type name Go's decoder uses in "cannot unmarshal <type>".
    private static func jsonType(_ value: JSONValue) -> String {
        switch value {
        case .string: return "string"
        case .int, .double: return "number"
        case .bool: return "bool"
        case .array: return "array"
        case .object: return "object"
        case .null: return "null"
        }
    }
}
