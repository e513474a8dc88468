import HTTPServing
import Foundation
import KubeCore

/// Where a scripted exec writes: WebSocket channel messages (``WebSocketExec``) or SPDY
/// streams (``SPDYExec``). Called from inside the transport's callbacks.
protocol ExecOutput: AnyObject {
    /// Output on channel 1 (stdout) or 2 (stderr).
    func write(_ channel: UInt8, _ bytes: [UInt8])
    /// The process ended with `status` (a `metav1.Status`, `Success` or `NonZeroExitCode`);
    /// nothing is written after this.
    func exited(_ status: JSONValue)
}

/// The "process" behind `pods/exec` and `pods/attach`, whatever protocol carries it.
///
/// Pods do not run here, so the "process" is a scripted shell: it knows a handful of
/// commands (`echo`, `ls`, `env`, `printenv`, `cat`, `hostname`, `stty size`, `exit N`,
/// `sh -c`, ...), echoes typed input on a TTY, and reports exit codes the way the kubelet
/// does, so kubectl — and the gateway in front of it — see real protocol traffic.
final class ExecSession: @unchecked Sendable {
    struct Options {
        var command: [String]
        var stdin: Bool
        var stdout = true
        var stderr = true
        var tty: Bool
        var attach: Bool
        var podName: String
        var environment: [(String, String)]
        var protocolVersion: Int
    }

    private let options: Options
    private let lock = NSLock()
    private var output: ExecOutput?
    private var lineBuffer: [UInt8] = []
    private var size = (width: 80, height: 24)
    private var finished = false
    private var interactive = false

    init(options: Options) { self.options = options }

    func start(_ output: ExecOutput) {
        lock.lock()
        self.output = output
        lock.unlock()
        let command = options.command
        if options.attach || command.isEmpty || (["sh", "bash", "/bin/sh", "/bin/bash"].contains(command[0]) && command.count == 1) {
            guard options.stdin else {
                write(1, "attached to \(options.podName)\n")
                return
            }
            interactive = true
            if options.tty { write(1, prompt) }
            return
        }
        if command.first == "cat" && command.count == 1 && options.stdin {
            interactive = true
            return
        }
        let (out, err, code) = run(command)
        if !out.isEmpty { write(1, out) }
        if !err.isEmpty { write(2, err) }
        finish(exitCode: code, command: command)
    }

    var prompt: String { "/ # " }

    /// A terminal size, `{"Width":..,"Height":..}`.
    func resize(_ payload: [UInt8]) {
        guard let value = try? JSONValue(parsing: payload) else { return }
        lock.lock()
        size = (Int(value["Width"]?.intValue ?? 80), Int(value["Height"]?.intValue ?? 24))
        lock.unlock()
    }

    /// The client closed stdin: a shell (or `cat`) reading it ends, as at end of input.
    func stdinClosed() {
        finish(exitCode: 0, command: options.command)
    }

    func closed() {
        lock.lock()
        finished = true
        output = nil
        lock.unlock()
    }

    /// Bytes typed or piped on stdin.
    func stdin(_ bytes: [UInt8]) {
        guard interactive else { return }
        if options.command == ["cat"] {
            write(1, bytes)
            return
        }
        for byte in bytes {
            switch byte {
            case 0x0d, 0x0a:
                if options.tty { write(1, "\r\n") }
                let line = String(decoding: lineBuffer, as: UTF8.self)
                lineBuffer = []
                runLine(line)
                if finishedNow { return }
                if options.tty { write(1, prompt) }
            case 0x7f, 0x08:
                if !lineBuffer.isEmpty {
                    lineBuffer.removeLast()
                    if options.tty { write(1, "\u{8} \u{8}") }
                }
            case 0x03:
                lineBuffer = []
                if options.tty { write(1, "^C\r\n" + prompt) }
            case 0x04:
                if lineBuffer.isEmpty {
                    if options.tty { write(1, "exit\r\n") }
                    finish(exitCode: 0, command: options.command)
                    return
                }
            default:
                lineBuffer.append(byte)
                if options.tty { write(1, [byte]) }
            }
        }
    }

    private var finishedNow: Bool {
        lock.lock()
        defer { lock.unlock() }
        return finished
    }

    private func runLine(_ line: String) {
        let words = ShellWords.split(line)
        guard let first = words.first else { return }
        if first == "exit" {
            finish(exitCode: Int(words.dropFirst().first ?? "0") ?? 0, command: options.command)
            return
        }
        let (out, err, _) = run(words)
        let newline = options.tty ? "\r\n" : "\n"
        if !out.isEmpty { write(1, out.replacingOccurrences(of: "\n", with: newline)) }
        if !err.isEmpty { write(options.tty ? 1 : 2, err.replacingOccurrences(of: "\n", with: newline)) }
    }

    /// Runs one scripted command: (stdout, stderr, exit code).
    func run(_ words: [String]) -> (String, String, Int) {
        guard let command = words.first else { return ("", "", 0) }
        let args = Array(words.dropFirst())
        switch command {
        case "echo": return (args.joined(separator: " ") + "\n", "", 0)
        case "true": return ("", "", 0)
        case "false": return ("", "", 1)
        case "exit": return ("", "", Int(args.first ?? "0") ?? 0)
        case "pwd": return ("/\n", "", 0)
        case "whoami": return ("root\n", "", 0)
        case "hostname": return (options.podName + "\n", "", 0)
        case "date": return (KubeTime.format(Date()) + "\n", "", 0)
        case "ls": return ("bin\ndev\netc\nhome\nproc\nroot\ntmp\nusr\nvar\n", "", 0)
        case "env", "printenv":
            let environment = options.environment + [("HOSTNAME", options.podName), ("HOME", "/root")]
            if let name = args.first {
                guard let value = environment.first(where: { $0.0 == name })?.1 else { return ("", "", 1) }
                return (value + "\n", "", 0)
            }
            return (environment.map { "\($0.0)=\($0.1)\n" }.joined(), "", 0)
        case "cat":
            if args.first == "/etc/hostname" { return (options.podName + "\n", "", 0) }
            return ("", "cat: can't open '\(args.first ?? "")': No such file or directory\n", 1)
        case "stty":
            lock.lock()
            let current = size
            lock.unlock()
            return args == ["size"] ? ("\(current.height) \(current.width)\n", "", 0) : ("", "", 0)
        case "sleep":
            Thread.sleep(forTimeInterval: min(Double(args.first ?? "0") ?? 0, 5))
            return ("", "", 0)
        case "sh", "bash", "/bin/sh", "/bin/bash":
            if args.first == "-c", args.count > 1 {
                var out = ""
                var err = ""
                var code = 0
                for part in args[1].components(separatedBy: ";") {
                    let words = ShellWords.split(part)
                    if words.first == "exit" { return (out, err, Int(words.dropFirst().first ?? "0") ?? 0) }
                    let result = run(words)
                    out += result.0
                    err += result.1
                    code = result.2
                }
                return (out, err, code)
            }
            return ("", "", 0)
        default:
            return ("", "sh: \(command): not found\n", 127)
        }
    }

    private func write(_ channel: UInt8, _ text: String) {
        write(channel, Array(text.utf8))
    }

    private func write(_ channel: UInt8, _ bytes: [UInt8]) {
        lock.lock()
        let output = finished ? nil : self.output
        lock.unlock()
        output?.write(channel, bytes)
    }

    /// Reports the exit status, as the kubelet does; the transport then closes.
    private func finish(exitCode: Int, command: [String]) {
        lock.lock()
        if finished { lock.unlock(); return }
        let output = self.output
        finished = true
        lock.unlock()
        var status: JSONValue = ["metadata": [:], "status": "Success"]
        if exitCode != 0 {
            status = ["metadata": [:], "status": "Failure",
                      "message": .string("command terminated with non-zero exit code: error executing command \(command), exit code \(exitCode)"),
                      "reason": "NonZeroExitCode",
                      "details": ["causes": [["reason": "ExitCode", "message": .string(String(exitCode))]]]]
        }
        output?.exited(status)
    }
}

/// `pods/exec` and `pods/attach` over WebSocket with the Kubernetes channel protocols
/// (`v5.channel.k8s.io`, `v4.channel.k8s.io`): every binary message starts with a channel
/// byte — 0 stdin, 1 stdout, 2 stderr, 3 error (a `metav1.Status` carrying the exit code),
/// 4 resize (`{"Width":..,"Height":..}`), and in v5, 255 "close this stream" (from the client).
final class WebSocketExec: WebSocketSession, ExecOutput, @unchecked Sendable {
    private let session: ExecSession
    private let lock = NSLock()
    private var connection: WebSocketConnection?

    init(options: ExecSession.Options) { session = ExecSession(options: options) }

    func start(_ connection: WebSocketConnection) {
        lock.lock()
        self.connection = connection
        lock.unlock()
        session.start(self)
    }

    func receive(_ message: [UInt8]) {
        guard let channel = message.first else { return }
        let payload = Array(message.dropFirst())
        switch channel {
        case 0: session.stdin(payload)
        case 4: session.resize(payload)
        case 255: if payload.first == 0 { session.stdinClosed() }
        default: break
        }
    }

    func closed() { session.closed() }

    func write(_ channel: UInt8, _ bytes: [UInt8]) {
        lock.lock()
        let connection = self.connection
        lock.unlock()
        connection?.send([channel] + bytes)
    }

    func exited(_ status: JSONValue) {
        lock.lock()
        let connection = self.connection
        lock.unlock()
        // No v5 CLOSE (255) messages here: that signal goes from client to server only, and
        // kubectl logs "Unknown stream id 255" for each one it receives.
        connection?.send([3] + status.serialized())
        connection?.close()
    }
}

/// Splits a command line into words with single and double quotes, as a shell would.
enum ShellWords {
    static func split(_ line: String) -> [String] {
        var words: [String] = []
        var current = ""
        var quote: Character?
        var inWord = false
        for character in line {
            if let q = quote {
                if character == q { quote = nil } else { current.append(character) }
            } else if character == "'" || character == "\"" {
                quote = character
                inWord = true
            } else if character == " " || character == "\t" {
                if inWord { words.append(current); current = ""; inWord = false }
            } else {
                current.append(character)
                inWord = true
            }
        }
        if inWord { words.append(current) }
        return words
    }
}
