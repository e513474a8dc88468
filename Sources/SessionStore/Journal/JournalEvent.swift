import CZlib
import Foundation

/// One recording write as the journal holds it until it is ingested into SQLite: the
/// exchange's begin (with the id and sequence the store assigned), a stream chunk (with its
/// sequence), or the completion. Times are microseconds since the epoch, the store's precision.
enum JournalEvent: Sendable, Equatable {
    case begin(id: ExchangeID, sequence: Int64, owner: String, start: ExchangeStart)
    case chunk(exchangeID: ExchangeID, sequence: Int64, atMicros: Int64, channel: String, data: [UInt8])
    case complete(exchangeID: ExchangeID, result: ExchangeResult)

    /// The exchange the event records.
    var exchangeID: ExchangeID {
        switch self {
        case let .begin(id, _, _, _): return id
        case let .chunk(id, _, _, _, _): return id
        case let .complete(id, _): return id
        }
    }

    /// Bytes of bodies and chunk data the event carries (what pending events hold in memory).
    var payloadBytes: Int {
        switch self {
        case let .begin(_, _, _, start): return start.requestBody?.count ?? 0
        case let .chunk(_, _, _, _, data): return data.count
        case let .complete(_, result): return result.responseBody?.count ?? 0
        }
    }
}

/// The journal's file format: a sequence of frames, each
///
///     u32 length of the payload (little-endian) | u32 CRC-32 of the payload | payload
///
/// and a payload is a kind byte followed by the event's fields in a fixed order: integers as
/// 8 little-endian bytes, strings and byte arrays as a u32 length and their bytes (length
/// 0xFFFFFFFF for nil). A frame is written with one `write()`, so a crash leaves at most one
/// torn frame, at the end; `decode` stops there.
enum JournalCodec {
    static let headerSize = 8
    /// Larger payloads are refused on decode as corrupt (bodies are capped far below this).
    static let maxPayload = 1 << 30

    static func frame(_ event: JournalEvent) -> [UInt8] {
        var writer = Writer()
        writer.bytes.reserveCapacity(256 + event.payloadBytes)
        writer.bytes.append(contentsOf: [0, 0, 0, 0, 0, 0, 0, 0])
        switch event {
        case let .begin(id, sequence, owner, start):
            writer.u8(1)
            writer.string(id)
            writer.int(sequence)
            writer.string(owner)
            writer.string(start.sessionID)
            writer.int(SQLTime.micros(start.time))
            for field in [start.verb, start.apiGroup, start.resource, start.subresource, start.namespace, start.name,
                          start.httpMethod, start.path, start.query] {
                writer.string(field)
            }
            writer.optionalBytes(start.requestBody)
            writer.int(start.requestBytes)
            writer.u8(start.truncated ? 1 : 0)
            for field in [start.approvalID, start.kubectlCommand, start.kubectlSession, start.userAgent] {
                writer.optionalBytes(field.map { Array($0.utf8) })
            }
        case let .chunk(exchangeID, sequence, atMicros, channel, data):
            writer.u8(2)
            writer.string(exchangeID)
            writer.int(sequence)
            writer.int(atMicros)
            writer.string(channel)
            writer.optionalBytes(data)
        case let .complete(exchangeID, result):
            writer.u8(3)
            writer.string(exchangeID)
            writer.int(Int64(result.statusCode))
            writer.int(SQLTime.micros(result.completedAt))
            writer.int(Int64(result.latencyMs.bitPattern))
            writer.optionalBytes(result.responseBody)
            writer.int(result.responseBytes)
            writer.u8(result.truncated ? 1 : 0)
            writer.optionalBytes(result.approvalID.map { Array($0.utf8) })
            writer.string(result.state.rawValue)
        }
        let length = writer.bytes.count - headerSize
        let crc = writer.bytes.withUnsafeBufferPointer { buffer in
            UInt32(crc32(0, buffer.baseAddress! + headerSize, UInt32(length)))
        }
        writer.put(UInt32(length), at: 0)
        writer.put(crc, at: 4)
        return writer.bytes
    }

    /// The events of a journal file, in order, up to the first frame that is torn or fails
    /// its checksum; `intact` is false when such a frame (and whatever follows) was dropped.
    static func decode(_ bytes: [UInt8]) -> (events: [JournalEvent], intact: Bool) {
        var events: [JournalEvent] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= headerSize else { return (events, false) }
            let length = Int(Reader.u32(bytes, offset))
            let crc = Reader.u32(bytes, offset + 4)
            let start = offset + headerSize
            guard length <= maxPayload, bytes.count - start >= length else { return (events, false) }
            let actual = bytes.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress! + start, UInt32(length))) }
            guard actual == crc else { return (events, false) }
            var reader = Reader(bytes: bytes, offset: start, end: start + length)
            guard let event = reader.event() else { return (events, false) }
            events.append(event)
            offset = start + length
        }
        return (events, true)
    }

    private struct Writer {
        var bytes: [UInt8] = []

        mutating func u8(_ value: UInt8) { bytes.append(value) }

        mutating func u32(_ value: UInt32) {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }

        mutating func int(_ value: Int64) {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }

        mutating func string(_ value: String) {
            u32(UInt32(value.utf8.count))
            bytes.append(contentsOf: value.utf8)
        }

        mutating func optionalBytes(_ value: [UInt8]?) {
            guard let value else { return u32(UInt32.max) }
            u32(UInt32(value.count))
            bytes.append(contentsOf: value)
        }

        mutating func put(_ value: UInt32, at index: Int) {
            withUnsafeBytes(of: value.littleEndian) { raw in
                for (i, byte) in raw.enumerated() { bytes[index + i] = byte }
            }
        }
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset: Int
        let end: Int

        static func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
            UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }

        mutating func u8() -> UInt8? {
            guard offset < end else { return nil }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func u32() -> UInt32? {
            guard end - offset >= 4 else { return nil }
            defer { offset += 4 }
            return Self.u32(bytes, offset)
        }

        mutating func int() -> Int64? {
            guard end - offset >= 8 else { return nil }
            var value: UInt64 = 0
            for i in 0..<8 { value |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
            offset += 8
            return Int64(bitPattern: value)
        }

        /// nil when the frame ends early; `.some(nil)` for a stored nil.
        mutating func optionalBytes() -> [UInt8]?? {
            guard let length = u32() else { return nil }
            if length == UInt32.max { return .some(nil) }
            guard end - offset >= Int(length) else { return nil }
            defer { offset += Int(length) }
            return .some(Array(bytes[offset..<offset + Int(length)]))
        }

        mutating func string() -> String? {
            guard case let .some(.some(raw)) = optionalBytes() else { return nil }
            return String(decoding: raw, as: UTF8.self)
        }

        mutating func optionalString() -> String?? {
            guard let raw = optionalBytes() else { return nil }
            return .some(raw.map { String(decoding: $0, as: UTF8.self) })
        }

        mutating func event() -> JournalEvent? {
            switch u8() {
            case 1:
                guard let id = string(), let sequence = int(), let owner = string(), let session = string(),
                      let time = int() else { return nil }
                var fields: [String] = []
                for _ in 0..<9 {
                    guard let field = string() else { return nil }
                    fields.append(field)
                }
                guard let body = optionalBytes(), let requestBytes = int(), let truncated = u8(),
                      let approval = optionalString(), let command = optionalString(),
                      let kubectlSession = optionalString(), let agent = optionalString() else { return nil }
                let start = ExchangeStart(
                    sessionID: session, time: SQLTime.date(time), verb: fields[0], apiGroup: fields[1],
                    resource: fields[2], subresource: fields[3], namespace: fields[4], name: fields[5],
                    httpMethod: fields[6], path: fields[7], query: fields[8], requestBody: body,
                    requestBytes: requestBytes, truncated: truncated == 1, approvalID: approval,
                    kubectlCommand: command, kubectlSession: kubectlSession, userAgent: agent)
                return .begin(id: id, sequence: sequence, owner: owner, start: start)
            case 2:
                guard let id = string(), let sequence = int(), let at = int(), let channel = string(),
                      case let .some(.some(data)) = optionalBytes() else { return nil }
                return .chunk(exchangeID: id, sequence: sequence, atMicros: at, channel: channel, data: data)
            case 3:
                guard let id = string(), let status = int(), let completed = int(), let latency = int(),
                      let body = optionalBytes(), let responseBytes = int(), let truncated = u8(),
                      let approval = optionalString(), let stateName = string(),
                      let state = ExchangeState(rawValue: stateName) else { return nil }
                let result = ExchangeResult(
                    statusCode: Int(status), completedAt: SQLTime.date(completed),
                    latencyMs: Double(bitPattern: UInt64(bitPattern: latency)), responseBody: body,
                    responseBytes: responseBytes, truncated: truncated == 1, approvalID: approval, state: state)
                return .complete(exchangeID: id, result: result)
            default:
                return nil
            }
        }
    }
}
