import Foundation
import KubeCore

/// The object semantics of API-SEMANTICS.md items 1–6, applied to the JSON of one object:
/// what create sets, what update may change, when `generation` moves, and what the schema
/// of a custom resource admits. Pure functions over `JSONValue`; the handlers run them inside
/// the store's atomic mutation.
struct ObjectRules {
    let definition: ResourceDefinition
    let now: Date
    /// `fieldValidation` of the request: `Strict` rejects unknown fields instead of pruning them.
    var fieldValidation: String? = nil

    var nowText: String { KubeTime.format(now) }

    // MARK: Create

    /// Prepares a new object: identity, names, metadata the server owns, schema admission.
    func prepareCreate(_ body: JSONValue, namespace: String, generatedSuffix: String) throws -> JSONValue {
        var object = try checkTypeMeta(body)
        var metadata = object["metadata"]?.objectValue ?? [:]
        if let rv = metadata["resourceVersion"]?.stringValue, !rv.isEmpty {
            throw APIError(.badRequest("resourceVersion should not be set on objects to be created"))
        }
        if metadata["name"]?.stringValue?.isEmpty ?? true, let prefix = metadata["generateName"]?.stringValue, !prefix.isEmpty {
            metadata["name"] = .string(prefix + generatedSuffix)
        }
        let name = metadata["name"]?.stringValue ?? ""
        if definition.namespaced {
            let bodyNamespace = metadata["namespace"]?.stringValue ?? ""
            if !bodyNamespace.isEmpty && bodyNamespace != namespace {
                throw APIError(.badRequest("the namespace of the provided object does not match the namespace sent on the request"))
            }
            metadata["namespace"] = .string(namespace)
        } else {
            metadata["namespace"] = nil
        }
        metadata["uid"] = .string(UUID().uuidString.lowercased())
        metadata["creationTimestamp"] = .string(nowText)
        metadata["generation"] = definition.tracksGeneration ? .int(1) : nil
        metadata["deletionTimestamp"] = nil
        metadata["deletionGracePeriodSeconds"] = nil
        object["metadata"] = .object(metadata)
        if definition.hasStatus && definition.isCustomResource {
            object["status"] = nil
        }
        try validateMetadata(object, isCreate: true)
        return try admit(object, old: nil, name: name)
    }

    // MARK: Update

    /// Merges an update onto the stored object: resourceVersion precondition, immutable
    /// metadata, status ignored on the main resource, generation on spec changes.
    func prepareUpdate(_ body: JSONValue, old: JSONValue, oldRV: Int64) throws -> JSONValue {
        var object = try checkTypeMeta(body)
        let name = old[path: ["metadata", "name"]]?.stringValue ?? ""
        let sentRV = object[path: ["metadata", "resourceVersion"]]?.stringValue ?? ""
        if sentRV.isEmpty {
            if definition.isCustomResource {
                throw APIError(.invalid(group: definition.group, kind: definition.kind, name: name, errors: [
                    FieldError(.invalid, field: "metadata.resourceVersion", value: "0x0", detail: "must be specified for an update"),
                ]))
            }
        } else if sentRV != String(oldRV) {
            throw APIError(.conflict(group: definition.group, resource: definition.resource, name: name,
                                     message: "the object has been modified; please apply your changes to the latest version and try again"))
        }
        if let bodyName = object[path: ["metadata", "name"]]?.stringValue, bodyName != name {
            throw APIError(.badRequest("the name of the object (\(bodyName)) does not match the name on the URL (\(name))"))
        }
        object = try carryImmutableMetadata(from: old, to: object, name: name)
        if definition.hasStatus {
            object["status"] = old["status"]
        }
        if definition.group.isEmpty, definition.resource == "namespaces" {
            // The namespace strategy: finalizers change only through `/finalize`.
            object.set(old[path: ["spec", "finalizers"]], at: ["spec", "finalizers"])
        }
        object = bumpGenerationIfNeeded(old: old, new: object)
        try validateMetadata(object, isCreate: false)
        return try admit(object, old: old, name: name)
    }

    /// `/status` writes: only `status` comes from the request.
    func prepareStatusUpdate(_ body: JSONValue, old: JSONValue, oldRV: Int64) throws -> JSONValue {
        let name = old[path: ["metadata", "name"]]?.stringValue ?? ""
        if let sentRV = body[path: ["metadata", "resourceVersion"]]?.stringValue, !sentRV.isEmpty, sentRV != String(oldRV) {
            throw APIError(.conflict(group: definition.group, resource: definition.resource, name: name,
                                     message: "the object has been modified; please apply your changes to the latest version and try again"))
        }
        var object = old
        object["status"] = TimeFields.canonicalized(body, isCustomResource: definition.isCustomResource)["status"]
        // Field ownership of the status writer (server-side apply computed it on `body`).
        if let managed = body[path: ["metadata", "managedFields"]] { object.set(managed, at: ["metadata", "managedFields"]) }
        return try admit(object, old: old, name: name, onlyUnder: "status")
    }

    func carryImmutableMetadata(from old: JSONValue, to new: JSONValue, name: String) throws -> JSONValue {
        var object = new
        var metadata = object["metadata"]?.objectValue ?? [:]
        let oldMetadata = old["metadata"]?.objectValue ?? [:]
        var errors: [FieldError] = []
        for field in ["uid", "namespace"] {
            if let sent = metadata[field]?.stringValue, !sent.isEmpty, sent != oldMetadata[field]?.stringValue {
                errors.append(FieldError(.invalid, field: "metadata.\(field)", value: "\"\(sent)\"", detail: "field is immutable"))
            }
            metadata[field] = oldMetadata[field]
        }
        // kube-apiserver's rest.BeforeUpdate ignores a sent creationTimestamp (keeps the stored
        // one) rather than comparing it: clients spell the same instant differently.
        metadata["creationTimestamp"] = oldMetadata["creationTimestamp"]
        metadata["name"] = oldMetadata["name"]
        metadata["deletionTimestamp"] = oldMetadata["deletionTimestamp"]
        metadata["deletionGracePeriodSeconds"] = oldMetadata["deletionGracePeriodSeconds"]
        metadata["generation"] = oldMetadata["generation"]
        metadata["resourceVersion"] = oldMetadata["resourceVersion"]
        if oldMetadata["deletionTimestamp"] != nil {
            let oldFinalizers = Set(oldMetadata["finalizers"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            let newFinalizers = metadata["finalizers"]?.arrayValue?.compactMap(\.stringValue) ?? []
            if newFinalizers.contains(where: { !oldFinalizers.contains($0) }) {
                errors.append(FieldError(.forbidden, field: "metadata.finalizers",
                                         detail: "no new finalizers can be added if the object is being deleted, found new finalizers []string{\(newFinalizers.filter { !oldFinalizers.contains($0) }.map { "\"\($0)\"" }.joined(separator: ", "))}"))
            }
        }
        if !errors.isEmpty {
            throw APIError(.invalid(group: definition.group, kind: definition.kind, name: name, errors: errors))
        }
        object["metadata"] = .object(metadata)
        return object
    }

    /// `generation` goes up by one when anything outside `metadata` and `status` changes, for
    /// kinds that keep one. (kube-apiserver also bumps a Deployment's on annotation changes;
    /// not here, because the embedded deployment controller writes its revision annotation
    /// through the main resource, where the real one uses `/status`.)
    func bumpGenerationIfNeeded(old: JSONValue, new: JSONValue) -> JSONValue {
        guard definition.tracksGeneration else { return new }
        var a = old.objectValue ?? [:]
        var b = new.objectValue ?? [:]
        for key in ["metadata", "status"] {
            a[key] = nil
            b[key] = nil
        }
        var object = new
        let generation = old[path: ["metadata", "generation"]]?.intValue ?? 1
        object.set(.int(a == b ? generation : generation + 1), at: ["metadata", "generation"])
        return object
    }

    // MARK: Checks

    func checkTypeMeta(_ body: JSONValue) throws -> JSONValue {
        guard case .object = body else {
            throw APIError(.badRequest("the object provided is unrecognized: expected a JSON object"))
        }
        let kind = body["kind"]?.stringValue ?? ""
        let apiVersion = body["apiVersion"]?.stringValue ?? ""
        if !kind.isEmpty && kind != definition.kind {
            throw APIError(.badRequest("the API version in the data (\(apiVersion)) does not match the expected API version (\(definition.groupVersion))"
                + (kind == definition.kind ? "" : "; kind \(kind) does not match \(definition.kind)")))
        }
        if !apiVersion.isEmpty && apiVersion != definition.groupVersion {
            throw APIError(.badRequest("the API version in the data (\(apiVersion)) does not match the expected API version (\(definition.groupVersion))"))
        }
        var object = TimeFields.canonicalized(body, isCustomResource: definition.isCustomResource)
        object["kind"] = .string(definition.kind)
        object["apiVersion"] = .string(definition.groupVersion)
        if var metadata = object["metadata"]?.objectValue {
            // ObjectMeta's maps and lists are `omitempty`: the `annotations: {}` that `kubectl diff`
            // and `apply` patch in is not stored, as kube-apiserver's typed decode drops it.
            for key in ["labels", "annotations", "finalizers", "ownerReferences"] where metadata[key] == .object([:]) || metadata[key] == .array([]) {
                metadata[key] = nil
            }
            object["metadata"] = .object(metadata)
        } else {
            object["metadata"] = .object([:])
        }
        return object
    }

    func validateMetadata(_ object: JSONValue, isCreate: Bool) throws {
        let metadata = object["metadata"] ?? [:]
        let name = metadata["name"]?.stringValue ?? ""
        var errors: [FieldError] = []
        if name.isEmpty {
            errors.append(FieldError(.required, field: "metadata.name", detail: "name or generateName is required"))
        } else {
            let problems = definition.resource == "namespaces"
                ? NameValidation.isDNS1123Label(name) : NameValidation.isDNS1123Subdomain(name)
            for problem in problems {
                errors.append(FieldError(.invalid, field: "metadata.name", value: "\"\(name)\"", detail: problem))
            }
        }
        for (key, value) in metadata["labels"]?.objectValue ?? [:] {
            for problem in NameValidation.isQualifiedName(key) {
                errors.append(FieldError(.invalid, field: "metadata.labels", value: "\"\(key)\"", detail: problem))
            }
            guard let text = value.stringValue else {
                errors.append(FieldError(.invalid, field: "metadata.labels", value: quoteValue(value), detail: "label values must be strings"))
                continue
            }
            for problem in NameValidation.isValidLabelValue(text) {
                errors.append(FieldError(.invalid, field: "metadata.labels", value: "\"\(text)\"", detail: problem))
            }
        }
        for (key, value) in metadata["annotations"]?.objectValue ?? [:] where value.stringValue == nil {
            errors.append(FieldError(.invalid, field: "metadata.annotations", value: "\"\(key)\"", detail: "annotation values must be strings"))
        }
        if !errors.isEmpty {
            throw APIError(.invalid(group: definition.group, kind: definition.kind, name: name, errors: errors))
        }
    }

    private func quoteValue(_ value: JSONValue) -> String { value.serializedString() }

    /// A Secret's `stringData` is write-only: kube-apiserver merges each key into `data`
    /// (base64, `stringData` winning) and never stores or returns `stringData`.
    static func foldStringData(_ secret: JSONValue) -> JSONValue {
        guard let stringData = secret["stringData"]?.objectValue else { return secret }
        var folded = secret
        for (key, value) in stringData {
            folded.set(.string(Data((value.stringValue ?? "").utf8).base64EncodedString()), at: ["data", key])
        }
        folded["stringData"] = nil
        return folded
    }

    /// Schema admission for custom resources: prune, default, validate (incl. CEL rules).
    /// `onlyUnder`: report only errors in this top-level field. A `/status` write cannot change
    /// the rest, so an object stored before a stricter schema (or rule) still gets its status
    /// written, as kube-apiserver's validation ratcheting allows for unchanged fields.
    func admit(_ object: JSONValue, old: JSONValue?, name: String, onlyUnder: String? = nil) throws -> JSONValue {
        if definition.group == "", definition.resource == "secrets" { return Self.foldStringData(object) }
        guard let validator = definition.validator else { return object }
        if fieldValidation == "Strict", let unknown = validator.unknownFields(in: object).first {
            throw APIError(.badRequest("\(definition.kind) in version \"\(definition.version)\" cannot be handled as a \(definition.kind): strict decoding error: unknown field \"\(unknown)\""))
        }
        var admitted = object
        validator.prune(&admitted)
        validator.applyDefaults(&admitted)
        var errors = validator.validate(admitted, oldObject: old)
        if let onlyUnder {
            errors = errors.filter { $0.field == onlyUnder || $0.field.hasPrefix(onlyUnder + ".") || $0.field.hasPrefix(onlyUnder + "[") }
        }
        guard errors.isEmpty else {
            throw APIError(.invalid(group: definition.group, kind: definition.kind, name: name, errors: errors))
        }
        return admitted
    }
}
