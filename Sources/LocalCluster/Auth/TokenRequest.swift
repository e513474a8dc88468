/// The `serviceaccounts/<name>/token` subresource (authentication.k8s.io/v1 TokenRequest):
/// turns a request body into the response kube-apiserver returns.
///
/// Contract (as kube-apiserver's token REST storage):
/// - `spec.expirationSeconds` defaults to 3600; under 600 is a `FieldError` (422); over the
///   issuer's maximum it is shortened, the response's spec shows the shortened value and a
///   warning `requested expiration of N seconds shortened to M seconds` is returned for the
///   `Warning` header.
/// - `spec.audiences` defaults to the API audiences and is echoed back filled in.
/// - `spec.boundObjectRef` (kind Pod or Secret, name, uid) is recorded in the token; the caller
///   checks that the object exists with that uid before calling (404/409 are the store's).
/// - The response is the request with `status: {token, expirationTimestamp}` and
///   `metadata.name`/`namespace`/`creationTimestamp` of the ServiceAccount's request.
import Foundation
import KubeCore

extension ServiceAccountTokenIssuer {
    /// Answers a TokenRequest `body` for the ServiceAccount object `serviceAccount`.
    public func respond(toTokenRequest body: JSONValue, serviceAccount: JSONValue,
                        now: Date = Date()) throws -> (response: JSONValue, warnings: [String]) {
        let namespace = serviceAccount[path: ["metadata", "namespace"]]?.stringValue ?? ""
        let name = serviceAccount[path: ["metadata", "name"]]?.stringValue ?? ""
        let uid = serviceAccount[path: ["metadata", "uid"]]?.stringValue ?? ""

        var requested = Self.defaultExpirationSeconds
        if let value = body[path: ["spec", "expirationSeconds"]], !value.isNull {
            guard let seconds = value.intValue else {
                throw FieldError(.typeInvalid, field: "spec.expirationSeconds", value: String(decoding: value.serialized(), as: UTF8.self),
                                 detail: "must be of type integer")
            }
            requested = seconds
        }
        var warnings: [String] = []
        var granted = requested
        if requested > maxExpirationSeconds && requested <= 1 << 32 {
            granted = maxExpirationSeconds
            warnings.append("requested expiration of \(requested) seconds shortened to \(granted) seconds")
        }
        let audiences = body[path: ["spec", "audiences"]]?.arrayValue?.compactMap(\.stringValue) ?? []

        var bound: BoundObjectReference?
        if let ref = body[path: ["spec", "boundObjectRef"]], !ref.isNull {
            let kindText = ref["kind"]?.stringValue ?? ""
            guard let kind = BoundObjectReference.Kind(rawValue: kindText), kind != .node else {
                throw FieldError(.notSupported, field: "spec.boundObjectRef.kind", value: quoted(kindText),
                                 detail: "supported values: \"Pod\", \"Secret\"")
            }
            bound = BoundObjectReference(kind: kind, name: ref["name"]?.stringValue ?? "",
                                         uid: ref["uid"]?.stringValue ?? "")
        }

        // Validate the requested value (so 599 fails), then sign with the granted one.
        _ = try validateExpiration(requested)
        let (token, expiration) = try issue(namespace: namespace, name: name, uid: uid, audiences: audiences,
                                            expirationSeconds: granted, boundObject: bound, now: now)
        var response = body
        response.set("authentication.k8s.io/v1", at: ["apiVersion"])
        response.set("TokenRequest", at: ["kind"])
        response.set(.string(name), at: ["metadata", "name"])
        response.set(.string(namespace), at: ["metadata", "namespace"])
        response.set(.string(KubeTime.format(now)), at: ["metadata", "creationTimestamp"])
        response.set(.array((audiences.isEmpty ? apiAudiences : audiences).map { .string($0) }), at: ["spec", "audiences"])
        response.set(.int(granted), at: ["spec", "expirationSeconds"])
        response.set(["token": .string(token), "expirationTimestamp": .string(KubeTime.format(expiration))],
                     at: ["status"])
        return (response, warnings)
    }

    /// The TokenRequest validation of `spec.expirationSeconds`.
    func validateExpiration(_ seconds: Int64) throws -> Int64 {
        if seconds < Self.minExpirationSeconds {
            throw FieldError(.invalid, field: "spec.expirationSeconds", value: String(seconds),
                             detail: "may not specify a duration less than 10 minutes")
        }
        if seconds > 1 << 32 {
            throw FieldError(.invalid, field: "spec.expirationSeconds", value: String(seconds),
                             detail: "may not specify a duration larger than 2^32 seconds")
        }
        return seconds
    }
}
