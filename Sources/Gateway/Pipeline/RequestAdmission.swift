import AgentGateAPI
import Foundation
import HTTPServing
import KubeCore
import SessionStore

/// The admission stage: everything decided about a request (or an upgrade) before it is
/// recorded and forwarded. Nothing reaches upstream from here.
///
/// Contract, in this order:
/// 1. route and path check (400 for path tricks, 404 for a path outside `/c/<ns>/<name>` or a
///    connection this gateway does not serve); unauthenticated refusals are not recorded;
/// 2. exactly one `Authorization: Bearer` header, verified against the connection's issuer
///    and audiences (401), and the subject and groups checked against it (403);
/// 3. RequestInfo derived from the decoded path exactly as kube-apiserver does (400 when it
///    cannot be); from here on every refusal is recorded as an exchange;
/// 4. a connect subresource on a method the API server does not route for it (405), then
///    `spec.access` (403 naming the rule), then the body: too large (413), CBOR (415), a patch
///    that could reveal a masked value (403, ``MaskedPatchGuard``).
/// An admitted request leaves as an ``ExchangeContext`` with its summary made.
struct RequestAdmission: Sendable {
    let registry: ConnectionRegistry
    let verifier: OIDCVerifier
    let recorder: ExchangeRecorder
    let metrics: GatewayMetrics
    let resolver = RequestInfoResolver()

    enum Outcome {
        case admitted(ExchangeContext)
        case refused(HTTPResponse)
    }

    func admit(_ request: HTTPRequest) async -> Outcome {
        let started = DispatchTime.now()
        let route: GatewayRoute
        switch GatewayRoute.parse(request.uri) {
        case .success(let parsed): route = parsed
        case .failure(.invalidPath(let message)): return .refused(.status(.badRequest(message)))
        case .failure(.notAConnectionPath):
            return .refused(.status(Status(message: "the server could not find the requested resource; agent endpoints are /c/<namespace>/<connection>",
                                           reason: "NotFound", code: 404)))
        }
        let ref = route.connection
        guard let connection = registry.connection(ref) else {
            return .refused(.status(Status(message: "agentconnection \"\(ref)\" is not served by this gateway",
                                           reason: "NotFound", details: StatusDetails(name: ref.name, group: "agentgate.io", kind: "agentconnections"),
                                           code: 404)))
        }
        let authorizations = request.headers["authorization"]
        guard authorizations.count == 1, let bearer = Self.bearer(authorizations[0]) else {
            metrics.count(connection: ref, verb: "", code: 401)
            return .refused(.status(.unauthorized(authorizations.count > 1 ? "more than one Authorization header" : "a bearer token is required")))
        }
        let agent: VerifiedAgent
        do {
            agent = try await verifier.verify(bearer, identity: connection.config.identity)
            try OIDCVerifier.authorize(agent, identity: connection.config.identity)
        } catch let error as AgentForbidden {
            metrics.count(connection: ref, verb: "", code: 403)
            return .refused(.status(.forbidden(error.message)))
        } catch {
            metrics.count(connection: ref, verb: "", code: 401)
            return .refused(.status(.unauthorized("Unauthorized: \(error)")))
        }
        let query = RequestInfoResolver.parseQuery(route.rawQuery ?? "")
        let info: RequestInfo
        do {
            info = try resolver.resolveStrictly(method: request.method, path: route.decodedPath, query: query)
        } catch {
            return .refused(.status(.badRequest("\(error)")))
        }
        let context = ExchangeContext(request: request, route: route, connection: connection, agent: agent,
                                      info: info, query: query, started: started)
        if let refusal = Self.refusal(context) {
            return .refused(await recorder.refuse(refusal, context))
        }
        return .admitted(context)
    }

    /// Step 4: what the connection's rules and the body say of an authenticated request.
    static func refusal(_ context: ExchangeContext) -> Status? {
        let request = context.request
        let info = context.info
        // A connect subresource on a method the API server does not route for it (RequestInfo.connectMethods).
        if let allowed = info.connectMethods, !allowed.contains(request.method) {
            return .methodNotAllowed("\(request.method) is not allowed on \(info.resource)/\(info.subresource); the API server routes only \(allowed.sorted().joined(separator: ", "))")
        }
        if case .denied(let message) = AccessCheck.evaluate(context.connection.config.access, info) {
            return .forbidden(message)
        }
        if request.bodyTooLarge { return .requestEntityTooLarge() }
        let bodyType = RequestMediaType(request.header("Content-Type"))
        if !request.body.isEmpty, bodyType.isCBOR {
            return Status(message: "the body of the request was in \(bodyType.essence), which the gateway does not decode, mask or record; send application/json or application/yaml",
                          reason: "UnsupportedMediaType", code: 415)
        }
        if let refusal = MaskedPatchGuard.refusal(method: request.method, type: bodyType, body: request.body, query: context.query,
                                                  masker: context.connection.masker, kindHint: context.kindHint,
                                                  resource: context.maskedResource) {
            return .forbidden(refusal)
        }
        return nil
    }

    /// The token of an `Authorization: Bearer <token>` header; nil for any other scheme or an
    /// empty token.
    static func bearer(_ header: String) -> String? {
        // The usual header, `Bearer <token>` with a token of visible ASCII (a JWT always is),
        // read byte-wise: splitting and trimming Characters of a kilobyte token was ~1% of a
        // small request's CPU. Anything else takes the general reading below.
        let bytes = header.utf8
        if bytes.count > 7, bytes.prefix(6).elementsEqual("bearer".utf8, by: { $0 | 0x20 == $1 }),
           bytes.dropFirst(6).first == UInt8(ascii: " "), bytes.dropFirst(7).allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            return String(Substring(bytes.dropFirst(7)))
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        // Foundation's trimming is a measurable share of a small request: only when needed.
        let raw = parts[1]
        let token = raw.first?.isWhitespace == true || raw.last?.isWhitespace == true
            ? raw.trimmingCharacters(in: .whitespaces) : String(raw)
        return token.isEmpty ? nil : token
    }
}
