import Foundation

/// Waits for SIGINT or SIGTERM.
enum SignalWaiter {
    static func waitForInterrupt() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            signal(SIGINT, SIG_IGN)
            signal(SIGTERM, SIG_IGN)
            let queue = DispatchQueue(label: "agentgate.signals")
            var sources: [DispatchSourceSignal] = []
            var resumed = false
            for sig in [SIGINT, SIGTERM] {
                let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
                source.setEventHandler {
                    if resumed { return }
                    resumed = true
                    sources.forEach { $0.cancel() }
                    continuation.resume()
                }
                source.resume()
                sources.append(source)
            }
        }
    }
}
