import AsyncHTTPClient
import NIOCore

/// Splits a watch response body into its newline-delimited JSON events.
///
/// Contract: reads the body only as far as needed for the next line (so the consumer's pace is
/// the stream's pace); blank lines are skipped; a trailing line without a newline is returned at
/// the end; a line over `maxLineBytes` is an error rather than unbounded memory.
final class WatchLineReader {
    private var body: HTTPClientResponse.Body.AsyncIterator
    private var buffer: [UInt8] = []
    private var start = 0
    private var scanned = 0
    private let maxLineBytes: Int

    init(_ body: HTTPClientResponse.Body, maxLineBytes: Int = 64 * 1024 * 1024) {
        self.body = body.makeAsyncIterator()
        self.maxLineBytes = maxLineBytes
    }

    /// The next non-blank line (without its newline), or nil at the end of the body.
    func nextLine() async throws -> [UInt8]? {
        while true {
            if let newline = buffer[scanned...].firstIndex(of: 0x0a) {
                let line = Array(buffer[start..<newline])
                start = newline + 1
                scanned = start
                compact()
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x0d || $0 == 0x09 }) { continue }
                return line
            }
            scanned = buffer.count
            if buffer.count - start > maxLineBytes {
                throw KubeError.decoding("watch event larger than \(maxLineBytes) bytes")
            }
            guard let chunk = try await body.next() else {
                let rest = Array(buffer[start...])
                buffer.removeAll()
                start = 0
                scanned = 0
                if rest.allSatisfy({ $0 == 0x20 || $0 == 0x0d || $0 == 0x09 }) { return nil }
                return rest
            }
            buffer.append(contentsOf: chunk.readableBytesView)
        }
    }

    /// Drops consumed bytes once they are the larger part of the buffer (amortised O(1) per byte).
    private func compact() {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
            scanned = 0
        } else if start > 4096 && start * 2 > buffer.count {
            buffer.removeSubrange(0..<start)
            scanned -= start
            start = 0
        }
    }
}
