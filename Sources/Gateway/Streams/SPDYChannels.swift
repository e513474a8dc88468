import SPDY

/// The gateway's two SPDY/3.1 legs of one exec or attach (`Upgrade: SPDY/3.1`,
/// `X-Stream-Protocol-Version` v2–v4), decoded so the proxy can treat them like the
/// WebSocket channel protocols.
///
/// The gateway terminates SPDY on both sides: frames from the agent are decoded and
/// re-encoded for upstream, and the reverse. Header blocks are zlib streams per connection
/// and direction, so every frame is re-compressed on the leg it leaves by. Stream ids are
/// kept: the agent opens every stream (odd ids, increasing), and the gateway opens the same
/// id upstream, so replies, resets, FINs and pings need no mapping. Each stream's role is
/// its SYN_STREAM's `streamType` header, named here by the channel number it has in the
/// WebSocket protocols (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize), which is how the
/// proxy masks and records it.
///
/// Not thread-safe: used by the proxy's single task.
final class SPDYChannels: @unchecked Sendable {
    static let channelOfStreamType: [String: UInt8] = ["stdin": 0, "stdout": 1, "stderr": 2, "error": 3, "resize": 4]

    private let agentLeg: SPDYFrameCodec
    private let upstreamLeg: SPDYFrameCodec
    private var channels: [UInt32: UInt8] = [:]
    private var streams: [UInt8: UInt32] = [:]

    init() throws {
        agentLeg = try SPDYFrameCodec()
        upstreamLeg = try SPDYFrameCodec()
    }

    /// Frames in the bytes the agent sent; the streams they open are registered.
    func fromAgent(_ bytes: [UInt8]) throws -> [SPDYFrame] {
        let frames = try agentLeg.decode(bytes)
        for case let .synStream(streamID, _, _, _, _, headers) in frames {
            guard let channel = headers["streamtype"].flatMap({ Self.channelOfStreamType[$0] }) else { continue }
            channels[streamID] = channel
            if streams[channel] == nil { streams[channel] = streamID }
        }
        return frames
    }

    /// Frames in the bytes upstream sent.
    func fromUpstream(_ bytes: [UInt8]) throws -> [SPDYFrame] {
        try upstreamLeg.decode(bytes)
    }

    /// The channel a stream carries, if the agent named a known `streamType` when it opened it.
    func channel(of streamID: UInt32) -> UInt8? { channels[streamID] }

    /// The stream that carries `channel`, once the agent opened it.
    func stream(for channel: UInt8) -> UInt32? { streams[channel] }

    func encodeForUpstream(_ frames: [SPDYFrame]) throws -> [UInt8] {
        try frames.flatMap { try upstreamLeg.encode($0) }
    }

    func encodeForAgent(_ frames: [SPDYFrame]) throws -> [UInt8] {
        try frames.flatMap { try agentLeg.encode($0) }
    }
}
