import Foundation
import SPDY
import KubeCore

/// The port-forward protocol (`portforward.k8s.io`) on one SPDY connection, as the kubelet
/// serves it. For each local connection the client opens two streams with the same
/// `requestid` and `port` headers: an error stream (`streamtype: error`) it only reads,
/// then a data stream (`streamtype: data`) that carries the bytes both ways. When both
/// are open the forwarding starts; when it ends the server closes both, writing a message
/// on the error stream first if it failed.
///
/// Pods do not run here, so every TCP port a container of the pod declares
/// (`spec.containers[].ports[].containerPort`) is served by an echo service on the pod's
/// loopback: what the client sends comes back, and the service closes its side once the
/// client closes its own. Forwarding to a port no container declares fails the way a
/// kubelet reports a refused connection.
final class PortForwardSession: SPDYStreamHandler, @unchecked Sendable {
    /// The pod being forwarded to, as read when the request was admitted.
    struct Target {
        var namespace: String
        var name: String
        var uid: String
        /// TCP ports declared by the pod's containers.
        var ports: Set<Int>

        init(pod: JSONValue) {
            namespace = pod[path: ["metadata", "namespace"]]?.stringValue ?? ""
            name = pod[path: ["metadata", "name"]]?.stringValue ?? ""
            uid = pod[path: ["metadata", "uid"]]?.stringValue ?? ""
            var ports = Set<Int>()
            for container in pod[path: ["spec", "containers"]]?.arrayValue ?? [] {
                for port in container["ports"]?.arrayValue ?? [] {
                    let proto = port["protocol"]?.stringValue ?? "TCP"
                    if proto == "TCP", let number = port["containerPort"]?.intValue { ports.insert(Int(number)) }
                }
            }
            self.ports = ports
        }
    }

    enum StreamType: String {
        case error, data
    }

    /// The two streams of one forwarded connection.
    private struct Pair {
        var errorStream: UInt32?
        var dataStream: UInt32?
        var port = 0
        var forwarding = false
        /// Data that arrived before the pair was complete.
        var early: [UInt8] = []
    }

    private let target: Target
    private var pairs: [String: Pair] = [:]
    private var requestIDs: [UInt32: String] = [:]

    init(target: Target) { self.target = target }

    // MARK: SPDYStreamHandler

    /// The kubelet's checks: a valid `port` and a known `streamtype`, or the stream is reset.
    func refusal(forStreamWith headers: SPDYHeaders) -> SPDYResetStatus? {
        guard let port = headers["port"].flatMap(UInt16.init), port > 0,
              let type = headers["streamtype"], StreamType(rawValue: type) != nil else {
            return .refusedStream
        }
        return nil
    }

    func streamOpened(_ streamID: UInt32, headers: SPDYHeaders, on connection: SPDYServerConnection) {
        guard let type = headers["streamtype"].flatMap(StreamType.init), let port = headers["port"].flatMap(Int.init) else { return }
        // Clients older than the requestid header send the pair with consecutive odd ids.
        let requestID = headers["requestid"] ?? String(type == .error ? Int(streamID) : Int(streamID) - 2)
        requestIDs[streamID] = requestID
        var pair = pairs[requestID] ?? Pair()
        pair.port = port
        switch type {
        case .error:
            if pair.errorStream != nil {
                return printError(pair, "error processing stream for request \(requestID): error stream already assigned", on: connection)
            }
            pair.errorStream = streamID
        case .data:
            if pair.dataStream != nil {
                return printError(pair, "error processing stream for request \(requestID): data stream already assigned", on: connection)
            }
            pair.dataStream = streamID
        }
        pairs[requestID] = pair
        if let errorStream = pair.errorStream, let dataStream = pair.dataStream {
            startForwarding(requestID, errorStream: errorStream, dataStream: dataStream, on: connection)
        }
    }

    func streamReceived(_ streamID: UInt32, _ bytes: [UInt8], on connection: SPDYServerConnection) {
        guard let requestID = requestIDs[streamID], var pair = pairs[requestID], pair.dataStream == streamID else { return }
        if pair.forwarding {
            // The echo service.
            connection.send(bytes, on: streamID)
        } else {
            pair.early += bytes
            pairs[requestID] = pair
        }
    }

    func streamHalfClosed(_ streamID: UInt32, on connection: SPDYServerConnection) {
        // The client closed its side of the data stream: the echo service sees end of input
        // and closes too, which ends the forwarding without an error.
        guard let requestID = requestIDs[streamID], let pair = pairs[requestID], pair.dataStream == streamID,
              pair.forwarding else { return }
        endForwarding(requestID, error: nil, on: connection)
    }

    func streamReset(_ streamID: UInt32, on connection: SPDYServerConnection) {
        guard let requestID = requestIDs.removeValue(forKey: streamID), let pair = pairs[requestID] else { return }
        if pair.dataStream == streamID {
            endForwarding(requestID, error: nil, on: connection)
        } else if pair.errorStream == streamID, let data = pair.dataStream {
            connection.reset(data)
            pairs[requestID] = nil
        }
    }

    func connectionClosed(_ connection: SPDYServerConnection) {
        pairs.removeAll()
        requestIDs.removeAll()
    }

    // MARK: Forwarding

    private func startForwarding(_ requestID: String, errorStream: UInt32, dataStream: UInt32, on connection: SPDYServerConnection) {
        guard var pair = pairs[requestID] else { return }
        guard target.ports.contains(pair.port) else {
            let declared = target.ports.sorted().map(String.init).joined(separator: ", ")
            let reason = target.ports.isEmpty ? "no container of the pod declares a port"
                : "no container of the pod declares port \(pair.port) (declared: \(declared))"
            return endForwarding(requestID, error: "unable to do port forwarding: failed to connect to localhost:\(pair.port) inside the pod: connection refused: \(reason)", on: connection)
        }
        pair.forwarding = true
        let early = pair.early
        pair.early = []
        pairs[requestID] = pair
        if !early.isEmpty { connection.send(early, on: dataStream) }
    }

    /// Closes both streams, as the kubelet does when its forwarder returns; an error goes
    /// on the error stream first, worded as the kubelet words it.
    private func endForwarding(_ requestID: String, error: String?, on connection: SPDYServerConnection) {
        guard let pair = pairs.removeValue(forKey: requestID) else { return }
        if let dataStream = pair.dataStream {
            connection.finish(dataStream)
            requestIDs[dataStream] = nil
        }
        if let errorStream = pair.errorStream {
            if let error {
                let message = "error forwarding port \(pair.port) to pod \(target.name)_\(target.namespace), uid \(target.uid): \(error)"
                connection.send(Array(message.utf8), on: errorStream, fin: true)
            } else {
                connection.finish(errorStream)
            }
            requestIDs[errorStream] = nil
        }
    }

    private func printError(_ pair: Pair, _ message: String, on connection: SPDYServerConnection) {
        if let errorStream = pair.errorStream { connection.send(Array(message.utf8), on: errorStream) }
    }
}
