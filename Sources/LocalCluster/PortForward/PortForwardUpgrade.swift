import HTTPServing
import Foundation
import SPDY
import KubeCore

/// `pods/portforward` upgrades, both ways kubectl 1.32 tries them:
/// 1. `GET` with `Upgrade: websocket` and subprotocol `SPDY/3.1+portforward.k8s.io`: SPDY
///    frames tunnelled in WebSocket binary messages (the PortForwardWebsockets feature);
/// 2. when that fails, `POST` with `Upgrade: SPDY/3.1` and
///    `X-Stream-Protocol-Version: portforward.k8s.io`: SPDY on the raw connection.
/// Either is accepted only when the request would be allowed as a normal one
/// (authenticated; RBAC `create` on `pods/portforward`; the pod exists). A declined request
/// reaches the normal handler, which answers with the `metav1.Status` error.
enum PortForwardProtocol {
    static let name = "portforward.k8s.io"
    static let webSocketTunnel = "SPDY/3.1+portforward.k8s.io"

    /// The pod a port-forward request names, if the request is admitted.
    static func target(_ request: HTTPRequest, server: APIServer) -> PortForwardSession.Target? {
        guard let admitted = try? server.admit(request),
              admitted.info.resource == "pods", admitted.info.subresource == "portforward",
              let pod = server.store.get(admitted.definition.key, namespace: admitted.info.namespace, name: admitted.info.name)?.value()
        else { return nil }
        return PortForwardSession.Target(pod: pod)
    }
}

/// Dispatches WebSocket upgrades on the pod subresources by the subprotocols offered.
struct PodStreamUpgrades: WebSocketService {
    let server: APIServer

    func decide(_ request: HTTPRequest) async -> UpgradeDecision<any WebSocketSession> {
        let offered = (request.header("Sec-WebSocket-Protocol") ?? "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if offered.contains(PortForwardProtocol.webSocketTunnel) {
            guard let target = PortForwardProtocol.target(request, server: server) else { return .decline }
            return .accept(headers: [("Sec-WebSocket-Protocol", PortForwardProtocol.webSocketTunnel)],
                           session: TunnelledPortForward(target: target))
        }
        guard let (subprotocol, session) = ExecUpgrades(server: server).accept(request) else { return .decline }
        return .accept(headers: [("Sec-WebSocket-Protocol", subprotocol)], session: session)
    }
}

/// `Upgrade: SPDY/3.1` on the pod subresources: exec and attach (``SPDYExec``), port-forward.
struct PodSPDYUpgrades: ByteStreamUpgradeService {
    let server: APIServer
    var upgradeProtocol: String { "SPDY/3.1" }

    func decide(_ request: HTTPRequest) async -> UpgradeDecision<any ByteStreamSession> {
        if let admitted = try? server.admit(request), ["exec", "attach"].contains(admitted.info.subresource) {
            guard let (name, version) = SPDYExec.negotiate(request),
                  let options = ExecUpgrades(server: server).options(request, protocolVersion: version) else { return .decline }
            return .accept(headers: [("X-Stream-Protocol-Version", name)], session: SPDYExec(options: options))
        }
        // kube's httpstream.Handshake: a client that names protocols must name ours.
        let offered = request.headers["X-Stream-Protocol-Version"]
            .flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        guard offered.isEmpty || offered.contains(PortForwardProtocol.name),
              let target = PortForwardProtocol.target(request, server: server) else { return .decline }
        return .accept(headers: [("X-Stream-Protocol-Version", PortForwardProtocol.name)], session: RawPortForward(target: target))
    }
}

/// Port-forward whose SPDY bytes travel in WebSocket binary messages.
final class TunnelledPortForward: WebSocketSession, @unchecked Sendable {
    private let session: PortForwardSession
    private var spdy: SPDYServerConnection?

    init(target: PortForwardSession.Target) { session = PortForwardSession(target: target) }

    func start(_ connection: WebSocketConnection) {
        let transport = SPDYServerConnection.Transport(send: { connection.send($0) }, close: { connection.close() })
        spdy = try? SPDYServerConnection(transport: transport, handler: session)
        if spdy == nil { connection.close() }
    }

    func receive(_ message: [UInt8]) { spdy?.receive(message) }
    func closed() { spdy?.closed() }
}

/// Port-forward on the raw upgraded connection.
final class RawPortForward: ByteStreamSession, @unchecked Sendable {
    private let session: PortForwardSession
    private var spdy: SPDYServerConnection?

    init(target: PortForwardSession.Target) { session = PortForwardSession(target: target) }

    func start(_ connection: ByteStreamConnection) {
        let transport = SPDYServerConnection.Transport(send: { connection.send($0) }, close: { connection.close() })
        spdy = try? SPDYServerConnection(transport: transport, handler: session)
        if spdy == nil { connection.close() }
    }

    func receive(_ bytes: [UInt8]) { spdy?.receive(bytes) }
    func closed() { spdy?.closed() }
}
