import Foundation
import HTTPServing
import KubeCore
import Masking
import NIOCore
import NIOHTTP1
import SessionStore

/// Forwarding, masking and recording of one admitted request.
///
/// Contract:
/// - The exchange is begun (committed) before anything is sent upstream.
/// - Whole answers are read (decoded from gzip by ``UpstreamClient``), masked with the
///   connection's masker (the injected token always scrubbed), recorded masked (truncated to
///   the policy's `maxBodyBytes`, flagged) and returned.
/// - Watches, followed logs and other chunked answers that are not JSON (a `proxy`
///   subresource's text, say) are streamed: each watch event (one JSON line) or chunk is
///   masked (chunks through the text-stream masker, which holds back a possible secret cut
///   by a chunk boundary), appended to the exchange and then written and flushed to the
///   agent. The exchange is completed when the stream ends; an upstream cut marks it
///   `incomplete`. With FailClosed, a stream whose events can no longer be recorded is cut.
/// - A chunked JSON answer (a large LIST) is read whole: structural masking (Secret `data`,
///   env values) needs the whole document, and a partial object must never leak unmasked.
extension Gateway {
    func beginRecording(_ context: ExchangeContext) async throws -> Recording {
        let now = Date()
        let key = SessionKey(connection: context.ref, subject: context.agent.subject, tokenKey: context.agent.tokenKey)
        let identity = AgentIdentityInfo(groups: context.agent.groups, model: context.agent.model)
        var sessionID: SessionID
        if let cached = sessions.sessionID(for: key, at: now) {
            sessionID = cached
        } else {
            sessionID = try await store.resolveSession(key, identity: identity, at: now).id
            sessions.remember(sessionID, for: key, at: now)
        }
        let request = context.request
        let recorded = context.capture.requestBodies ?? true ? recordedRequestBody(context) : nil
        let body = recorded?.body
        let truncated = recorded?.truncated ?? false
        let info = context.info
        var start = ExchangeStart(
            sessionID: sessionID, time: now, verb: info.verb, apiGroup: info.apiGroup, resource: info.resource,
            subresource: info.subresource, namespace: info.namespace, name: info.name, httpMethod: request.method,
            path: context.route.decodedPath, query: context.route.rawQuery ?? "", requestBody: body,
            requestBytes: Int64(request.body.count), truncated: truncated, approvalID: context.heldBy?.id,
            kubectlCommand: request.header("Kubectl-Command"), kubectlSession: request.header("Kubectl-Session"),
            userAgent: request.header("User-Agent"))
        let exchange: ExchangeRecord
        do {
            exchange = try await store.beginExchange(start)
        } catch SessionStoreError.sessionNotFound {
            // The cached session was pruned (retention, maybe on another replica): resolve again.
            sessions.forget(key)
            sessionID = try await store.resolveSession(key, identity: identity, at: now).id
            sessions.remember(sessionID, for: key, at: now)
            start.sessionID = sessionID
            exchange = try await store.beginExchange(start)
        }
        return Recording(exchangeID: exchange.id, sessionID: sessionID)
    }

    /// A request body as it is recorded (in the exchange and in an approval): masked as the
    /// API server reads its media type, and truncated to the policy's `maxBodyBytes`. A body
    /// the gateway cannot read (protobuf, or any type but JSON and YAML) is withheld: a
    /// placeholder that says so is recorded instead, never bytes nobody masked.
    func recordedRequestBody(_ context: ExchangeContext) -> (body: [UInt8], truncated: Bool)? {
        let request = context.request
        guard !request.body.isEmpty else { return nil }
        let type = RequestMediaType(request.header("Content-Type"))
        guard type.isReadable else {
            return (Array("[request body withheld: \(request.body.count) bytes of \(type.essence), which the gateway does not decode and so cannot mask]".utf8), false)
        }
        let masked = context.connection.masker.maskRequestBody(request.body, contentType: type.maskingContentType,
                                                               kindHint: context.kindHint, resource: context.maskedResource)
        guard masked.count > context.maxBodyBytes else { return (masked, false) }
        return (Array(masked.prefix(context.maxBodyBytes)), true)
    }

    func forward(_ context: ExchangeContext, recording: Recording) async -> HTTPResponse {
        let request = context.request
        let upstreamHeaders = UpstreamHeaders.request(from: request.headers, token: context.connection.token,
                                                      sessionID: recording.sessionID)
        let upstreamStarted = DispatchTime.now()
        metrics.forwardedRequests.add(1)
        let response: UpstreamClient.Response
        do {
            response = try await upstreamClient.execute(method: HTTPMethod(rawValue: request.method), target: context.route.upstreamTarget,
                                                        headers: upstreamHeaders, body: request.body, timeout: .seconds(60))
        } catch {
            let status = Status(message: "the upstream API server cannot be reached: \(context.connection.masker.maskErrorMessage("\(error)"))",
                                reason: "ServiceUnavailable", code: 502)
            // Cancelled: the agent went away while upstream was answering; the outcome is unknown.
            await complete(context, recording, code: 502, body: status.serializedJSON(), bytes: nil, truncated: false,
                           state: Task.isCancelled ? .incomplete : .complete)
            metrics.count(connection: context.ref, verb: context.info.verb, code: 502)
            return refuse(status)
        }
        let code = Int(response.status.code)
        let headers = UpstreamHeaders.response(from: response.headers)
        let contentType = response.headers.first(name: "Content-Type")
        let follow = context.query["follow"]?.first == "true" || context.query["follow"]?.first == "1"
        if code < 300, context.info.verb == "watch" || (context.info.subresource == "log" && follow) {
            metrics.upstreamLatency.observe(seconds(since: upstreamStarted))
            return stream(context, recording, response: response, code: code, headers: headers)
        }
        if code < 300, Self.isChunkedText(response.headers) {
            metrics.upstreamLatency.observe(seconds(since: upstreamStarted))
            return stream(context, recording, response: response, code: code, headers: headers, channel: "body")
        }
        var raw: [UInt8]
        do {
            raw = try await response.body.collect(upTo: maxResponseBytes,
                                                  expected: response.headers.first(name: "Content-Length").flatMap { Int($0) })
        } catch {
            let status = Status(message: "reading the upstream answer failed: \(error)", reason: "InternalError", code: 502)
            await complete(context, recording, code: 502, body: status.serializedJSON(), bytes: nil, truncated: false, state: .incomplete)
            return refuse(status)
        }
        metrics.upstreamLatency.observe(seconds(since: upstreamStarted))
        let masked = await Self.maskAnswer(raw, masker: context.connection.masker, contentType: contentType,
                                           kindHint: context.kindHint, resource: context.maskedResource)
        raw = []
        var recorded: [UInt8]?
        var truncated = false
        if context.capture.responseBodies ?? true {
            recorded = masked.count > context.maxBodyBytes ? Array(masked.prefix(context.maxBodyBytes)) : masked
            truncated = masked.count > context.maxBodyBytes
        }
        await complete(context, recording, code: code, body: recorded, bytes: Int64(masked.count), truncated: truncated, state: .complete)
        metrics.count(connection: context.ref, verb: context.info.verb, code: code)
        metrics.addedLatency.observe(max(0, context.elapsedMs / 1000 - seconds(since: upstreamStarted) - context.heldSeconds))
        return HTTPResponse(status: code, headers: headers, body: .bytes(masked))
    }

    func complete(_ context: ExchangeContext, _ recording: Recording, code: Int, body: [UInt8]?, bytes: Int64?,
                  truncated: Bool, state: ExchangeState) async {
        logAccess(context, recording, code: code, bytes: bytes ?? Int64(body?.count ?? 0), state: state)
        guard let id = recording.exchangeID else { return }
        let result = ExchangeResult(statusCode: code, completedAt: Date(), latencyMs: context.elapsedMs, responseBody: body,
                                    responseBytes: bytes ?? Int64(body?.count ?? 0), truncated: truncated, state: state)
        // The agent going away cancels the request's task, but a request that was forwarded must
        // still get its record: store writes are not cancelled with their caller (SQLDriver.write).
        // Under FailClosed the answer waits for its record: a database that is restarting is
        // tried again for up to ``completionPatience`` before the answer goes out unrecorded.
        let failClosed = context.connection.config.recording.failureMode != .failOpen
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(Self.completionPatience.components.seconds) * 1_000_000_000
        var pause = Duration.milliseconds(100)
        while true {
            do {
                try await store.completeExchange(id, result: result)
                metrics.bytesRecorded.add(Int64(body?.count ?? 0))
                return
            } catch {
                let closed = (error as? SessionStoreError) == .closed
                if failClosed, !closed, DispatchTime.now().uptimeNanoseconds < deadline {
                    logger.warning("recording the answer to exchange \(id) failed, trying again in \(pause) (FailClosed): \(error)")
                    try? await Task.sleep(for: pause)
                    pause = min(pause * 2, .seconds(1))
                    continue
                }
                metrics.recorderErrors.add(1)
                logger.error("completing exchange \(id) failed: \(error)")
                return
            }
        }
    }

    /// How long an answer waits for its record under FailClosed (a PostgreSQL restart or
    /// failover takes seconds).
    static let completionPatience: Duration = .seconds(15)

    /// The access log: one line per exchange an authenticated agent made, as it completes
    /// (label `agentgate.access`, level info, fields as metadata so `--log-format json` gives
    /// one object per exchange). Never a body or a header value.
    func logAccess(_ context: ExchangeContext, _ recording: Recording, code: Int, bytes: Int64, state: ExchangeState) {
        let info = context.info
        accessLog.info("exchange", metadata: [
            "connection": "\(context.ref)", "session": "\(recording.sessionID ?? "-")", "subject": "\(context.agent.subject)",
            "verb": "\(info.verb)", "resource": "\(info.subresource.isEmpty ? info.resource : "\(info.resource)/\(info.subresource)")",
            "namespace": "\(info.namespace)", "name": "\(info.name)", "code": "\(code)", "bytes": "\(bytes)",
            "latency_ms": "\(String(format: "%.1f", context.elapsedMs))", "state": "\(state.rawValue)",
            "approval": "\(context.heldBy?.id ?? "-")",
        ])
    }

    /// Answers at least this large are masked off the event loop (see `maskAnswer`).
    static let offLoopMaskingBytes = 64 * 1024

    /// Masks a whole answer. A large one (a LIST of a few MiB takes milliseconds) is masked on
    /// the global executor, so the event loop this request runs on keeps serving its other
    /// connections meanwhile; a small one is masked where it is, which costs no thread hop.
    static func maskAnswer(_ raw: [UInt8], masker: Masker, contentType: String?, kindHint: String?,
                           resource: MaskedResource?) async -> [UInt8] {
        guard raw.count >= offLoopMaskingBytes else {
            return masker.maskBody(raw, contentType: contentType, kindHint: kindHint, resource: resource)
        }
        return await withTaskExecutorPreference(globalConcurrentExecutor) {
            masker.maskBody(raw, contentType: contentType, kindHint: kindHint, resource: resource)
        }
    }

    /// An answer without a length (chunked) whose declared type is not JSON or YAML: streamed
    /// as text. Without a Content-Type it is read whole (it may be JSON).
    static func isChunkedText(_ headers: HTTPHeaders) -> Bool {
        guard headers.first(name: "Content-Length") == nil,
              let type = headers.first(name: "Content-Type"), !type.isEmpty else { return false }
        return !MediaType.mentions(type, "json") && !MediaType.mentions(type, "yaml")
    }

    private func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1_000_000_000
    }

    /// Streams a watch (line by line), a followed log or a chunked text answer (chunk by
    /// chunk, recorded on `channel`).
    func stream(_ context: ExchangeContext, _ recording: Recording, response: UpstreamClient.Response, code: Int,
                headers: [(String, String)], channel: String = "stdout") -> HTTPResponse {
        let (output, continuation) = AsyncStream<[UInt8]>.makeStream(bufferingPolicy: .bufferingNewest(4096))
        let isWatch = context.info.verb == "watch"
        let masker = context.connection.masker
        let kindHint = context.kindHint
        let maskedResource = context.maskedResource
        let recordEvents = context.capture.watchEvents ?? true
        let failClosed = context.connection.config.recording.failureMode != .failOpen
        let store = self.store
        let metrics = self.metrics
        // A streamed answer is in flight until recorded: a drain waits for it.
        _ = inFlight.enter()
        let inFlight = self.inFlight
        let pump = Task {
            defer { inFlight.leave() }
            var pending: [UInt8] = []
            var textMasker = masker.textStream()
            var total: Int64 = 0
            var state = ExchangeState.complete
            var recorderBroken = false
            func emit(_ data: [UInt8], channel: String) async -> Bool {
                guard !data.isEmpty else { return true }
                if recordEvents, let id = recording.exchangeID, !recorderBroken {
                    do {
                        // A stream outlives the moment its request was alone (StoreWriteHints).
                        try await StoreWriteHints.$alone.withValue(false) {
                            try await store.appendStreamChunk(id, at: Date(), channel: channel, data: data)
                        }
                        metrics.bytesRecorded.add(Int64(data.count))
                    } catch {
                        metrics.recorderErrors.add(1)
                        recorderBroken = true
                        if failClosed { return false }
                    }
                }
                total += Int64(data.count)
                continuation.yield(data)
                return true
            }
            do {
                streaming: for try await buffer in response.body {
                    pending.append(contentsOf: buffer.readableBytesView)
                    if isWatch {
                        while let newline = pending.firstIndex(of: 0x0A) {
                            let line = Array(pending[..<newline])
                            pending.removeSubrange(...newline)
                            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) { continue }
                            let masked = masker.maskWatchEvent(line, kindHint: kindHint, resource: maskedResource) + [0x0A]
                            guard await emit(masked, channel: "event") else { state = .incomplete; break streaming }
                        }
                    } else {
                        let masked = textMasker.feed(pending)
                        pending.removeAll(keepingCapacity: true)
                        guard await emit(masked, channel: channel) else { state = .incomplete; break streaming }
                    }
                }
                if isWatch, !pending.isEmpty {
                    _ = await emit(masker.maskWatchEvent(pending, kindHint: kindHint, resource: maskedResource), channel: "event")
                } else if !isWatch {
                    _ = await emit(textMasker.flush(), channel: channel)
                }
            } catch {
                // Cancelled by the agent going away: the exchange ended normally from our side.
                if !Task.isCancelled { state = .incomplete }
            }
            // The record is completed before the agent sees the end of the stream (also when
            // this task was cancelled by the agent going away: store writes are not).
            await StoreWriteHints.$alone.withValue(false) {
                await self.complete(context, recording, code: code, body: nil, bytes: total, truncated: false, state: state)
            }
            continuation.finish()
            metrics.count(connection: context.ref, verb: context.info.verb, code: code)
        }
        continuation.onTermination = { _ in pump.cancel() }
        return HTTPResponse(status: code, headers: headers, body: .stream(output))
    }
}
