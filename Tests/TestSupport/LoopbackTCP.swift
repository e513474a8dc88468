import Foundation
import HTTPServing
#if canImport(Glibc)
import Glibc
#endif

/// Blocking TCP on 127.0.0.1 for tests that talk through a port kubectl forwards, or to
/// the server's raw socket. Every call has a timeout, so a broken peer fails the test
/// instead of hanging it.
public final class LoopbackTCP {
    public struct Failure: Error, CustomStringConvertible {
        /// Where it failed; `timedOut` is a receive that ran past the timeout.
        public enum Stage: Sendable { case connect, send, receive, timedOut }
        public var stage: Stage
        public var description: String
    }

    /// -1 once closed (a failed connect closes it at once; deinit must not close it again,
    /// or it would close whatever descriptor another thread opened with that number since).
    private var fd: Int32

    public init(port: Int, timeout: Double = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(stage: .connect, description: "socket: errno \(errno)") }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let failure = errno
            close(fd)
            fd = -1
            errno = failure
            throw Failure(stage: .connect, description: "connect to 127.0.0.1:\(port): errno \(errno)")
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    public func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw Failure(stage: .send, description: "send: errno \(errno)") }
            offset += written
        }
    }

    public func write(_ text: String) throws { try write(Array(text.utf8)) }

    /// Half-closes: the peer reads end of input.
    public func finishWriting() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads whatever arrives next (empty at end of input); throws on timeout.
    public func readSome(max: Int = 65_536) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
        guard count >= 0 else {
            let timedOut = errno == EAGAIN || errno == EWOULDBLOCK
            throw Failure(stage: timedOut ? .timedOut : .receive, description: "recv: errno \(errno)\(timedOut ? " (timed out)" : "")")
        }
        return Array(buffer[0..<count])
    }

    /// Reads until `count` bytes or end of input.
    public func read(count: Int) throws -> [UInt8] {
        var bytes: [UInt8] = []
        while bytes.count < count {
            let chunk = try readSome(max: count - bytes.count)
            if chunk.isEmpty { break }
            bytes += chunk
        }
        return bytes
    }

    /// Reads until the peer closes.
    /// Reads an HTTP response head, up to and including its blank line (or to the peer's close).
    public func readHead() throws -> String {
        var head: [UInt8] = []
        while !head.suffix(4).elementsEqual([13, 10, 13, 10]) {
            let byte = try read(count: 1)
            guard !byte.isEmpty else { break }
            head += byte
        }
        return String(decoding: head, as: UTF8.self)
    }

    public func readToEnd() throws -> [UInt8] {
        var bytes: [UInt8] = []
        while true {
            let chunk = try readSome()
            if chunk.isEmpty { return bytes }
            bytes += chunk
        }
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    public static func freePort() throws -> Int { try LoopbackPort.free() }
}
