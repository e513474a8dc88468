import HTTPServing
import Foundation
import KubeCore
import NIOHTTP1

/// A resource request after routing: the request, what it addresses, and who sent it.
struct APIRequest: Sendable {
    let http: HTTPRequest
    let info: RequestInfo
    let query: [String: [String]]
    let definition: ResourceDefinition
    let user: UserInfo

    func queryValue(_ name: String) -> String? { query[name]?.first }
    func queryFlag(_ name: String) -> Bool {
        guard let value = queryValue(name) else { return false }
        return value == "true" || value == "1"
    }

    /// The JSON (or YAML) body, or a 400 Status worded like kube-apiserver's decoder errors.
    func decodedBody() throws -> JSONValue {
        if http.body.isEmpty { throw APIError(.badRequest("the body of the request is empty")) }
        let contentType = http.header("Content-Type")?.lowercased() ?? "application/json"
        if contentType.contains("protobuf") {
            do {
                return try KubernetesProtobuf.decode(http.body)
            } catch {
                throw APIError(Status(message: "\(error)", reason: "UnsupportedMediaType", code: 415))
            }
        }
        if contentType.contains("cbor") {
            throw APIError(Status(message: "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
                                  reason: "UnsupportedMediaType", code: 415))
        }
        if contentType.contains("yaml") {
            do {
                return try JSONValue(yaml: String(decoding: http.body, as: UTF8.self))
            } catch {
                throw APIError(.badRequest("error converting YAML to JSON: \(error)"))
            }
        }
        do {
            return try JSONValue(parsing: http.body)
        } catch {
            throw APIError(.badRequest("the object provided is unrecognized: couldn't get version/kind; json parse error: \(error)"))
        }
    }

    /// Whether the client asked for a `meta.k8s.io` Table.
    var wantsTable: Bool {
        guard let accept = http.header("Accept") else { return false }
        return accept.split(separator: ",").first.map { $0.contains("as=Table") } ?? false
    }

    /// `?dryRun=All` on create, update and patch. DELETE reads its dry run from ``DeleteOptions``
    /// (the body wins over the query there).
    var isDryRun: Bool { query["dryRun"]?.contains("All") ?? false }
    var fieldManager: String? { queryValue("fieldManager") }
}

/// An error answered with a `metav1.Status` body.
struct APIError: Error, Sendable {
    let status: Status
    init(_ status: Status) { self.status = status }
}

extension HTTPResponse {
    static func status(_ status: Status) -> HTTPResponse {
        var body = status
        body.status = body.status ?? "Failure"
        let bytes = (try? JSONValue(encoding: body).serialized()) ?? []
        return .json(body.code ?? 500, bytes)
    }

    static func object(_ code: Int, _ value: JSONValue) -> HTTPResponse {
        .json(code, value.serialized())
    }
}
