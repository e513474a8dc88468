import Foundation
import KubeCore
import Logging

/// A swift-log handler that writes one JSON object per line to standard error, for log
/// collectors (`--log-format json`).
///
/// Contract: each line is `{"time":…,"level":…,"label":…,"message":…, <metadata>}` with
/// `time` in RFC 3339 (UTC, milliseconds), `level` as swift-log names it (`info`,
/// `warning`…), and the metadata flattened to top-level keys: a nested dictionary becomes
/// `outer.inner`, a list stays a JSON list, anything else a string. A metadata key that
/// collides with one of the four fixed keys is written as `metadata.<key>`. An error logged
/// with the event is `error`. Each line is one write, so concurrent loggers do not interleave
/// lines (up to the pipe's atomic size, 4 KiB).
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        if let error = event.error { merged["error"] = .string("\(error)") }
        let line = Self.line(time: Date(), level: event.level, label: label, message: event.message.description, metadata: merged)
        try? FileHandle.standardError.write(contentsOf: Data(line.utf8))  // a closed stderr loses the line, not the process
    }

    private static let fixedKeys: Set<String> = ["time", "level", "label", "message"]
    private static let timeFormat = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)

    /// One log line, newline included. The fixed keys come first, then metadata sorted by key.
    static func line(time: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var fields: [(String, JSONValue)] = [
            ("time", .string(timeFormat.format(time))), ("level", .string(level.rawValue)),
            ("label", .string(label)), ("message", .string(message)),
        ]
        var flat: [String: JSONValue] = [:]
        flatten(metadata, prefix: "", into: &flat)
        for key in flat.keys.sorted() {
            fields.append((fixedKeys.contains(key) ? "metadata.\(key)" : key, flat[key]!))
        }
        let members = fields.map { key, value in "\(JSONValue.string(key).serializedString()):\(value.serializedString())" }
        return "{" + members.joined(separator: ",") + "}\n"
    }

    private static func flatten(_ metadata: Logger.Metadata, prefix: String, into flat: inout [String: JSONValue]) {
        for (key, value) in metadata {
            let name = prefix + key
            switch value {
            case .dictionary(let nested): flatten(nested, prefix: name + ".", into: &flat)
            default: flat[name] = json(value)
            }
        }
    }

    private static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text): return .string(text)
        case .stringConvertible(let convertible): return .string(convertible.description)
        case .array(let values): return .array(values.map(json))
        case .dictionary(let nested): return .object(nested.mapValues(json))
        }
    }
}
