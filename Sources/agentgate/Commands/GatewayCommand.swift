import ArgumentParser
import Foundation
import Gateway
import KubeCore
import HTTPServing

/// `agentgate gateway`: the data path (see Sources/Gateway). Flags as DESIGN.md lists them.
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Run the gateway: an OIDC-authenticated, recorded, masked proxy to the Kubernetes API.",
        discussion: """
            Agents reach a connection at https://HOST:PORT/c/<namespace>/<name> with an OIDC \
            bearer token. Connections and their ServiceAccount credentials are read from the \
            operator's Secrets in --gateway-namespace and applied without restart. Exchanges \
            are recorded in --store (SQLite by default, PostgreSQL for several replicas) \
            before they are forwarded; the admin API (--admin-listen) serves `agentgate \
            sessions`, `agentgate approvals` and the web page.

            The admin API admits people by OIDC: --admin-auth-file names the issuers and the \
            groups of each role (reviewer reads recordings, approver also decides approvals, \
            admin also reads the audit of who read which recording). The break-glass token \
            (DATA-DIR/admin-token, or --admin-token-file) acts as admin, each use logged at \
            warning and audited; --no-admin-token turns it off. Off loopback the admin \
            listener serves TLS (--admin-tls-cert, --admin-tls-key).

            Requests matching an AgentConnection's spec.approval rules are held (dry-run \
            upstream first, so the approver sees what would change) until an approver \
            decides through the admin API, or the rule's timeout passes (403). Held \
            requests are announced as Events on the AgentConnection, in \
            status.pendingApprovals and to spec.approval.webhookURL. On shutdown they are \
            answered 503; replicas sharing a PostgreSQL store release each other's holds.

            --tls-cert and --tls-key are re-read when the files change (checked every 5 s); \
            new connections get the new certificate. Every 5 s at most, the gateway applies \
            status.sessions to each AgentConnection it serves (server-side apply, field \
            manager agentgate-gateway), and every 10 minutes it deletes sessions older than \
            the connection's RecordingPolicy retention.

            In-cluster configuration is used when --kubeconfig is absent and neither \
            KUBECONFIG nor ~/.kube/config exists.
            """
    )

    /// The upstream API server; its credentials only read the connection Secrets (agents'
    /// requests carry connection tokens).
    @OptionGroup var kube: KubeconfigOptions

    @OptionGroup var logging: LogOptions

    @Option(name: .long, help: "HOST:PORT for agents (plain HTTP only on loopback).")
    var listen: String = "127.0.0.1:8443"

    @Option(name: .long, help: "HOST:PORT of the admin API.")
    var adminListen: String = "127.0.0.1:8444"

    @Option(name: .long, help: "HOST:PORT serving Prometheus metrics at /metrics.")
    var metricsAddress: String?

    @Option(name: .long, help: "PEM certificate (chain) for HTTPS.")
    var tlsCert: String?

    @Option(name: .long, help: "PEM private key for HTTPS.")
    var tlsKey: String?

    @Option(name: .long, help: "Session store: sqlite:PATH[?synchronous=full][&journal=off] or postgres://USER:PASS@HOST:PORT/DB (default sqlite:DATA-DIR/sessions.db).")
    var store: String?

    @Option(name: .long, help: ArgumentHelp("File holding the --store URL (a mounted Secret), so a database password is not on the command line.",
                                            discussion: "Surrounding white space is ignored. Not together with --store."))
    var storeFile: String?

    @Option(name: .long, help: "How long start-up waits for the session store to answer before the gateway exits (Go duration, e.g. 2m).")
    var storeTimeout: String = "2m"

    @Option(name: .long, help: ArgumentHelp("File holding the admin API's break-glass bearer token, shared by every replica (a mounted Secret).",
                                            discussion: "Without it the token is DATA-DIR/admin-token, created on first start, one per replica."))
    var adminTokenFile: String?

    @Flag(name: .long, help: "Turn the break-glass admin token off: only people from --admin-auth-file's issuers (and connection approvers) get in.")
    var noAdminToken = false

    @Option(name: .long, help: ArgumentHelp("YAML file (a mounted ConfigMap) naming the admin API's OIDC issuers and the groups of the reviewer, approver and admin roles.",
                                            discussion: "Format: see AdminAuthConfig (issuers: [{issuer, audiences, groupsClaim}], roles: {reviewer, approver, admin}, login: {issuer, clientID, scopes})."))
    var adminAuthFile: String?

    @Option(name: .long, help: "PEM certificate (chain) for the admin listener's HTTPS.")
    var adminTLSCert: String?

    @Option(name: .long, help: "PEM private key for the admin listener's HTTPS.")
    var adminTLSKey: String?

    @Flag(name: .long, help: "Serve the admin API over plain HTTP on a non-loopback --admin-listen (only behind a TLS-terminating proxy).")
    var adminInsecureHTTP = false

    @Option(name: .long, help: ArgumentHelp("File with the masking key for keyed-hash replacements (at least 16 bytes, e.g. openssl rand -hex 32), shared by every replica; re-read every 10 s, so replacing it rotates the key.",
                                            discussion: "Without it the key is DATA-DIR/masking-key, stable for this replica only."))
    var maskingKeyFile: String?

    @Option(name: .long, help: "Namespace of the operator's connection Secrets.")
    var gatewayNamespace: String = "agentgate-system"

    @Option(name: .long, help: "Directory for the admin token, admin address and default SQLite store.")
    var dataDir: String = ".agentgate"

    func validate() throws {
        guard let seconds = GoDuration.parse(storeTimeout), seconds > 0 else {
            throw ValidationError("--store-timeout \(storeTimeout): not a positive duration (e.g. 30s, 2m)")
        }
        _ = seconds
        if store != nil, storeFile != nil {
            throw ValidationError("--store and --store-file name the session store twice; give one")
        }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        if (adminTLSCert == nil) != (adminTLSKey == nil) { throw ValidationError("--admin-tls-cert and --admin-tls-key go together") }
        if noAdminToken, adminTokenFile != nil {
            throw ValidationError("--admin-token-file and --no-admin-token contradict each other; give one")
        }
        if adminTLSCert == nil, !adminInsecureHTTP, let host = try? ListenAddress.parse(adminListen, flag: "--admin-listen").host,
           !ListenAddress.isLoopback(host) {
            throw ValidationError("--admin-listen \(adminListen): plain HTTP is only served on loopback; give --admin-tls-cert and --admin-tls-key (or --admin-insecure-http behind a TLS proxy)")
        }
        for (flag, value) in [("--listen", listen), ("--admin-listen", adminListen), ("--metrics-address", metricsAddress)] {
            guard let value else { continue }
            do { _ = try ListenAddress.parse(value, flag: flag) } catch { throw ValidationError("\(error)") }
        }
        // GatewayRunner refuses this too, but only once it has connected; a flag mistake is told at once.
        if tlsCert == nil, let host = try? ListenAddress.parse(listen, flag: "--listen").host,
           !["127.0.0.1", "localhost", "::1"].contains(host) {
            throw ValidationError("--listen \(listen): plain HTTP is only served on loopback; give --tls-cert and --tls-key")
        }
    }

    func run() async throws {
        try await logging.run(label: "agentgate.gateway") {
            var options = GatewayRunner.Options()
            options.kubeconfig = kube.kubeconfig
            options.context = kube.context
            options.listen = listen
            options.adminListen = adminListen
            options.metricsAddress = metricsAddress
            options.tlsCertificateFile = tlsCert
            options.tlsKeyFile = tlsKey
            options.store = try storeFile.map { try Self.readSetting($0, flag: "--store-file") } ?? store
            options.adminTokenFile = adminTokenFile
            options.adminTokenDisabled = noAdminToken
            options.adminAuthFile = adminAuthFile
            options.adminTLSCertificateFile = adminTLSCert
            options.adminTLSKeyFile = adminTLSKey
            options.adminPlainHTTPAllowed = adminInsecureHTTP
            options.storeTimeout = .milliseconds(Int64((GoDuration.parse(storeTimeout) ?? 120) * 1000))
            options.maskingKeyFile = maskingKeyFile
            options.gatewayNamespace = gatewayNamespace
            options.dataDirectory = dataDir
            // SIGTERM (a pod being stopped) or Ctrl-C: the service group drains and stops.
            options.stopsOnSignals = true
            let runner = try await GatewayRunner.start(options)
            print("gateway listening on \(listen) (port \(runner.port)); admin API on port \(runner.adminPort.map(String.init) ?? "-")")
            fflush(stdout)
            await runner.waitUntilStopped()
            await runner.stop()
        }
    }

    /// A setting read from a file (a mounted Secret): its text without surrounding white space.
    static func readSetting(_ path: String, flag: String) throws -> String {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw CLIFailure("\(flag) \(path): cannot be read: \(CLIFailure.fileReason(error) ?? "\(error)")")
        }
        let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !value.isEmpty else { throw CLIFailure("\(flag) \(path): the file is empty") }
        return value
    }
}
