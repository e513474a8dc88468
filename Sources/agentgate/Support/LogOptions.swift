import ArgumentParser
import Logging

/// `--log-format` and `--log-level`, shared by the long-running commands (`operator`,
/// `gateway`, `dev`): each wraps its `run()` body in ``run(label:_:)``, which installs the
/// chosen handler for the whole process before any `Logger` is made.
struct LogOptions: ParsableArguments {
    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

    @Option(name: .long, help: "Log line format: text (for people) or json (one object per line, for log collectors).")
    var logFormat: Format = .text

    @Option(name: .long, help: "Lowest level logged: trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    /// Bootstraps logging, then runs `body`. With `--log-format json` a runtime failure is
    /// logged as one `critical` line labelled `label` (standard error stays JSON) and the
    /// process exits 1; in text it is rethrown, for the `Error: …` line (``CLIFailure``). Usage
    /// errors pass through in both.
    func run(label: String, _ body: () async throws -> Void) async throws {
        bootstrap()
        do {
            try await body()
        } catch where logFormat == .json && !CLIFailure.isUsageOrExit(error) {
            Logger(label: label).critical("\(CLIFailure(describing: error))")
            throw ExitCode.failure
        }
    }

    /// Points swift-log at standard error in the chosen format and level.
    private func bootstrap() {
        let level = logLevel
        switch logFormat {
        case .text:
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        case .json:
            LoggingSystem.bootstrap { label in
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}

/// From its raw value; a wrong one is refused naming the flag and listing every level.
extension Logger.Level: @retroactive ExpressibleByArgument {}
