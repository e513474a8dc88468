import SPDY

/// A port-forward's SPDY/3.1 frames (the `Upgrade: SPDY/3.1` connection, or the
/// `SPDY/3.1+portforward.k8s.io` WebSocket tunnel), decoded for the record only: the bytes
/// are relayed unchanged, and what is recorded is the forwarded traffic per pod port —
/// `forward-in:PORT` (agent to pod), `forward-out:PORT` (pod to agent) and
/// `forward-error:PORT` (the kubelet's error for that connection) — not the frames.
/// Each stream's port and role come from its SYN_STREAM (`port`, `streamtype` data/error).
/// Should a leg ever fail to decode, its bytes are recorded raw from then on
/// (`forward-in`/`forward-out`), so nothing forwarded goes unrecorded.
///
/// Not thread-safe: used by the proxy's single task.
final class PortForwardFrames: @unchecked Sendable {
    private let agentLeg: SPDYFrameCodec
    private let upstreamLeg: SPDYFrameCodec
    private var agentLegBroken = false
    private var upstreamLegBroken = false
    private var streams: [UInt32: (type: String, port: String)] = [:]

    init() throws {
        agentLeg = try SPDYFrameCodec()
        upstreamLeg = try SPDYFrameCodec()
    }

    /// What to record of bytes the agent sent: (channel, data) in order.
    func agentSent(_ bytes: [UInt8]) -> [(channel: String, data: [UInt8])] {
        guard !agentLegBroken, let frames = try? agentLeg.decode(bytes) else {
            agentLegBroken = true
            return [("forward-in", bytes)]
        }
        var records: [(channel: String, data: [UInt8])] = []
        for frame in frames {
            switch frame {
            case let .synStream(streamID, _, _, _, _, headers):
                streams[streamID] = (headers["streamtype"] ?? "", headers["port"] ?? "")
            case let .data(streamID, _, payload) where !payload.isEmpty:
                if let stream = streams[streamID], stream.type == "data" { records.append(("forward-in:\(stream.port)", payload)) }
            default:
                break
            }
        }
        return records
    }

    /// What to record of bytes upstream sent.
    func upstreamSent(_ bytes: [UInt8]) -> [(channel: String, data: [UInt8])] {
        guard !upstreamLegBroken, let frames = try? upstreamLeg.decode(bytes) else {
            upstreamLegBroken = true
            return [("forward-out", bytes)]
        }
        return frames.compactMap { frame in
            guard case let .data(streamID, _, payload) = frame, !payload.isEmpty, let stream = streams[streamID] else { return nil }
            return (stream.type == "error" ? "forward-error:\(stream.port)" : "forward-out:\(stream.port)", payload)
        }
    }
}
