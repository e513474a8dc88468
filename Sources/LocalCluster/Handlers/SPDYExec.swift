import Foundation
import HTTPServing
import KubeCore
import SPDY

/// `pods/exec` and `pods/attach` over `Upgrade: SPDY/3.1`, as the kubelet serves them to
/// kubectl's SPDY executor (kubectl before 1.30, its fallback, or
/// `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`).
///
/// The flow (client-go `remotecommand` v2–v4, kubelet `httpstream.go`):
/// 1. the client offers protocols in `X-Stream-Protocol-Version` (kubectl: v4 down to v1); the
///    first offered one this server speaks is answered in the `101`;
/// 2. the client opens one SPDY stream per standard stream, named by its `streamType` header:
///    `error` always, then `stdin`, `stdout`, `stderr` as the query asks (`stderr` is absent with
///    a TTY), and `resize` with a TTY from v3 on. Each is replied to as it opens;
/// 3. only when every expected stream is open does the "process" start, so nothing is ever
///    written to a stream the client has not registered yet;
/// 4. at exit stdout and stderr are half-closed, then the error stream carries the outcome:
///    v4 a `metav1.Status` JSON (`Success`, or `NonZeroExitCode` with the code in
///    `details.causes[reason=ExitCode]`), v2/v3 the error text and nothing on success.
///    The client closes the connection; the server closes it after ``closeGrace`` otherwise.
final class SPDYExec: ByteStreamSession, SPDYStreamHandler, ExecOutput, @unchecked Sendable {
    static let protocols = ["v4.channel.k8s.io": 4, "v3.channel.k8s.io": 3, "v2.channel.k8s.io": 2]
    static let closeGrace: Double = 2

    enum StreamType: String {
        case error, stdin, stdout, stderr, resize
    }

    private let options: ExecSession.Options
    private let session: ExecSession
    private var spdy: SPDYServerConnection?
    private var connection: ByteStreamConnection?
    private var streams: [StreamType: UInt32] = [:]
    private var started = false
    private var resizeBuffer: [UInt8] = []

    init(options: ExecSession.Options) {
        self.options = options
        session = ExecSession(options: options)
    }

    /// The protocol to answer with: the first one the client offers that this server speaks.
    static func negotiate(_ request: HTTPRequest) -> (name: String, version: Int)? {
        let offered = request.headers["X-Stream-Protocol-Version"]
            .flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        guard let chosen = offered.first(where: { protocols[$0] != nil }), let version = protocols[chosen] else { return nil }
        return (chosen, version)
    }

    /// The streams the client must open before the process starts.
    private var expected: Set<StreamType> {
        var expected: Set<StreamType> = [.error]
        if options.stdin { expected.insert(.stdin) }
        if options.stdout { expected.insert(.stdout) }
        if options.stderr { expected.insert(.stderr) }
        if options.tty && options.protocolVersion >= 3 { expected.insert(.resize) }
        return expected
    }

    // MARK: ByteStreamSession

    func start(_ connection: ByteStreamConnection) {
        self.connection = connection
        let transport = SPDYServerConnection.Transport(send: { connection.send($0) }, close: { connection.close() })
        spdy = try? SPDYServerConnection(transport: transport, handler: self)
        if spdy == nil { connection.close() }
    }

    func receive(_ bytes: [UInt8]) { spdy?.receive(bytes) }

    func closed() {
        spdy?.closed()
        session.closed()
    }

    // MARK: SPDYStreamHandler

    func refusal(forStreamWith headers: SPDYHeaders) -> SPDYResetStatus? {
        guard let type = headers["streamtype"].flatMap(StreamType.init), streams[type] == nil else { return .refusedStream }
        return nil
    }

    func streamOpened(_ streamID: UInt32, headers: SPDYHeaders, on connection: SPDYServerConnection) {
        guard let type = headers["streamtype"].flatMap(StreamType.init) else { return }
        streams[type] = streamID
        if !started && expected.isSubset(of: Set(streams.keys)) {
            started = true
            session.start(self)
        }
    }

    func streamReceived(_ streamID: UInt32, _ bytes: [UInt8], on connection: SPDYServerConnection) {
        if streamID == streams[.stdin] {
            session.stdin(bytes)
        } else if streamID == streams[.resize] {
            // client-go writes one JSON object per line.
            resizeBuffer += bytes
            while let newline = resizeBuffer.firstIndex(of: 0x0a) {
                session.resize(Array(resizeBuffer[..<newline]))
                resizeBuffer.removeFirst(newline + 1)
            }
        }
    }

    func streamHalfClosed(_ streamID: UInt32, on connection: SPDYServerConnection) {
        if streamID == streams[.stdin] { session.stdinClosed() }
    }

    func streamReset(_ streamID: UInt32, on connection: SPDYServerConnection) {}

    func connectionClosed(_ connection: SPDYServerConnection) {
        session.closed()
    }

    // MARK: ExecOutput (called inside the callbacks above, so on the connection's event loop)

    func write(_ channel: UInt8, _ bytes: [UInt8]) {
        // With a TTY there is no stderr stream: the terminal shows both.
        let stream = channel == 2 ? streams[.stderr] ?? streams[.stdout] : streams[.stdout]
        guard let stream, let spdy else { return }
        spdy.send(bytes, on: stream)
    }

    func exited(_ status: JSONValue) {
        guard let spdy else { return }
        for type in [StreamType.stdout, .stderr] {
            if let stream = streams[type] { spdy.finish(stream) }
        }
        if let error = streams[.error] {
            if options.protocolVersion >= 4 {
                spdy.send(status.serialized(), on: error, fin: true)
            } else if status["status"]?.stringValue == "Failure" {
                spdy.send(Array((status["message"]?.stringValue ?? "").utf8), on: error, fin: true)
            } else {
                spdy.finish(error)
            }
        }
        let connection = self.connection
        DispatchQueue.global().asyncAfter(deadline: .now() + Self.closeGrace) { connection?.close() }
    }
}
