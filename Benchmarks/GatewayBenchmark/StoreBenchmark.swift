import Foundation
import SessionStore

/// The recorder alone: what one small GET's record costs, without HTTP. Each exchange is the
/// pair the gateway writes (`beginExchange` before forwarding, `completeExchange` with a
/// 1 KiB masked answer), from 1 and from 64 concurrent callers; on SQLite with its recording
/// journal (the default) and without (`journal=off`, a commit per record).
/// `GatewayBenchmark SECONDS store [POSTGRES-URL]` runs only this.
enum StoreBenchmark {
    struct Figures {
        var callers: Int
        var exchanges: Int
        var seconds: Double
        var cpuSeconds: Double
    }

    static func run(url: String, seconds: Int, callers: Int, cpu: () -> Double) async throws -> Figures {
        // As the gateway counts its requests: with one caller, that request is the only one in flight.
        let load = RequestLoad()
        var options = SessionStoreOptions()
        options.requestLoad = load
        let store = try await SessionStores.open(url: url, options: options)
        let session = try await store.resolveSession(
            SessionKey(connection: ConnectionRef(namespace: "default", name: "bench"), subject: "agent-1", tokenKey: "bench"),
            identity: AgentIdentityInfo(model: "bench"), at: Date())
        let answer = [UInt8](repeating: UInt8(ascii: "a"), count: 1024)
        let deadline = Date().addingTimeInterval(Double(seconds))
        let cpuBefore = cpu()
        let started = Date()
        @Sendable func exchanges() async throws -> Int {
            var count = 0
            while Date() < deadline {
                let exchange = try await store.beginExchange(ExchangeStart(
                    sessionID: session.id, time: Date(), verb: "get", resource: "configmaps", namespace: "default",
                    name: "small", httpMethod: "GET", path: "/api/v1/namespaces/default/configmaps/small",
                    userAgent: "wrk"))
                try await store.completeExchange(exchange.id, result: ExchangeResult(
                    statusCode: 200, completedAt: Date(), latencyMs: 0.3, responseBody: answer,
                    responseBytes: Int64(answer.count), truncated: false, state: .complete))
                count += 1
            }
            return count
        }
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<callers {
                group.addTask {
                    load.enter()
                    defer { load.leave() }
                    return try await exchanges()
                }
            }
            return try await group.reduce(0, +)
        }
        // What a journal holds is counted once it is in the database.
        try await store.flush()
        let figures = Figures(callers: callers, exchanges: total, seconds: Date().timeIntervalSince(started),
                              cpuSeconds: cpu() - cpuBefore)
        try await store.close()
        return figures
    }

    static func report(_ figures: Figures, backend: String) -> String {
        let rate = Double(figures.exchanges) / figures.seconds
        let cpuMicros = figures.cpuSeconds * 1_000_000 / Double(max(1, figures.exchanges))
        return "recorder alone, \(backend), \(figures.callers) caller(s): \(Int(rate)) exchanges/s, \(String(format: "%.1f", cpuMicros)) µs CPU per exchange (begin + complete)"
    }
}
