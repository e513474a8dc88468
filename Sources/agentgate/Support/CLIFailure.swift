import ArgumentParser
import Foundation

/// A command's runtime failure as the user reads it: `Error: <one sentence>` on standard
/// error, exit status 1 (how ArgumentParser reports an error that is not a usage error).
///
/// Contract: usage errors (a bad flag value, a missing or conflicting flag) are
/// `ValidationError`s, reported with the usage text and exit status 64. Anything else a
/// command's `run()` throws becomes a CLIFailure in ``AgentGateCommand/main()`` through
/// ``init(describing:)``: one line that names the file, URL or host at fault and carries no
/// Swift type name (`HTTPClientError.…`, `NSCocoaErrorDomain`, `errno`). Our own errors
/// (KubeError, KubeConfigError, SessionStoreError, GatewayConfigError, SandboxError…) already
/// say what to fix; what they wrap from Foundation, AsyncHTTPClient and NIO is put in words.
struct CLIFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }

    init(describing error: Error) {
        let text = (error as? CLIFailure)?.description ?? Self.fileProblem(error) ?? Self.readable(String(describing: error))
        description = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: " ")
    }

    /// A usage error, a help request or a requested exit, which ArgumentParser reports as it
    /// is (any other error it would report with exit status 1).
    static func isUsageOrExit(_ error: Error) -> Bool {
        error is ValidationError || error is ExitCode || error is CleanExit || AgentGateCommand.exitCode(for: error) != .failure
    }

    /// Why a file operation failed, in words (`no such file or directory`), for messages that
    /// already name the file; nil when `error` is not a Foundation file error.
    static func fileReason(_ error: Error) -> String? {
        guard let error = foundationError(error) else { return nil }
        if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return systemMessage(Int32(underlying.code))
        }
        if error.domain == NSPOSIXErrorDomain { return systemMessage(Int32(error.code)) }
        return cocoaReason(error.code) ?? readable(error.localizedDescription)
    }

    /// `cannot read PATH: REASON` for a Foundation file error.
    private static func fileProblem(_ error: Error) -> String? {
        guard let reason = fileReason(error), let ns = foundationError(error) else { return nil }
        let path = ns.userInfo[NSFilePathErrorKey] as? String ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
        guard let path else { return reason }
        let verb = switch ns.code {
        case 256..<512: "cannot read"
        case 512..<1024: "cannot write"
        default: "cannot use"
        }
        return "\(verb) \(path): \(reason)"
    }

    private static func foundationError(_ error: Error) -> NSError? {
        guard error is CocoaError || error is POSIXError || type(of: error) is NSError.Type else { return nil }
        let ns = error as NSError
        return [NSCocoaErrorDomain, NSPOSIXErrorDomain].contains(ns.domain) ? ns : nil
    }

    private static func cocoaReason(_ code: Int) -> String? {
        switch code {
        case 4, 260: "no such file or directory"
        case 257, 513: "permission denied"
        case 256: "not a readable file"
        case 261, 517: "not UTF-8 text"
        case 516: "it already exists"
        case 640: "no space left on device"
        case 642: "the volume is read-only"
        default: nil
        }
    }

    /// `strerror`, starting lower-case: `connection refused`.
    private static func systemMessage(_ code: Int32) -> String {
        let text = String(cString: strerror(code))
        return text.prefix(1).lowercased() + text.dropFirst()
    }

    /// `text` with what other layers interpolated from Foundation, AsyncHTTPClient and NIO
    /// errors put in words.
    static func readable(_ text: String) -> String {
        var text = text
        // Foundation: `Error Domain=NSCocoaErrorDomain Code=4 "The file doesn’t exist." UserInfo={…}`.
        text.replace(#/Error Domain=\S+ Code=-?\d+ "(?<what>[^"]*)"\s*(?:UserInfo=\{.*\})?/#) { lowerFirst(String($0.what)) }
        // Foundation: `The operation could not be completed. (NSCocoaErrorDomain error 256.)`.
        text.replace(#/The operation could not be completed\.? ?\((?<domain>\w+) error (?<code>-?\d+)\.\)/#) { match in
            let code = Int(match.code) ?? 0
            if match.domain == NSPOSIXErrorDomain { return systemMessage(Int32(code)) }
            return cocoaReason(code) ?? "the operation failed"
        }
        text.replace(#/The operation could not be completed\. ?/#) { _ in "" }
        // AsyncHTTPClient: `HTTPClientError.unsupportedScheme("ftp")`, `HTTPClientError.connectTimeout`.
        text.replace(#/HTTPClientError\.unsupportedScheme\("(?<scheme>[^"]*)"\)/#) {
            "the URL scheme \"\($0.scheme)\" is not supported (use http or https)"
        }
        text.replace(#/HTTPClientError\.(?<name>\w+)(?:\([^)]*\))?/#) { httpClientReason(String($0.name)) }
        // NIO: `DNS error: SocketAddressError.UnknownHost: Name or service not known (error -2) for host H, port P`.
        text.replace(#/(?:DNS error: )?SocketAddressError\.UnknownHost[^\n]*?for host (?<host>[^,\s]+), port \d+/#) {
            "the host name \($0.host) cannot be resolved"
        }
        text.replace(#/SocketAddressError\.UnknownHost\(host: "(?<host>[^"]*)", port: \d+\)/#) {
            "the host name \($0.host) cannot be resolved"
        }
        // NIO: `connection reset (error set): Connection refused) (errno: 111)`, `connect(descriptor:addr:size:): … (errno: 111)`.
        text.replace(#/(?:\w[\w ]*\([\w: ]*\): )?[^:()]*\)? ?\(errno: (?<code>\d+)\)/#) { systemMessage(Int32($0.code) ?? 0) }
        // NIOSSL: an untrusted certificate, then any other TLS failure.
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            text.replace(#/\S*(?:NIOSSLError|BoringSSLError|handshakeFailed)[^\n]*/#) { _ in
                "the server's TLS certificate is not trusted (certificate verify failed)"
            }
        }
        // Any other `SomeError.someCase(…)`: the case's words.
        text.replace(#/\b(?:[A-Z]\w*\.)*[A-Z]\w*Error\.(?<name>[a-zA-Z]\w*)(?:\([^)]*\))?/#) { words(String($0.name)) }
        return text
    }

    private static func httpClientReason(_ name: String) -> String {
        switch name {
        case "connectTimeout": "connecting timed out"
        case "readTimeout", "deadlineExceeded", "getConnectionFromPoolTimeout": "no answer in time"
        case "remoteConnectionClosed": "the server closed the connection"
        case "emptyHost": "the URL has no host"
        case "emptyScheme": "the URL has no scheme (use http:// or https://)"
        case "invalidURL": "the URL is not valid"
        case "tlsHandshakeTimeout": "the TLS handshake timed out"
        case "cancelled", "requestStreamCancelled": "the request was cancelled"
        default: words(name)
        }
    }

    /// `tlsHandshakeTimeout` → `tls handshake timeout`.
    private static func words(_ name: String) -> String {
        var result = ""
        for character in name {
            if character.isUppercase, !result.isEmpty, result.last != " " { result.append(" ") }
            result.append(Character(character.lowercased()))
        }
        return result
    }

    private static func lowerFirst(_ text: String) -> String { text.prefix(1).lowercased() + text.dropFirst() }
}
