import Foundation
import HTTPServing
import KubeCore
import Masking
import NIOCore
import NIOHTTP1
import SessionStore

/// The forwarding stage: one admitted, recorded (and, when held, approved) request sent
/// upstream as the connection, its answer masked, recorded and returned.
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
final class Forwarder: Sendable {
    /// Largest non-streamed upstream body read into memory.
    static let maxResponseBytes = 256 * 1024 * 1024
    /// Answers at least this large are masked off the event loop (see `maskAnswer`).
    static let offLoopMaskingBytes = 64 * 1024

    let upstream: UpstreamClient
    let recorder: ExchangeRecorder
    let metrics: GatewayMetrics
    /// A streamed answer counts as in flight until it is recorded (a drain waits for it).
    let load: RequestLoad

    init(upstream: UpstreamClient, recorder: ExchangeRecorder, metrics: GatewayMetrics, load: RequestLoad) {
        self.upstream = upstream
        self.recorder = recorder
        self.metrics = metrics
        self.load = load
    }

    func forward(_ context: ExchangeContext, recording: Recording) async -> HTTPResponse {
        let request = context.request
        let upstreamHeaders = UpstreamHeaders.request(from: request.headers, token: context.connection.token,
                                                      sessionID: recording.sessionID)
        let upstreamStarted = DispatchTime.now()
        metrics.forwardedRequests.add(1)
        let response: UpstreamClient.Response
        do {
            response = try await upstream.execute(method: HTTPMethod(rawValue: request.method), target: context.route.upstreamTarget,
                                                        headers: upstreamHeaders, body: request.body, timeout: .seconds(60))
        } catch {
            let status = Status(message: "the upstream API server cannot be reached: \(context.connection.masker.maskErrorMessage("\(error)"))",
                                reason: "ServiceUnavailable", code: 502)
            // Cancelled: the agent went away while upstream was answering; the outcome is unknown.
            await recorder.complete(context, recording, code: 502, body: status.serializedJSON(), bytes: nil, truncated: false,
                           state: Task.isCancelled ? .incomplete : .complete)
            metrics.count(connection: context.ref, verb: context.info.verb, code: 502)
            return .status(status)
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
            raw = try await response.body.collect(upTo: Self.maxResponseBytes,
                                                  expected: response.headers.first(name: "Content-Length").flatMap { Int($0) })
        } catch {
            let status = Status(message: "reading the upstream answer failed: \(error)", reason: "InternalError", code: 502)
            await recorder.complete(context, recording, code: 502, body: status.serializedJSON(), bytes: nil, truncated: false, state: .incomplete)
            return .status(status)
        }
        metrics.upstreamLatency.observe(seconds(since: upstreamStarted))
        let masked = await Self.maskAnswer(raw, masker: context.connection.masker, contentType: contentType,
                                           kindHint: context.kindHint, resource: context.maskedResource)
        raw = []
        var recorded: [UInt8]?
        var truncated = false
        if context.capture.responseBodies ?? true {
            (recorded, truncated) = context.recordable(masked)
        }
        await recorder.complete(context, recording, code: code, body: recorded, bytes: Int64(masked.count), truncated: truncated, state: .complete)
        metrics.count(connection: context.ref, verb: context.info.verb, code: code)
        metrics.addedLatency.observe(max(0, context.elapsedMs / 1000 - seconds(since: upstreamStarted) - context.heldSeconds))
        return HTTPResponse(status: code, headers: headers, body: .bytes(masked))
    }


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
        let failClosed = context.failClosed
        let recorder = self.recorder
        let metrics = self.metrics
        // A streamed answer is in flight until recorded: a drain waits for it.
        load.enter()
        let load = self.load
        let pump = Task {
            defer { load.leave() }
            var pending: [UInt8] = []
            var textMasker = masker.textStream()
            var total: Int64 = 0
            var state = ExchangeState.complete
            var recorderBroken = false
            func emit(_ data: [UInt8], channel: String) async -> Bool {
                guard !data.isEmpty else { return true }
                if recordEvents, recording.exchangeID != nil, !recorderBroken {
                    do {
                        try await recorder.append(recording, channel: channel, data: data)
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
            await recorder.complete(context, recording, code: code, body: nil, bytes: total, truncated: false, state: state)
            continuation.finish()
            metrics.count(connection: context.ref, verb: context.info.verb, code: code)
        }
        continuation.onTermination = { _ in pump.cancel() }
        return HTTPResponse(status: code, headers: headers, body: .stream(output))
    }
}
