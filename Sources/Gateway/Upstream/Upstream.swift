import KubeClient
import NIOSSL

/// The gateway's one way to the API server, built from the gateway's kubeconfig: where the
/// server is and how to trust it, the pooled client for forwarded requests and dry runs
/// (``UpstreamClient``) and the connector for upgraded ones (``UpstreamConnector``). Every
/// request carries its connection's token; the kubeconfig's own credentials are never used.
///
/// Contract: construction refuses a kubeconfig with a client certificate (it would
/// authenticate every request as the gateway itself, on top of the injected token) and
/// certificate-authority data that does not load, naming the kubeconfig's server.
struct Upstream: Sendable {
    let client: UpstreamClient
    let connector: UpstreamConnector

    init(kubeconfig upstream: KubeConfig) throws {
        var base = upstream.server
        while base.hasSuffix("/") { base.removeLast() }
        if upstream.clientCertificatePEM != nil, upstream.clientKeyPEM != nil {
            throw GatewayConfigError("\(upstream.origin): the gateway's kubeconfig uses a client certificate; the gateway must reach the API server with connection tokens only (use a kubeconfig without client-certificate-data)")
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let ca = upstream.certificateAuthorityPEM {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca))
            } catch {
                throw GatewayConfigError("\(upstream.origin): certificate-authority data cannot be loaded: \(error)")
            }
        }
        if upstream.insecureSkipTLSVerify { tls.certificateVerification = .none }
        do {
            connector = try UpstreamConnector(server: base, tls: tls)
        } catch {
            throw GatewayConfigError("\(upstream.origin): \(error)")
        }
        client = UpstreamClient(upstream: connector)
    }

    /// Closes the idle pooled connections (streams end with their exchanges).
    func shutdown() { client.shutdown() }
}
