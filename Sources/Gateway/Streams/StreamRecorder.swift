import Foundation
import SessionStore

/// The record of one upgraded stream: frames appended to its exchange as they pass, and
/// the exchange completed (status `101`, the exit status as response body) when it ends.
///
/// Contract: frames are recorded only when the RecordingPolicy captures exec streams
/// (`capture.execStreams`, default on); the exchange itself is always completed. `append`
/// answers false when the store failed and the policy is FailClosed: the caller must cut the
/// stream (FailOpen keeps it going, unrecorded from then on).
final class StreamRecorder: @unchecked Sendable {
    private let store: any SessionStore
    private let exchangeID: ExchangeID?
    private let captureFrames: Bool
    private let failClosed: Bool
    private let metrics: GatewayMetrics
    private let started: DispatchTime
    private var broken = false

    init(store: any SessionStore, exchangeID: ExchangeID?, captureFrames: Bool, failClosed: Bool,
         metrics: GatewayMetrics, started: DispatchTime) {
        self.store = store
        self.exchangeID = exchangeID
        self.captureFrames = captureFrames
        self.failClosed = failClosed
        self.metrics = metrics
        self.started = started
    }

    /// Called from the proxy's single task only.
    func append(_ channel: String, _ data: [UInt8]) async -> Bool {
        guard !data.isEmpty, captureFrames, let exchangeID, !broken else { return true }
        do {
            try await store.appendStreamChunk(exchangeID, at: Date(), channel: channel, data: data)
            metrics.bytesRecorded.add(Int64(data.count))
            return true
        } catch {
            metrics.recorderErrors.add(1)
            broken = true
            return !failClosed
        }
    }

    func complete(outcome: StreamOutcome, exitStatus: [UInt8]?, bytesToAgent: Int64) async {
        guard let exchangeID else { return }
        let state: ExchangeState = switch outcome {
        case .finished, .agentEnded: .complete
        case .upstreamCut, .recorderFailed, .malformed: .incomplete
        }
        let latency = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1_000_000
        let result = ExchangeResult(statusCode: 101, completedAt: Date(), latencyMs: latency, responseBody: exitStatus,
                                    responseBytes: bytesToAgent, state: state)
        do {
            try await store.completeExchange(exchangeID, result: result)
        } catch {
            metrics.recorderErrors.add(1)
        }
    }
}
