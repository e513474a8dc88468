import ArgumentParser
import Foundation
import Gateway
import KubeCore

/// `agentgate sessions list|show|replay`: reads recorded sessions from the gateway's admin API.
struct SessionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessions",
        abstract: "Search, show and replay recorded agent sessions, and audit who read them (through the gateway's admin API).",
        subcommands: [List.self, Show.self, Replay.self, Reads.self]
    )

    /// `name` prints one id per line (for scripts: `agentgate sessions replay "$(agentgate sessions list -o name | head -1)"`).
    enum Output: String, ExpressibleByArgument { case table, json, name }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List sessions, most recent first.")
        @OptionGroup var target: AdminTarget
        @Option(help: "NAMESPACE/NAME of the AgentConnection.") var connection: String?
        @Option(help: "Agent subject.") var subject: String?
        @Option(help: "Model name.") var model: String?
        @Option(help: "Active since (RFC 3339).") var since: String?
        @Option(help: "Active until (RFC 3339).") var until: String?
        @Option(help: "With an exchange of this verb.") var verb: String?
        @Option(help: "With an exchange on this resource.") var resource: String?
        @Option(help: "With an exchange in this namespace.") var namespace: String?
        @Option(help: "With an exchange on this object name.") var name: String?
        @Option(name: .shortAndLong, help: "table, json or name (ids only, most recent first).") var output: Output = .table

        func run() async throws {
            var query: [(String, String)] = []
            for (key, value) in [("connection", connection), ("subject", subject), ("model", model), ("since", since),
                                 ("until", until), ("verb", verb), ("resource", resource), ("namespace", namespace), ("name", name)] {
                if let value { query.append((key, value)) }
            }
            let result = try await target.client().listSessions(query)
            if output == .json { print(result.prettyPrinted()); return }
            if output == .name {
                for s in result["items"]?.arrayValue ?? [] { print(s["id"]?.stringValue ?? "") }
                return
            }
            var rows = [["ID", "CONNECTION", "SUBJECT", "MODEL", "EXCHANGES", "STARTED", "LAST ACTIVITY"]]
            for s in result["items"]?.arrayValue ?? [] {
                rows.append([s["id"]?.stringValue ?? "", s["connection"]?.stringValue ?? "", s["subject"]?.stringValue ?? "",
                             s["model"]?.stringValue ?? "-", s["exchangeCount"].map { $0.serializedString() } ?? "0",
                             s["startedAt"]?.stringValue ?? "", s["lastActivity"]?.stringValue ?? ""])
            }
            print(table(rows))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one session and its exchanges.")
        @OptionGroup var target: AdminTarget
        @Argument(help: "Session ID.") var id: String
        @Option(name: .shortAndLong, help: "table or json.") var output: Output = .table

        func run() async throws {
            let detail = try await target.client().session(id: id)
            if output == .json { print(detail.prettyPrinted()); return }
            print("Session \(id)  connection=\(detail["connection"]?.stringValue ?? "")  subject=\(detail["subject"]?.stringValue ?? "")  model=\(detail["model"]?.stringValue ?? "-")")
            var rows = [["#", "TIME", "VERB", "RESOURCE", "NAMESPACE", "NAME", "CODE", "LATENCY", "STATE", "COMMAND"]]
            for e in detail["exchanges"]?.arrayValue ?? [] {
                let resource = [e["resource"]?.stringValue ?? "", e["subresource"]?.stringValue ?? ""].filter { !$0.isEmpty }.joined(separator: "/")
                rows.append([e["sequence"].map { $0.serializedString() } ?? "", e["time"]?.stringValue ?? "", e["verb"]?.stringValue ?? "",
                             resource.isEmpty ? e["path"]?.stringValue ?? "" : resource, e["namespace"]?.stringValue ?? "",
                             e["name"]?.stringValue ?? "", e["statusCode"].map { $0.serializedString() } ?? "-",
                             e["latencyMs"]?.doubleValue.map { String(format: "%.1fms", $0) } ?? "-", e["state"]?.stringValue ?? "",
                             e["kubectlCommand"]?.stringValue ?? ""])
            }
            print(table(rows))
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replay a session: every request and the (masked) answer the agent saw, in order; exec and attach streams play in the terminal at their recorded pace.",
            discussion: """
                --format asciicast writes one exec or attach stream (the first, or --exchange N) as asciicast v2, \
                for asciinema and other players: agentgate sessions replay ID --format asciicast > session.cast
                """)
        enum Format: String, ExpressibleByArgument, CaseIterable { case text, asciicast }

        @OptionGroup var target: AdminTarget
        @Argument(help: "Session ID.") var id: String
        @Option(help: "Playback speed of exec/attach streams: 2 is twice as fast, 0 prints them at once.") var speed: Double = 1
        @Option(help: "text (the session, streams played in the terminal) or asciicast (one stream as asciicast v2).") var format: Format = .text
        @Option(help: "With --format asciicast: the exchange sequence number of the stream to export.") var exchange: Int64?

        func validate() throws {
            guard speed >= 0 else { throw ValidationError("--speed \(speed): must be 0 or more") }
        }

        func run() async throws {
            let client = try target.client()
            let detail = try await client.session(id: id)
            let exchanges = detail["exchanges"]?.arrayValue ?? []
            if format == .asciicast {
                let streams = exchanges.filter { e in
                    ["exec", "attach"].contains(e["subresource"]?.stringValue ?? "") && (e["streamChunkCount"]?.intValue ?? 0) > 0
                        && (exchange == nil || e["sequence"]?.intValue == exchange)
                }
                guard let e = streams.first, let exchangeID = e["id"]?.stringValue else {
                    throw ValidationError(exchange.map { "session \(id) has no recorded exec or attach stream with sequence \($0)" }
                        ?? "session \(id) has no recorded exec or attach stream")
                }
                let recording = TerminalRecording(adminChunks: try await client.chunks(exchangeID: exchangeID))
                let title = "\(e["kubectlCommand"]?.stringValue ?? "kubectl \(e["subresource"]?.stringValue ?? "exec")") \(e["namespace"]?.stringValue ?? "")/\(e["name"]?.stringValue ?? "")"
                FileHandle.standardOutput.write(Data(recording.asciicast(title: title).utf8))
                return
            }
            for e in exchanges {
                let query = e["query"]?.stringValue ?? ""
                print("── #\(e["sequence"].map { $0.serializedString() } ?? "") \(e["time"]?.stringValue ?? "") \(e["kubectlCommand"]?.stringValue ?? "")")
                print("> \(e["method"]?.stringValue ?? "") \(e["path"]?.stringValue ?? "")\(query.isEmpty ? "" : "?" + query)")
                if let body = e["requestBody"]?.stringValue { print(body) }
                print("< \(e["statusCode"].map { $0.serializedString() } ?? "(no answer)") [\(e["state"]?.stringValue ?? "")]")
                if let body = e["responseBody"]?.stringValue { print(body) }
                guard let count = e["streamChunkCount"]?.intValue, count > 0, let exchangeID = e["id"]?.stringValue else { continue }
                let chunks = try await client.chunks(exchangeID: exchangeID)
                if ["exec", "attach"].contains(e["subresource"]?.stringValue ?? "") {
                    fflush(stdout)  // print's buffer, before writing past it
                    try await TerminalRecording(adminChunks: chunks).play(speed: speed) { bytes in
                        FileHandle.standardOutput.write(Data(bytes))
                    }
                    print()
                    continue
                }
                for chunk in chunks["items"]?.arrayValue ?? [] {
                    print("  [\(chunk["time"]?.stringValue ?? "") \(chunk["channel"]?.stringValue ?? "")] \(chunk["data"]?.stringValue ?? "<binary>")", terminator: "")
                }
                print()
            }
        }
    }
}

extension SessionsCommand {
    /// `agentgate sessions reads`: the recording-read audit (admin role).
    struct Reads: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show who read which recording, when and from where (the admin role's audit), most recent first.",
            discussion: "Reads of one target by one viewer from one address within 5 minutes share a row; COUNT says how many.")
        @OptionGroup var target: AdminTarget
        @Option(help: "Only reads of this session.") var session: String?
        @Option(help: "Only reads by this viewer (an OIDC subject, or admin-token).") var viewer: String?
        @Option(help: "At most this many rows.") var limit: Int?
        @Option(name: .shortAndLong, help: "table or json.") var output: Output = .table

        func validate() throws {
            if let limit, limit <= 0 { throw ValidationError("--limit \(limit): must be a positive number") }
        }

        func run() async throws {
            var query: [(String, String)] = []
            if let session { query.append(("session", session)) }
            if let viewer { query.append(("viewer", viewer)) }
            if let limit { query.append(("limit", String(limit))) }
            let result = try await target.client().listReads(query)
            if output == .json { print(result.prettyPrinted()); return }
            var rows = [["LAST READ", "VIEWER", "ACTION", "SESSION", "EXCHANGE", "ADDRESS", "COUNT", "FIRST READ"]]
            for r in result["items"]?.arrayValue ?? [] {
                func field(_ key: String) -> String { r[key]?.stringValue ?? "-" }
                rows.append([field("lastAt"), field("viewer"), field("action"), field("sessionID"), field("exchangeID"),
                             field("address"), r["count"].map { $0.serializedString() } ?? "1", field("firstAt")])
            }
            print(table(rows))
        }
    }
}

func table(_ rows: [[String]]) -> String {
    guard let header = rows.first else { return "" }
    var widths = header.map(\.count)
    for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
    return rows.map { row in
        row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "   ")
    }.joined(separator: "\n")
}
