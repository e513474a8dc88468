import ControllerRuntime
import Foundation
import HTTPServing
import KubeCore
import Masking
import SessionStore
import SPDY

/// What happens on an upgraded stream, in the order the proxy handles it.
enum StreamEvent: Sendable {
    case fromAgent([UInt8])
    case fromUpstream([UInt8])
    case agentClosed
    case upstreamClosed
    /// No upstream output for a moment: release what the maskers hold (an interactive prompt).
    case idle(generation: Int)
}

/// Relays one upgraded stream between the agent and the API server, recording it.
///
/// Contract:
/// - One task handles every event in arrival order, so a frame is masked, recorded and only
///   then sent on; the record of a stream is in the order the agent saw it.
/// - Exec and attach (the channel protocols `v5`/`v4.channel.k8s.io`: one channel byte, then
///   data): stdout and stderr pass through the connection's text-stream masker before they
///   reach the agent (a line is held until it ends, or until the output pauses for
///   ``idleFlush`` so prompts and typed echo show); stdin is forwarded as typed and recorded
///   masked; resize is recorded; the error channel's `metav1.Status` is the exit status,
///   recorded as channel `status` and as the exchange's response body.
/// - Exec and attach over `Upgrade: SPDY/3.1` (``SPDYChannels``): both legs are decoded; each
///   stream's `streamType` gives it the channel it has in the WebSocket protocols, and it is
///   masked and recorded exactly like that channel (stdout/stderr DATA masked before the
///   agent gets it, a FIN sent once what the masker held is out, the error stream's content
///   as the exit status). Every other frame is re-encoded and passed on.
/// - Upstream data on any channel or stream but stdout, stderr and error (which the kubelet
///   never sends) is dropped on both transports: it would reach the agent unmasked.
/// - Port-forward (SPDY/3.1 tunnelled in WebSocket, or the SPDY/3.1 upgrade): bytes are
///   relayed unchanged; the SPDY frames are decoded for the record (``PortForwardFrames``:
///   `forward-in:PORT`, `forward-out:PORT`, `forward-error:PORT`). Other port-forward
///   protocols are recorded as the raw messages (`forward-in`, `forward-out`). Nothing is
///   masked, since a forwarded port carries an arbitrary protocol.
/// - Back-pressure: when more than ``AgentStreamEnd/pauseAbove`` bytes wait for the agent's
///   socket, reading from upstream pauses until they drain (a slow agent never makes the
///   gateway buffer a whole download).
/// - The exchange is completed when either side ends: `complete` when the exit status
///   arrived or the agent ended the stream, `incomplete` when upstream cut it first or the
///   recorder failed under FailClosed (which also cuts the stream).
final class StreamProxy: Sendable {
    enum Kind: Sendable {
        /// Exec/attach over WebSocket: one channel byte, then data.
        case channels
        /// Exec/attach over the SPDY/3.1 upgrade: a stream per channel.
        case spdyChannels(SPDYChannels)
        /// Port-forward; its SPDY frames decoded for the record when it speaks SPDY.
        case portForward(PortForwardFrames?)

        var isPortForward: Bool { if case .portForward = self { true } else { false } }
    }

    static let idleFlush: Duration = .milliseconds(30)

    let kind: Kind
    let agent: AgentStreamEnd
    let upstream: UpstreamStream
    let events: AsyncStream<StreamEvent>
    let eventsIn: AsyncStream<StreamEvent>.Continuation
    let masker: Masker
    let recorder: StreamRecorder

    init(kind: Kind, agent: AgentStreamEnd, upstream: UpstreamStream, events: AsyncStream<StreamEvent>,
         eventsIn: AsyncStream<StreamEvent>.Continuation, masker: Masker, recorder: StreamRecorder) {
        self.kind = kind
        self.agent = agent
        self.upstream = upstream
        self.events = events
        self.eventsIn = eventsIn
        self.masker = masker
        self.recorder = recorder
    }

    /// Runs until both sides are closed and the exchange is completed.
    func run() async {
        var state = RelayState(masker: masker)
        var outcome: StreamOutcome?
        loop: for await event in events {
            switch event {
            case .fromAgent(let message):
                guard await fromAgent(message, &state) else { outcome = state.cut ?? .recorderFailed; break loop }
            case .fromUpstream(let message):
                guard await fromUpstream(message, &state) else { outcome = state.cut ?? .recorderFailed; break loop }
            case .idle(let generation):
                guard generation == state.generation else { continue }
                guard await flushOutput(&state), await flushInput(&state) else { outcome = state.cut ?? .recorderFailed; break loop }
            case .agentClosed:
                _ = await flushInput(&state)
                outcome = .agentEnded
                break loop
            case .upstreamClosed:
                _ = await flushOutput(&state)
                _ = await flushInput(&state)
                outcome = state.exitStatus != nil || kind.isPortForward ? .finished : .upstreamCut
                break loop
            }
        }
        agent.close()
        upstream.close()
        eventsIn.finish()
        await recorder.complete(outcome: outcome ?? .agentEnded, exitStatus: state.exitStatus, bytesToAgent: state.bytesToAgent)
        // Until what the agent was sent has left with the close: a gateway shutting down closes
        // its listeners' connections once no stream runs, and must not cut this one's last frames.
        await agent.closed(within: .seconds(2))
    }

    struct RelayState {
        var stdout: TextStreamMasker
        var stderr: TextStreamMasker
        var stdin: TextStreamMasker
        var generation = 0
        var exitStatus: [UInt8]?
        var bytesToAgent: Int64 = 0
        /// Why the relay stopped, when not for the recorder.
        var cut: StreamOutcome?

        init(masker: Masker) {
            stdout = masker.textStream()
            stderr = masker.textStream()
            stdin = masker.textStream()
        }
    }

    private func fromAgent(_ message: [UInt8], _ state: inout RelayState) async -> Bool {
        if case .spdyChannels(let spdy) = kind { return await fromAgent(spdy: spdy, message, &state) }
        upstream.send(message)
        switch kind {
        case .portForward(let frames):
            guard let frames else { return await recorder.append("forward-in", message) }
            for (channel, data) in frames.agentSent(message) {
                guard await recorder.append(channel, data) else { return false }
            }
            return true
        case .channels, .spdyChannels:
            guard let channel = message.first else { return true }
            let payload = Array(message.dropFirst())
            switch channel {
            case 0:
                let masked = state.stdin.feed(payload)
                scheduleIdle(&state)
                return await recorder.append("stdin", masked)
            case 4:
                return await recorder.append("resize", payload)
            default:
                return true
            }
        }
    }

    private func fromUpstream(_ message: [UInt8], _ state: inout RelayState) async -> Bool {
        if case .spdyChannels(let spdy) = kind { return await fromUpstream(spdy: spdy, message, &state) }
        if case .portForward(let frames) = kind {
            if let frames {
                for (channel, data) in frames.upstreamSent(message) {
                    guard await recorder.append(channel, data) else { return false }
                }
            } else {
                guard await recorder.append("forward-out", message) else { return false }
            }
            deliver(message, &state)
            return true
        }
        guard let channel = message.first else { return true }
        let payload = Array(message.dropFirst())
        switch channel {
        case 1, 2:
            let masked = channel == 1 ? state.stdout.feed(payload) : state.stderr.feed(payload)
            scheduleIdle(&state)
            return await send(channel, masked, &state)
        case 3:
            // Output before the status it ends with.
            guard await flushOutput(&state) else { return false }
            let status = Array(masker.maskErrorMessage(String(decoding: payload, as: UTF8.self)).utf8)
            state.exitStatus = status
            return await send(3, status, &state)
        default:
            // Upstream speaks on stdout, stderr and error only. Data on any other channel
            // (stdin, resize, an unknown one) would reach the agent unmasked: it is dropped.
            // Empty messages (a channel announced) and v5's close signal carry no data.
            if payload.isEmpty || channel == Self.closeChannel { deliver(message, &state) }
            return true
        }
    }

    /// v5.channel.k8s.io's channel for "this channel is closed" (its payload: a channel number).
    static let closeChannel: UInt8 = 255

    private func send(_ channel: UInt8, _ data: [UInt8], _ state: inout RelayState) async -> Bool {
        guard !data.isEmpty else { return true }
        let name = channel == 1 ? "stdout" : channel == 2 ? "stderr" : "status"
        guard await recorder.append(name, data) else { return false }
        if case .spdyChannels(let spdy) = kind {
            guard let stream = spdy.stream(for: channel) else { return true }
            return deliver(spdy: spdy, [.data(streamID: stream, fin: false, payload: data)], &state)
        }
        deliver([channel] + data, &state)
        return true
    }

    private func deliver(_ message: [UInt8], _ state: inout RelayState) {
        state.bytesToAgent += Int64(message.count)
        agent.send(message)
    }

    private func flushOutput(_ state: inout RelayState) async -> Bool {
        guard !kind.isPortForward else { return true }
        let out = state.stdout.flush()
        let err = state.stderr.flush()
        guard await send(1, out, &state) else { return false }
        return await send(2, err, &state)
    }

    private func flushInput(_ state: inout RelayState) async -> Bool {
        guard !kind.isPortForward else { return true }
        return await recorder.append("stdin", state.stdin.flush())
    }

    // MARK: SPDY

    private func fromAgent(spdy: SPDYChannels, _ message: [UInt8], _ state: inout RelayState) async -> Bool {
        let frames: [SPDYFrame]
        do {
            frames = try spdy.fromAgent(message)
            let bytes = try spdy.encodeForUpstream(frames)
            if !bytes.isEmpty { upstream.send(bytes) }
        } catch {
            state.cut = .malformed
            return false
        }
        for case let .data(streamID, _, payload) in frames where !payload.isEmpty {
            switch spdy.channel(of: streamID) {
            case 0?:
                let masked = state.stdin.feed(payload)
                scheduleIdle(&state)
                guard await recorder.append("stdin", masked) else { return false }
            case 4?:
                // client-go writes one JSON size per line; recorded one per chunk, as over WebSocket.
                for size in payload.split(separator: 0x0a) {
                    guard await recorder.append("resize", Array(size)) else { return false }
                }
            default:
                break
            }
        }
        return true
    }

    private func fromUpstream(spdy: SPDYChannels, _ message: [UInt8], _ state: inout RelayState) async -> Bool {
        let frames: [SPDYFrame]
        do {
            frames = try spdy.fromUpstream(message)
        } catch {
            state.cut = .malformed
            return false
        }
        for frame in frames {
            guard case let .data(streamID, fin, payload) = frame else {
                guard deliver(spdy: spdy, [frame], &state) else { return false }
                continue
            }
            guard let channel = spdy.channel(of: streamID), (1...3).contains(channel) else {
                // Upstream speaks on stdout, stderr and error only. Data on any other stream
                // would reach the agent unmasked: only the frame's FIN is passed on.
                if payload.isEmpty || fin, !deliver(spdy: spdy, [.data(streamID: streamID, fin: fin, payload: [])], &state) {
                    return false
                }
                continue
            }
            switch channel {
            case 1, 2:
                var masked = channel == 1 ? state.stdout.feed(payload) : state.stderr.feed(payload)
                // The stream ends: what the masker held goes out before the FIN.
                if fin { masked += channel == 1 ? state.stdout.flush() : state.stderr.flush() } else { scheduleIdle(&state) }
                guard await send(channel, masked, &state) else { return false }
            default:
                // Output before the status it ends with.
                guard await flushOutput(&state) else { return false }
                if !payload.isEmpty {
                    let status = Array(masker.maskErrorMessage(String(decoding: payload, as: UTF8.self)).utf8)
                    state.exitStatus = (state.exitStatus ?? []) + status
                    guard await send(3, status, &state) else { return false }
                }
                // v2/v3 say nothing on success: the error stream's end is the exit status.
                if fin && state.exitStatus == nil { state.exitStatus = [] }
            }
            if fin, !deliver(spdy: spdy, [.data(streamID: streamID, fin: true, payload: [])], &state) { return false }
        }
        return true
    }

    private func deliver(spdy: SPDYChannels, _ frames: [SPDYFrame], _ state: inout RelayState) -> Bool {
        do {
            deliver(try spdy.encodeForAgent(frames), &state)
            return true
        } catch {
            state.cut = .malformed
            return false
        }
    }

    private func scheduleIdle(_ state: inout RelayState) {
        state.generation += 1
        let generation = state.generation
        let eventsIn = self.eventsIn
        Task {
            try? await Task.sleep(for: Self.idleFlush)
            eventsIn.yield(.idle(generation: generation))
        }
    }
}

enum StreamOutcome: Sendable {
    /// Upstream ended the stream after its exit status (or a port-forward closed).
    case finished
    /// The agent closed its end (detach, Ctrl-C, done forwarding).
    case agentEnded
    /// Upstream dropped an exec or attach without an exit status.
    case upstreamCut
    /// The session store failed under FailClosed: the stream was cut.
    case recorderFailed
    /// A SPDY leg sent what could not be decoded (or re-encoded): the stream was cut.
    case malformed
}

/// The agent's end of an upgraded connection, WebSocket or raw bytes. Messages for the agent
/// that are ready before the `101` is written wait here until it is.
final class AgentStreamEnd: WebSocketSession, ByteStreamSession, @unchecked Sendable {
    /// Bytes written to the agent but not yet taken by its socket above which upstream
    /// reading pauses, and below which it resumes.
    static let pauseAbove = 1 << 20
    static let resumeBelow = 256 << 10

    /// Recursive: a write that completes at once (on the event loop, in `attach`) re-enters.
    private let lock = NSRecursiveLock()
    private var sender: (([UInt8], @escaping @Sendable () -> Void) -> Void)?
    private var inFlight = 0
    private var paused = false
    /// Told to stop or resume reading upstream (set by the proxy).
    var backPressure: ((Bool) -> Void)?
    private var closer: (() -> Void)?
    private var waiting: [[UInt8]] = []
    private var closeWaiting = false
    private let eventsIn: AsyncStream<StreamEvent>.Continuation

    init(eventsIn: AsyncStream<StreamEvent>.Continuation) { self.eventsIn = eventsIn }

    func start(_ connection: WebSocketConnection) {
        connection.whenClosed { [weak self] in self?.connectionClosed() }
        attach(send: { connection.send($0, written: $1) }, close: { connection.close() })
    }

    func start(_ connection: ByteStreamConnection) {
        connection.whenClosed { [weak self] in self?.connectionClosed() }
        attach(send: { connection.send($0, written: $1) }, close: { connection.close() })
    }

    private let connectionEnded = StopSignal()

    private func connectionClosed() { connectionEnded.stop() }

    /// Returns once the agent's connection is closed, or after `limit`.
    func closed(within limit: Duration) async {
        await connectionEnded.sleep(limit)
    }

    /// How long after its `101` the agent gets the first frame. kubectl (client-go's v5
    /// executor) starts reading before it has registered its streams and drops frames for
    /// streams it does not know yet ("Unknown stream id 1, discarding message"); a fast
    /// command's whole output, buffered while the agent's upgrade completed, would otherwise
    /// arrive in the same segment as the `101` and be lost.
    static let firstFrameDelay: Double = 0.05

    private func attach(send: @escaping ([UInt8], @escaping @Sendable () -> Void) -> Void, close: @escaping () -> Void) {
        DispatchQueue.global().asyncAfter(deadline: .now() + Self.firstFrameDelay) { [self] in
            lock.lock()
            defer { lock.unlock() }
            for message in waiting { send(message, written(message.count)) }
            waiting = []
            sender = send
            closer = close
            if closeWaiting { close() }
        }
    }

    func receive(_ message: [UInt8]) { eventsIn.yield(.fromAgent(message)) }
    func closed() { eventsIn.yield(.agentClosed) }

    func send(_ message: [UInt8]) {
        lock.lock()
        inFlight += message.count
        let pause = !paused && inFlight > Self.pauseAbove
        if pause { paused = true }
        if let sender { sender(message, written(message.count)) } else { waiting.append(message) }
        let backPressure = self.backPressure
        lock.unlock()
        if pause { backPressure?(false) }
    }

    private func written(_ count: Int) -> @Sendable () -> Void {
        { [weak self] in
            guard let self else { return }
            self.lock.lock()
            self.inFlight -= count
            let resume = self.paused && self.inFlight < Self.resumeBelow
            if resume { self.paused = false }
            let backPressure = self.backPressure
            self.lock.unlock()
            if resume { backPressure?(true) }
        }
    }

    func close() {
        lock.lock()
        defer { lock.unlock() }
        if let closer { closer() } else { closeWaiting = true }
    }
}
