/// The local cluster's certificate authority and serving certificate.
///
/// Contract:
/// - A self-signed CA (P-256 ECDSA, valid 10 years) signs a serving certificate for
///   `localhost`, `127.0.0.1` and `::1` (valid 1 year), the names a kubeconfig on this machine
///   points at. The kubeconfig carries `caPEM` as `certificate-authority-data`.
/// - `loadOrCreate(in:)` with a directory keeps `ca.crt`, `ca.key`, `server.crt`, `server.key`
///   (PEM; keys written 0600) so kubeconfigs written earlier stay valid across restarts. A
///   missing or expiring (under 30 days left) serving certificate is reissued from the kept CA;
///   a missing or unreadable CA key makes a new CA (and a new serving certificate).
///   `nil` keeps everything in memory.
/// - `issueClientCertificate` signs client certificates (`clientAuth`) whose CN/O are the
///   username/groups, as kube-apiserver's x509 authenticator reads them.
import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

public struct ClusterCertificateAuthority: Sendable {
    /// The CA certificate, PEM encoded (what a kubeconfig's `certificate-authority-data` holds).
    public let caPEM: String
    /// The serving certificate, PEM encoded.
    public let serverCertificatePEM: String
    /// The serving certificate's private key, PKCS#8 PEM.
    public let serverKeyPEM: String

    private let caCertificate: Certificate
    private let caKey: P256.Signing.PrivateKey

    /// The DNS names and IP addresses the serving certificate is valid for.
    public static let servingDNSNames = ["localhost"]
    public static let servingIPAddresses = ["127.0.0.1", "::1"]

    static let caValidity: TimeInterval = 10 * 365 * 86_400
    static let servingValidity: TimeInterval = 365 * 86_400
    /// Reissue a kept serving certificate when it has less than this left.
    static let renewBefore: TimeInterval = 30 * 86_400
    /// Backdating covers small clock differences between the issuer and a client.
    static let backdate: TimeInterval = 300

    private init(caCertificate: Certificate, caKey: P256.Signing.PrivateKey,
                 serverCertificate: Certificate, serverKey: P256.Signing.PrivateKey) throws {
        self.caCertificate = caCertificate
        self.caKey = caKey
        self.caPEM = try caCertificate.serializeAsPEM().pemString + "\n"
        self.serverCertificatePEM = try serverCertificate.serializeAsPEM().pemString + "\n"
        self.serverKeyPEM = serverKey.pemRepresentation + "\n"
    }

    /// Loads the CA and serving certificate from `directory`, creating what is missing
    /// (and the directory itself); `nil` generates both in memory.
    public static func loadOrCreate(in directory: URL?, now: Date = Date()) throws -> ClusterCertificateAuthority {
        guard let directory else {
            let (caCert, caKey) = try makeCA(now: now)
            let (serverCert, serverKey) = try makeServingCertificate(caCertificate: caCert, caKey: caKey, now: now)
            return try ClusterCertificateAuthority(caCertificate: caCert, caKey: caKey,
                                                   serverCertificate: serverCert, serverKey: serverKey)
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let files = DataDirFiles(directory: directory)

        var caPair: (Certificate, P256.Signing.PrivateKey)
        var caIsNew = false
        if let cert = try? Certificate(pemEncoded: files.read("ca.crt") ?? ""),
           let key = try? P256.Signing.PrivateKey(pemRepresentation: files.read("ca.key") ?? ""),
           cert.publicKey == Certificate.PublicKey(key.publicKey),
           cert.notValidAfter > now {
            caPair = (cert, key)
        } else {
            caPair = try makeCA(now: now)
            caIsNew = true
            try files.write("ca.key", caPair.1.pemRepresentation + "\n", secret: true)
            try files.write("ca.crt", try caPair.0.serializeAsPEM().pemString + "\n", secret: false)
        }

        if !caIsNew,
           let cert = try? Certificate(pemEncoded: files.read("server.crt") ?? ""),
           let key = try? P256.Signing.PrivateKey(pemRepresentation: files.read("server.key") ?? ""),
           cert.publicKey == Certificate.PublicKey(key.publicKey),
           cert.issuer == caPair.0.subject,
           cert.notValidAfter.timeIntervalSince(now) > renewBefore {
            return try ClusterCertificateAuthority(caCertificate: caPair.0, caKey: caPair.1,
                                                   serverCertificate: cert, serverKey: key)
        }
        let (serverCert, serverKey) = try makeServingCertificate(caCertificate: caPair.0, caKey: caPair.1, now: now)
        try files.write("server.key", serverKey.pemRepresentation + "\n", secret: true)
        try files.write("server.crt", try serverCert.serializeAsPEM().pemString + "\n", secret: false)
        return try ClusterCertificateAuthority(caCertificate: caPair.0, caKey: caPair.1,
                                               serverCertificate: serverCert, serverKey: serverKey)
    }

    /// TLS settings for the API server: the serving certificate followed by the CA.
    /// Client certificates are requested but optional, so bearer-token clients still connect.
    public func serverTLSConfiguration() throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array((serverCertificatePEM + caPEM).utf8))
        let key = try NIOSSLPrivateKey(bytes: Array(serverKeyPEM.utf8), format: .pem)
        var config = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        config.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        config.certificateVerification = .optionalVerification
        // Closing waits this long for the client's close_notify; a stopping server need not wait 5 s.
        config.shutdownTimeout = .seconds(1)
        return config
    }

    /// TLS settings for a client of the local cluster: trusts only this CA and checks the
    /// server's name. Pass a client certificate from `issueClientCertificate` to authenticate with it.
    public func clientTLSConfiguration(clientCertificate: IssuedCertificate? = nil) throws -> TLSConfiguration {
        var config = TLSConfiguration.makeClientConfiguration()
        config.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        if let clientCertificate {
            config.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(clientCertificate.certificatePEM.utf8))
                .map { .certificate($0) }
            config.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(clientCertificate.keyPEM.utf8), format: .pem))
        }
        return config
    }

    /// A certificate and its key, both PEM.
    public struct IssuedCertificate: Sendable, Hashable {
        public var certificatePEM: String
        public var keyPEM: String
    }

    /// Signs a client certificate: CN = username, O = groups (kube-apiserver's x509 mapping).
    public func issueClientCertificate(commonName: String, organizations: [String] = [],
                                       validFor: TimeInterval = 365 * 86_400,
                                       now: Date = Date()) throws -> IssuedCertificate {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            for organization in organizations { OrganizationName(organization) }
            CommonName(commonName)
        }
        let publicKey = Certificate.PublicKey(key.publicKey)
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.clientAuth])
            AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: caCertificate.publicKey).keyIdentifier)
        }
        let cert = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey,
            notValidBefore: now - Self.backdate, notValidAfter: now + validFor,
            issuer: caCertificate.subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
            issuerPrivateKey: .init(caKey)
        )
        return IssuedCertificate(certificatePEM: try cert.serializeAsPEM().pemString + "\n",
                                 keyPEM: key.pemRepresentation + "\n")
    }

    // MARK: - Generation

    static func makeCA(now: Date) throws -> (Certificate, P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("agentgate")
            CommonName("agentgate-local-cluster-ca")
        }
        let publicKey = Certificate.PublicKey(key.publicKey)
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: publicKey)
        }
        let cert = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey,
            notValidBefore: now - backdate, notValidAfter: now + caValidity,
            issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
            issuerPrivateKey: .init(key)
        )
        return (cert, key)
    }

    static func makeServingCertificate(caCertificate: Certificate, caKey: P256.Signing.PrivateKey,
                                       now: Date) throws -> (Certificate, P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName("agentgate")
            CommonName("kube-apiserver")
        }
        var names: [GeneralName] = servingDNSNames.map { .dnsName($0) }
        for address in servingIPAddresses {
            guard let bytes = ipAddressBytes(address) else { continue }
            names.append(.ipAddress(ASN1OctetString(contentBytes: bytes[...])))
        }
        let publicKey = Certificate.PublicKey(key.publicKey)
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth])
            SubjectAlternativeNames(names)
            AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: caCertificate.publicKey).keyIdentifier)
        }
        let cert = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey,
            notValidBefore: now - backdate,
            notValidAfter: min(now + servingValidity, caCertificate.notValidAfter),
            issuer: caCertificate.subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
            issuerPrivateKey: .init(caKey)
        )
        return (cert, key)
    }

    /// Network-order bytes of an IPv4 or IPv6 literal (SANs store addresses as raw octets).
    static func ipAddressBytes(_ literal: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, literal, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, literal, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}

/// Reads and writes the PEM files of a data directory; secrets are written owner-only.
struct DataDirFiles {
    var directory: URL

    func read(_ name: String) -> String? {
        try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
    }

    func write(_ name: String, _ contents: String, secret: Bool) throws {
        let url = directory.appendingPathComponent(name)
        try Data(contents.utf8).write(to: url, options: .atomic)
        if secret {
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
        }
    }
}
