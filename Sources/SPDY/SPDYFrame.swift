import Foundation

/// SPDY/3.1 frames, the transport of `kubectl port-forward` and of exec/attach before
/// WebSocket (kubectl's fallback, or `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`). Every frame has an 8-byte header: a control bit, then either version and
/// type (control frames) or a 31-bit stream id (data frames), then 8 bits of flags and a
/// 24-bit payload length. Header blocks inside SYN_STREAM, SYN_REPLY and HEADERS are
/// zlib-compressed (``SPDYHeaderCompressor``); ``SPDYFrameCodec`` handles both.
public enum SPDYFrame: Equatable, Sendable {
    case synStream(streamID: UInt32, associatedStreamID: UInt32, priority: UInt8, fin: Bool, unidirectional: Bool,
                   headers: SPDYHeaders)
    case synReply(streamID: UInt32, fin: Bool, headers: SPDYHeaders)
    case rstStream(streamID: UInt32, status: SPDYResetStatus)
    case settings([SPDYSetting])
    case ping(id: UInt32)
    case goAway(lastGoodStreamID: UInt32, status: UInt32)
    case headers(streamID: UInt32, fin: Bool, headers: SPDYHeaders)
    case windowUpdate(streamID: UInt32, delta: UInt32)
    case data(streamID: UInt32, fin: Bool, payload: [UInt8])
}

enum SPDYControlType: UInt16 {
    case synStream = 1, synReply, rstStream, settings
    case ping = 6, goAway, headers, windowUpdate
}

/// RST_STREAM status codes (SPDY/3 section 2.4.2).
public enum SPDYResetStatus: UInt32, Equatable, Sendable {
    case protocolError = 1, invalidStream, refusedStream, unsupportedVersion, cancel, internalError,
         flowControlError, streamInUse, streamAlreadyClosed, invalidCredentials, frameTooLarge
}

/// GOAWAY status codes.
public enum SPDYGoAwayStatus {
    public static let ok: UInt32 = 0
    public static let protocolError: UInt32 = 1
    public static let internalError: UInt32 = 2
}

public struct SPDYSetting: Equatable, Sendable {
    public var flags: UInt8
    public var id: UInt32
    public var value: UInt32

    public init(flags: UInt8, id: UInt32, value: UInt32) {
        self.flags = flags
        self.id = id
        self.value = value
    }
}

/// Name/value pairs of a header block. Names are lowercase on the wire; several values of
/// one name travel NUL-separated in one entry.
public struct SPDYHeaders: Equatable, Sendable, ExpressibleByDictionaryLiteral {
    public var entries: [(name: String, values: [String])] = []

    public init() {}

    public init(dictionaryLiteral elements: (String, String)...) {
        for (name, value) in elements { add(name, value) }
    }

    public mutating func add(_ name: String, _ value: String) {
        let name = name.lowercased()
        if let index = entries.firstIndex(where: { $0.name == name }) {
            entries[index].values.append(value)
        } else {
            entries.append((name, [value]))
        }
    }

    /// The first value of `name` (case-insensitive), as Go's `http.Header.Get`.
    public subscript(name: String) -> String? {
        let name = name.lowercased()
        return entries.first(where: { $0.name == name })?.values.first
    }

    public static func == (lhs: SPDYHeaders, rhs: SPDYHeaders) -> Bool {
        lhs.entries.count == rhs.entries.count
            && zip(lhs.entries, rhs.entries).allSatisfy { $0.name == $1.name && $0.values == $1.values }
    }

    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendUInt32(UInt32(entries.count))
        for entry in entries {
            let name = Array(entry.name.utf8)
            let value = Array(entry.values.joined(separator: "\u{0}").utf8)
            bytes.appendUInt32(UInt32(name.count))
            bytes += name
            bytes.appendUInt32(UInt32(value.count))
            bytes += value
        }
        return bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> SPDYHeaders {
        var reader = ByteReader(bytes)
        var headers = SPDYHeaders()
        let count = try reader.uint32()
        // Each entry takes at least 8 bytes, so a count beyond that is a lie, not a reason to allocate.
        guard Int(count) <= bytes.count / 8 else { throw SPDYFrameError("header block claims \(count) entries in \(bytes.count) bytes") }
        for _ in 0..<count {
            let name = String(decoding: try reader.bytes(Int(try reader.uint32())), as: UTF8.self)
            let value = String(decoding: try reader.bytes(Int(try reader.uint32())), as: UTF8.self)
            guard !name.isEmpty else { throw SPDYFrameError("header block has an empty header name") }
            for part in value.split(separator: "\u{0}", omittingEmptySubsequences: false) {
                headers.add(name, String(part))
            }
        }
        guard reader.isAtEnd else { throw SPDYFrameError("header block has \(reader.remaining) trailing bytes") }
        return headers
    }
}

public struct SPDYFrameError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Big-endian reads over a byte array that fail instead of trapping on short input.
struct ByteReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { offset == bytes.count }
    var remaining: Int { bytes.count - offset }

    mutating func uint8() throws -> UInt8 {
        guard remaining >= 1 else { throw SPDYFrameError("frame too short") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func uint32() throws -> UInt32 {
        guard remaining >= 4 else { throw SPDYFrameError("frame too short") }
        defer { offset += 4 }
        return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    mutating func bytes(_ count: Int) throws -> [UInt8] {
        guard count >= 0, remaining >= count else { throw SPDYFrameError("frame too short") }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func rest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[offset...])
    }
}

/// Turns the bytes of one direction of a SPDY/3.1 connection into frames and frames into
/// bytes. Input may arrive in any split (TCP segments, WebSocket messages); `decode` keeps
/// what it could not parse yet. Not thread-safe: one codec per connection, used serially.
public final class SPDYFrameCodec {
    public static let version: UInt16 = 3
    /// Control frames carry headers and bookkeeping; nothing legitimate comes near this.
    public static let maxControlFrameBytes = 1 << 20
    private var buffered: [UInt8] = []
    private let compressor: SPDYHeaderCompressor
    private let decompressor: SPDYHeaderDecompressor

    public init() throws {
        compressor = try SPDYHeaderCompressor()
        decompressor = try SPDYHeaderDecompressor()
    }

    /// Appends `bytes` and returns every frame now complete. Throws on a malformed frame
    /// (the connection is then unusable: header compression state is shared).
    public func decode(_ bytes: [UInt8]) throws -> [SPDYFrame] {
        buffered += bytes
        var frames: [SPDYFrame] = []
        var start = 0
        while buffered.count - start >= 8 {
            let length = Int(buffered[start + 5]) << 16 | Int(buffered[start + 6]) << 8 | Int(buffered[start + 7])
            let isControl = buffered[start] & 0x80 != 0
            if isControl && length > Self.maxControlFrameBytes {
                throw SPDYFrameError("control frame of \(length) bytes exceeds the \(Self.maxControlFrameBytes)-byte limit")
            }
            guard buffered.count - start >= 8 + length else { break }
            let header = Array(buffered[start..<start + 8])
            let payload = Array(buffered[start + 8..<start + 8 + length])
            start += 8 + length
            if let frame = try decodeFrame(header: header, payload: payload) {
                frames.append(frame)
            }
        }
        buffered.removeFirst(start)
        return frames
    }

    /// One frame; nil for control frame types SPDY/3.1 says to ignore (e.g. CREDENTIAL).
    private func decodeFrame(header: [UInt8], payload: [UInt8]) throws -> SPDYFrame? {
        let flags = header[4]
        let fin = flags & 0x01 != 0
        guard header[0] & 0x80 != 0 else {
            let streamID = (UInt32(header[0]) << 24 | UInt32(header[1]) << 16 | UInt32(header[2]) << 8 | UInt32(header[3])) & 0x7fff_ffff
            return .data(streamID: streamID, fin: fin, payload: payload)
        }
        let version = (UInt16(header[0]) << 8 | UInt16(header[1])) & 0x7fff
        guard version == Self.version else {
            throw SPDYFrameError("unsupported SPDY version \(version) (this server speaks SPDY/3.1)")
        }
        let rawType = UInt16(header[2]) << 8 | UInt16(header[3])
        guard let type = SPDYControlType(rawValue: rawType) else { return nil }
        var reader = ByteReader(payload)
        switch type {
        case .synStream:
            let streamID = try reader.uint32() & 0x7fff_ffff
            let associated = try reader.uint32() & 0x7fff_ffff
            let priority = try reader.uint8() >> 5
            _ = try reader.uint8() // credential slot
            let headers = try SPDYHeaders.decode(try decompressor.decompress(reader.rest()))
            return .synStream(streamID: streamID, associatedStreamID: associated, priority: priority, fin: fin,
                              unidirectional: flags & 0x02 != 0, headers: headers)
        case .synReply:
            let streamID = try reader.uint32() & 0x7fff_ffff
            return .synReply(streamID: streamID, fin: fin, headers: try SPDYHeaders.decode(try decompressor.decompress(reader.rest())))
        case .headers:
            let streamID = try reader.uint32() & 0x7fff_ffff
            return .headers(streamID: streamID, fin: fin, headers: try SPDYHeaders.decode(try decompressor.decompress(reader.rest())))
        case .rstStream:
            let streamID = try reader.uint32() & 0x7fff_ffff
            let code = try reader.uint32()
            return .rstStream(streamID: streamID, status: SPDYResetStatus(rawValue: code) ?? .protocolError)
        case .settings:
            let count = try reader.uint32()
            guard Int(count) * 8 == reader.remaining else {
                throw SPDYFrameError("SETTINGS frame claims \(count) entries in \(reader.remaining) bytes")
            }
            var settings: [SPDYSetting] = []
            for _ in 0..<count {
                let flagsAndID = try reader.uint32()
                settings.append(SPDYSetting(flags: UInt8(flagsAndID >> 24), id: flagsAndID & 0xff_ffff, value: try reader.uint32()))
            }
            return .settings(settings)
        case .ping:
            return .ping(id: try reader.uint32())
        case .goAway:
            return .goAway(lastGoodStreamID: try reader.uint32() & 0x7fff_ffff, status: try reader.uint32())
        case .windowUpdate:
            return .windowUpdate(streamID: try reader.uint32() & 0x7fff_ffff, delta: try reader.uint32() & 0x7fff_ffff)
        }
    }

    /// The bytes of `frame`, compressing its header block if it has one.
    public func encode(_ frame: SPDYFrame) throws -> [UInt8] {
        func control(_ type: SPDYControlType, flags: UInt8, _ payload: [UInt8]) -> [UInt8] {
            var bytes: [UInt8] = [0x80 | UInt8(Self.version >> 8), UInt8(Self.version & 0xff),
                                  UInt8(type.rawValue >> 8), UInt8(type.rawValue & 0xff), flags]
            bytes += [UInt8(truncatingIfNeeded: payload.count >> 16), UInt8(truncatingIfNeeded: payload.count >> 8),
                      UInt8(truncatingIfNeeded: payload.count)]
            return bytes + payload
        }
        var payload: [UInt8] = []
        switch frame {
        case let .synStream(streamID, associated, priority, fin, unidirectional, headers):
            payload.appendUInt32(streamID)
            payload.appendUInt32(associated)
            payload += [priority << 5, 0]
            payload += try compressor.compress(headers.encoded())
            return control(.synStream, flags: (fin ? 1 : 0) | (unidirectional ? 2 : 0), payload)
        case let .synReply(streamID, fin, headers):
            payload.appendUInt32(streamID)
            payload += try compressor.compress(headers.encoded())
            return control(.synReply, flags: fin ? 1 : 0, payload)
        case let .headers(streamID, fin, headers):
            payload.appendUInt32(streamID)
            payload += try compressor.compress(headers.encoded())
            return control(.headers, flags: fin ? 1 : 0, payload)
        case let .rstStream(streamID, status):
            payload.appendUInt32(streamID)
            payload.appendUInt32(status.rawValue)
            return control(.rstStream, flags: 0, payload)
        case let .settings(settings):
            payload.appendUInt32(UInt32(settings.count))
            for setting in settings {
                payload.appendUInt32(UInt32(setting.flags) << 24 | (setting.id & 0xff_ffff))
                payload.appendUInt32(setting.value)
            }
            return control(.settings, flags: 0, payload)
        case let .ping(id):
            payload.appendUInt32(id)
            return control(.ping, flags: 0, payload)
        case let .goAway(lastGood, status):
            payload.appendUInt32(lastGood)
            payload.appendUInt32(status)
            return control(.goAway, flags: 0, payload)
        case let .windowUpdate(streamID, delta):
            payload.appendUInt32(streamID)
            payload.appendUInt32(delta)
            return control(.windowUpdate, flags: 0, payload)
        case let .data(streamID, fin, data):
            var bytes: [UInt8] = []
            bytes.appendUInt32(streamID & 0x7fff_ffff)
            bytes += [fin ? 1 : 0, UInt8(truncatingIfNeeded: data.count >> 16), UInt8(truncatingIfNeeded: data.count >> 8),
                      UInt8(truncatingIfNeeded: data.count)]
            return bytes + data
        }
    }
}
