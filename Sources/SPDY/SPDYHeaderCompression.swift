import CZlib
import Foundation

/// SPDY/3 header blocks are zlib streams primed with a fixed dictionary (SPDY/3 draft,
/// section 2.6.10.1). Each direction of a connection keeps one compression context for its
/// whole life, and every header block ends with a sync flush, so a block can be decoded as
/// soon as its frame arrives. One ``SPDYHeaderDecompressor`` reads what the client sent; one
/// ``SPDYHeaderCompressor`` writes what the server sends.
public enum SPDYDictionary {
    /// The dictionary of the SPDY/3 specification: header names and common values, each
    /// with a 32-bit big-endian length, then a run of common status lines, dates and media types.
    public static let bytes: [UInt8] = {
        let words = [
            "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
            "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
            "content-base", "content-encoding", "content-language", "content-length", "content-location", "content-md5",
            "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host", "if-match",
            "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
            "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after",
            "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
            "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url", "public",
            "set-cookie", "keep-alive", "origin",
        ]
        let tail = "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
            + "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
            + "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
            + "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
            + "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
            + "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
        var bytes: [UInt8] = []
        for word in words {
            bytes.appendUInt32(UInt32(word.utf8.count))
            bytes += Array(word.utf8)
        }
        return bytes + Array(tail.utf8)
    }()
}

public struct SPDYCompressionError: Error, CustomStringConvertible {
    public var description: String
}

/// Compresses outgoing header blocks on one zlib stream.
final class SPDYHeaderCompressor {
    private var stream = z_stream()

    init() throws {
        guard czlib_deflate_init(&stream, Z_DEFAULT_COMPRESSION) == Z_OK else {
            throw SPDYCompressionError(description: "zlib deflateInit failed")
        }
        let dictionary = SPDYDictionary.bytes
        let status = dictionary.withUnsafeBufferPointer { buffer in
            deflateSetDictionary(&stream, buffer.baseAddress, uInt(buffer.count))
        }
        guard status == Z_OK else {
            deflateEnd(&stream)
            throw SPDYCompressionError(description: "zlib deflateSetDictionary failed (\(status))")
        }
    }

    deinit { deflateEnd(&stream) }

    /// Compresses `block` and sync-flushes, so the peer can decode it on its own.
    func compress(_ block: [UInt8]) throws -> [UInt8] {
        var input = block
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        try input.withUnsafeMutableBufferPointer { inBuffer in
            stream.next_in = inBuffer.baseAddress
            stream.avail_in = uInt(inBuffer.count)
            repeat {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { outBuffer -> (Int32, Int) in
                    stream.next_out = outBuffer.baseAddress
                    stream.avail_out = uInt(outBuffer.count)
                    let status = deflate(&stream, Z_SYNC_FLUSH)
                    return (status, outBuffer.count - Int(stream.avail_out))
                }
                guard status == Z_OK || status == Z_BUF_ERROR else {
                    throw SPDYCompressionError(description: "zlib deflate failed (\(status))")
                }
                output += chunk[0..<produced]
            } while stream.avail_out == 0
            stream.next_in = nil
        }
        return output
    }
}

/// Decompresses incoming header blocks on one zlib stream; supplies the SPDY dictionary
/// when zlib asks for it (the first block).
final class SPDYHeaderDecompressor {
    private var stream = z_stream()
    /// A header block may not expand past this (kube-apiserver's request header limit is far lower).
    static let maxBlockBytes = 1 << 20

    init() throws {
        guard czlib_inflate_init(&stream) == Z_OK else {
            throw SPDYCompressionError(description: "zlib inflateInit failed")
        }
    }

    deinit { inflateEnd(&stream) }

    func decompress(_ block: [UInt8]) throws -> [UInt8] {
        var input = block
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        try input.withUnsafeMutableBufferPointer { inBuffer in
            stream.next_in = inBuffer.baseAddress
            stream.avail_in = uInt(inBuffer.count)
            defer { stream.next_in = nil }
            while stream.avail_in > 0 || output.isEmpty {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { outBuffer -> (Int32, Int) in
                    stream.next_out = outBuffer.baseAddress
                    stream.avail_out = uInt(outBuffer.count)
                    let status = inflate(&stream, Z_SYNC_FLUSH)
                    return (status, outBuffer.count - Int(stream.avail_out))
                }
                output += chunk[0..<produced]
                switch status {
                case Z_OK:
                    break
                case Z_NEED_DICT:
                    let dictionary = SPDYDictionary.bytes
                    let set = dictionary.withUnsafeBufferPointer { inflateSetDictionary(&stream, $0.baseAddress, uInt($0.count)) }
                    guard set == Z_OK else {
                        throw SPDYCompressionError(description: "header block names a zlib dictionary other than SPDY/3's")
                    }
                case Z_BUF_ERROR where stream.avail_in == 0, Z_STREAM_END:
                    return
                default:
                    let detail = stream.msg.map { String(cString: $0) } ?? "status \(status)"
                    throw SPDYCompressionError(description: "invalid compressed header block: \(detail)")
                }
                if output.count > Self.maxBlockBytes {
                    throw SPDYCompressionError(description: "header block larger than \(Self.maxBlockBytes) bytes")
                }
                if stream.avail_in == 0 && stream.avail_out != 0 { return }
            }
        }
        return output
    }
}

extension Array where Element == UInt8 {
    mutating func appendUInt32(_ value: UInt32) {
        append(UInt8(truncatingIfNeeded: value >> 24))
        append(UInt8(truncatingIfNeeded: value >> 16))
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }
}
