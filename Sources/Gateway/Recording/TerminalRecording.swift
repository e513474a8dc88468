import Foundation
import KubeCore
import SessionStore

/// The terminal side of a recorded exec or attach stream: what the agent's terminal showed,
/// when, and at what size — for `agentgate sessions replay` and asciicast v2 export.
///
/// Contract: built from an exchange's stream chunks (``StreamChunk`` from the store, or the
/// admin API's JSON). Output is `stdout` and `stderr` in recorded order (already masked when
/// recorded); `resize` frames (`{"Width":W,"Height":H}`) set the size, the first one the
/// initial size (80×24 without one). Offsets are seconds since the first chunk. Other
/// channels (stdin, status, port-forward bytes) are not terminal output and are left out.
public struct TerminalRecording: Sendable, Equatable {
    public enum Event: Sendable, Equatable {
        case output([UInt8])
        case resize(width: Int, height: Int)
    }

    public struct Frame: Sendable, Equatable {
        public var offset: Double
        public var event: Event
    }

    public var width = 80
    public var height = 24
    public var frames: [Frame] = []
    /// When the stream began (the first chunk).
    public var start: Date?

    public init(chunks: [(time: Date, channel: String, data: [UInt8])]) {
        guard let first = chunks.first?.time else { return }
        start = first
        var sized = false
        for chunk in chunks {
            let offset = max(0, chunk.time.timeIntervalSince(first))
            switch chunk.channel {
            case "stdout", "stderr":
                frames.append(Frame(offset: offset, event: .output(chunk.data)))
            case "resize":
                guard let size = try? JSONValue(parsing: chunk.data), let w = size["Width"]?.intValue, let h = size["Height"]?.intValue,
                      w > 0, h > 0 else { continue }
                if !sized, !frames.contains(where: { if case .output = $0.event { true } else { false } }) {
                    width = Int(w)
                    height = Int(h)
                    sized = true
                } else {
                    frames.append(Frame(offset: offset, event: .resize(width: Int(w), height: Int(h))))
                }
            default:
                continue
            }
        }
    }

    public init(_ chunks: [StreamChunk]) {
        self.init(chunks: chunks.map { ($0.time, $0.channel, $0.data) })
    }

    /// From `GET /api/v1/exchanges/{id}/chunks` (`items` with `time`, `channel`, `data` or `dataBase64`).
    public init(adminChunks: JSONValue) {
        let chunks: [(time: Date, channel: String, data: [UInt8])] = (adminChunks["items"]?.arrayValue ?? []).compactMap { item in
            guard let time = item["time"]?.stringValue.flatMap(AdminJSON.parseDate), let channel = item["channel"]?.stringValue else { return nil }
            if let text = item["data"]?.stringValue { return (time, channel, Array(text.utf8)) }
            if let encoded = item["dataBase64"]?.stringValue, let data = Data(base64Encoded: encoded) { return (time, channel, Array(data)) }
            return nil
        }
        self.init(chunks: chunks)
    }

    /// Everything the terminal showed, in order.
    public var output: [UInt8] {
        frames.flatMap { frame -> [UInt8] in if case .output(let bytes) = frame.event { bytes } else { [] } }
    }

    /// asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/): a JSON header line
    /// (`version` 2, `width`, `height`, `timestamp`, `title`), then one `[time, "o", text]`
    /// line per output frame and `[time, "r", "WxH"]` per resize.
    public func asciicast(title: String? = nil) -> String {
        var header: [String: JSONValue] = ["version": 2, "width": .int(Int64(width)), "height": .int(Int64(height))]
        if let start { header["timestamp"] = .int(Int64(start.timeIntervalSince1970)) }
        if let title { header["title"] = .string(title) }
        var lines = [JSONValue.object(header).serializedString()]
        for frame in frames {
            let time = JSONValue.double((frame.offset * 1_000_000).rounded() / 1_000_000)
            switch frame.event {
            case .output(let bytes):
                lines.append(JSONValue.array([time, "o", .string(String(decoding: bytes, as: UTF8.self))]).serializedString())
            case .resize(let w, let h):
                lines.append(JSONValue.array([time, "r", .string("\(w)x\(h)")]).serializedString())
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes the output at its recorded pace, `speed` times faster (0: no waiting).
    public func play(speed: Double = 1, write: (_ bytes: [UInt8]) -> Void) async throws {
        var clock = 0.0
        for frame in frames {
            guard case .output(let bytes) = frame.event else { continue }
            if speed > 0, frame.offset > clock {
                try await Task.sleep(for: .seconds((frame.offset - clock) / speed))
            }
            clock = max(clock, frame.offset)
            write(bytes)
        }
    }
}
