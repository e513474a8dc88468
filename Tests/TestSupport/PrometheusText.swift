import Foundation

/// A strict reader of the Prometheus text exposition format (0.0.4), enough to check what a
/// scrape returns: every sample line must parse, `# TYPE` must come before a metric's samples.
public struct PrometheusText {
    public struct Sample {
        public var name: String
        public var labels: [String: String]
        public var value: Double
    }

    public var samples: [Sample] = []
    public var types: [String: String] = [:]

    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    public static func parse(_ text: String) throws -> PrometheusText {
        var result = PrometheusText()
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            let line = String(raw)
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4 else { throw ParseError(description: "line \(number + 1): bad TYPE: \(line)") }
                result.types[String(parts[2])] = String(parts[3])
                continue
            }
            if line.hasPrefix("#") { continue }
            var name = ""
            var labels: [String: String] = [:]
            var rest = Substring(line)
            if let brace = line.firstIndex(of: "{") {
                name = String(line[..<brace])
                guard let close = line.lastIndex(of: "}") else { throw ParseError(description: "line \(number + 1): unclosed labels: \(line)") }
                let body = line[line.index(after: brace)..<close]
                var cursor = body.startIndex
                while cursor < body.endIndex {
                    guard let eq = body[cursor...].firstIndex(of: "="), body[body.index(after: eq)] == "\"" else {
                        throw ParseError(description: "line \(number + 1): bad label: \(line)")
                    }
                    let key = String(body[cursor..<eq]).trimmingCharacters(in: CharacterSet(charactersIn: ", "))
                    var valueIndex = body.index(eq, offsetBy: 2)
                    var value = ""
                    while valueIndex < body.endIndex, body[valueIndex] != "\"" {
                        if body[valueIndex] == "\\" { valueIndex = body.index(after: valueIndex) }
                        value.append(body[valueIndex])
                        valueIndex = body.index(after: valueIndex)
                    }
                    labels[key] = value
                    cursor = body.index(after: valueIndex)
                    if cursor < body.endIndex, body[cursor] == "," { cursor = body.index(after: cursor) }
                }
                rest = line[line.index(after: close)...]
            } else {
                guard let space = line.firstIndex(of: " ") else { throw ParseError(description: "line \(number + 1): no value: \(line)") }
                name = String(line[..<space])
                rest = line[space...]
            }
            let valueText = rest.trimmingCharacters(in: .whitespaces).split(separator: " ").first.map(String.init) ?? ""
            guard let value = Double(valueText) ?? (valueText == "+Inf" ? .infinity : nil) else {
                throw ParseError(description: "line \(number + 1): bad value \(valueText): \(line)")
            }
            let family = ["_bucket", "_sum", "_count"].reduce(name) { $0.hasSuffix($1) ? String($0.dropLast($1.count)) : $0 }
            guard result.types[name] != nil || result.types[family] != nil else {
                throw ParseError(description: "line \(number + 1): sample of \(name) before its # TYPE")
            }
            result.samples.append(Sample(name: name, labels: labels, value: value))
        }
        return result
    }

    /// The value of the sample named `name` whose labels include `labels`.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { sample in sample.name == name && labels.allSatisfy { key, value in sample.labels[key] == value } }?.value
    }
}
