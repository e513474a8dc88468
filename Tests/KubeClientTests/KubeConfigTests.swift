import Foundation
import KubeClient
import KubeCore
import TestSupport
import XCTest

final class KubeConfigTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kubeconfig-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    @discardableResult
    func write(_ name: String, _ text: String, mode: Int = 0o600) throws -> String {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
        return url.path
    }

    static func config(cluster: String, server: String, user: String, userBody: String, context: String,
                       namespace: String? = nil, current: String? = nil, clusterExtra: String = "") -> String {
        """
        apiVersion: v1
        kind: Config
        clusters:
        - name: \(cluster)
          cluster:
            server: \(server)
        \(clusterExtra)
        users:
        - name: \(user)
          user:
        \(userBody)
        contexts:
        - name: \(context)
          context:
            cluster: \(cluster)
            user: \(user)
        \(namespace.map { "    namespace: \($0)" } ?? "")
        \(current.map { "current-context: \($0)" } ?? "")
        """
    }

    func testKUBECONFIGMergesFilesFirstFileWinsPerNameAndForCurrentContext() throws {
        let a = try write("a.yaml", Self.config(cluster: "c1", server: "https://a.example:6443", user: "u1",
                                                userBody: "    token: token-a", context: "shared", namespace: "ns-a", current: "shared"))
        let b = try write("b.yaml", """
            apiVersion: v1
            kind: Config
            current-context: only-b
            clusters:
            - name: c1
              cluster: {server: "https://b-loses.example:6443"}
            - name: c2
              cluster: {server: "https://b.example:6443"}
            users:
            - name: u2
              user: {token: token-b}
            contexts:
            - name: shared
              context: {cluster: c2, user: u2}
            - name: only-b
              context: {cluster: c1, user: u2, namespace: ns-b}
            """)
        let env = ["KUBECONFIG": "\(a):\(dir.path)/missing.yaml:\(b)", "HOME": dir.path]
        let merged = try KubeConfig.load(kubeconfigPath: nil, context: nil, environment: env)
        XCTAssertEqual(merged.contextName, "shared", "current-context of the first file that sets it wins")
        XCTAssertEqual(merged.server, "https://a.example:6443")
        XCTAssertEqual(merged.namespace, "ns-a")
        XCTAssertEqual(merged.credentials, .token("token-a"))

        let onlyB = try KubeConfig.load(kubeconfigPath: nil, context: "only-b", environment: env)
        XCTAssertEqual(onlyB.server, "https://a.example:6443", "cluster c1 comes from the first file that defines it")
        XCTAssertEqual(onlyB.credentials, .token("token-b"))
        XCTAssertEqual(onlyB.namespace, "ns-b")
    }

    func testContextOverrideAndUnknownContextErrorNamesContextAndFiles() throws {
        let path = try write("config", Self.config(cluster: "c", server: "https://x:1", user: "u", userBody: "    token: t",
                                                   context: "dev", current: "dev"))
        let config = try KubeConfig.load(kubeconfigPath: path, context: nil, environment: [:])
        XCTAssertEqual(config.namespace, "default")
        XCTAssertThrowsError(try KubeConfig.load(kubeconfigPath: path, context: "prod", environment: [:])) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("\"prod\"") && message.contains("--context") && message.contains(path), message)
            XCTAssertTrue(message.contains("dev"), "lists the known contexts: \(message)")
        }
    }

    func testPrecedenceFlagThenKUBECONFIGThenHomeThenInCluster() throws {
        let flag = try write("flag.yaml", Self.config(cluster: "c", server: "https://flag:1", user: "u", userBody: "    token: t", context: "x", current: "x"))
        let env1 = try write("env.yaml", Self.config(cluster: "c", server: "https://env:1", user: "u", userBody: "    token: t", context: "x", current: "x"))
        try write("home/.kube/config", Self.config(cluster: "c", server: "https://home:1", user: "u", userBody: "    token: t", context: "x", current: "x"))
        let root = try inClusterRoot(token: "sa-token", ca: "not used here", namespace: "team")
        var env = ["KUBECONFIG": env1, "HOME": dir.appendingPathComponent("home").path,
                   "KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"]
        XCTAssertEqual(try KubeConfig.load(kubeconfigPath: flag, context: nil, environment: env, inClusterRoot: root).server, "https://flag:1")
        XCTAssertEqual(try KubeConfig.load(kubeconfigPath: nil, context: nil, environment: env, inClusterRoot: root).server, "https://env:1")
        env["KUBECONFIG"] = nil
        XCTAssertEqual(try KubeConfig.load(kubeconfigPath: nil, context: nil, environment: env, inClusterRoot: root).server, "https://home:1")
        env["HOME"] = dir.appendingPathComponent("nohome").path
        let inCluster = try KubeConfig.load(kubeconfigPath: nil, context: nil, environment: env, inClusterRoot: root)
        XCTAssertEqual(inCluster.server, "https://10.0.0.1:443")
        XCTAssertEqual(inCluster.namespace, "team")
        env["KUBERNETES_SERVICE_HOST"] = nil
        XCTAssertThrowsError(try KubeConfig.load(kubeconfigPath: nil, context: nil, environment: env, inClusterRoot: root)) { error in
            XCTAssertTrue("\(error)".contains("no Kubernetes configuration found"), "\(error)")
        }
        XCTAssertThrowsError(try KubeConfig.load(kubeconfigPath: dir.appendingPathComponent("nope").path, context: nil, environment: env)) { error in
            XCTAssertTrue("\(error)".contains("--kubeconfig"), "\(error)")
        }
    }

    func testCertificateAuthorityFileIsResolvedRelativeToTheKubeconfigAndDataWinsOverFile() throws {
        try write("certs/ca.pem", "PEM FROM FILE")
        let fromFile = try write("kc1", Self.config(cluster: "c", server: "https://x:1", user: "u", userBody: "    token: t", context: "x",
                                                    current: "x", clusterExtra: "    certificate-authority: certs/ca.pem"))
        XCTAssertEqual(try KubeConfig.fromKubeconfigFiles([fromFile]).certificateAuthorityPEM, Array("PEM FROM FILE".utf8))
        let data = Data("PEM FROM DATA".utf8).base64EncodedString()
        let both = try write("kc2", Self.config(cluster: "c", server: "https://x:1", user: "u", userBody: "    token: t", context: "x", current: "x",
                                                clusterExtra: "    certificate-authority: certs/ca.pem\n    certificate-authority-data: \(data)"))
        XCTAssertEqual(try KubeConfig.fromKubeconfigFiles([both]).certificateAuthorityPEM, Array("PEM FROM DATA".utf8))
        let missing = try write("kc3", Self.config(cluster: "c", server: "https://x:1", user: "u", userBody: "    token: t", context: "x",
                                                   current: "x", clusterExtra: "    certificate-authority: nope.pem"))
        XCTAssertThrowsError(try KubeConfig.fromKubeconfigFiles([missing])) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("certificate-authority") && message.contains("nope.pem") && message.contains("cluster \"c\""), message)
        }
        let bad = try write("kc4", Self.config(cluster: "c", server: "https://x:1", user: "u", userBody: "    token: t", context: "x",
                                               current: "x", clusterExtra: "    certificate-authority-data: '!!!notbase64'"))
        XCTAssertThrowsError(try KubeConfig.fromKubeconfigFiles([bad])) { error in
            XCTAssertTrue("\(error)".contains("certificate-authority-data is not valid base64"), "\(error)")
        }
    }

    func testUserFieldsTokenFileClientCertificateExecAndErrorsNameTheField() throws {
        try write("tok", "file-token\n")
        let tokenFile = try write("kc1", Self.config(cluster: "c", server: "https://x:1", user: "u", userBody: "    tokenFile: tok", context: "x", current: "x"))
        XCTAssertEqual(try KubeConfig.fromKubeconfigFiles([tokenFile]).credentials, .tokenFile(dir.appendingPathComponent("tok").path))

        let cert = Data("CERT".utf8).base64EncodedString(), key = Data("KEY".utf8).base64EncodedString()
        let certs = try write("kc2", Self.config(cluster: "c", server: "https://x:1", user: "u",
                                                 userBody: "    client-certificate-data: \(cert)\n    client-key-data: \(key)", context: "x", current: "x"))
        let certConfig = try KubeConfig.fromKubeconfigFiles([certs])
        XCTAssertEqual(certConfig.clientCertificatePEM, Array("CERT".utf8))
        XCTAssertEqual(certConfig.clientKeyPEM, Array("KEY".utf8))
        XCTAssertEqual(certConfig.credentials, .none)
        let halfCert = try write("kc3", Self.config(cluster: "c", server: "https://x:1", user: "u",
                                                    userBody: "    client-certificate-data: \(cert)", context: "x", current: "x"))
        XCTAssertThrowsError(try KubeConfig.fromKubeconfigFiles([halfCert])) { error in
            XCTAssertTrue("\(error)".contains("client-certificate and client-key"), "\(error)")
        }
        let exec = try write("kc4", Self.config(cluster: "c", server: "https://x:1", user: "u", userBody: "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ./bin/plugin\n"
                                                + "      args: [get-token, --cluster, dev]\n      env: [{name: A, value: \"1\"}]", context: "x", current: "x"))
        guard case .exec(let execConfig) = try KubeConfig.fromKubeconfigFiles([exec]).credentials else {
            return XCTFail("expected exec credentials")
        }
        XCTAssertEqual(execConfig.command, dir.appendingPathComponent("bin/plugin").path)
        XCTAssertEqual(execConfig.args, ["get-token", "--cluster", "dev"])
        XCTAssertEqual(execConfig.env, ["A": "1"])
        let oldExec = try write("kc5", Self.config(cluster: "c", server: "https://x:1", user: "u", userBody: "    exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: x}", context: "x", current: "x"))
        XCTAssertThrowsError(try KubeConfig.fromKubeconfigFiles([oldExec])) { error in
            XCTAssertTrue("\(error)".contains("user.exec.apiVersion") && "\(error)".contains("user \"u\""), "\(error)")
        }
        let noServer = try write("kc6", "clusters: [{name: c, cluster: {}}]\ncontexts: [{name: x, context: {cluster: c}}]\ncurrent-context: x\n")
        XCTAssertThrowsError(try KubeConfig.fromKubeconfigFiles([noServer])) { error in
            XCTAssertTrue("\(error)".contains("cluster.server is required") && "\(error)".contains(noServer), "\(error)")
        }
        let wrongType = try write("kc7", "clusters: {c: 1}\n")
        XCTAssertThrowsError(try KubeConfig.fromKubeconfigFiles([wrongType])) { error in
            XCTAssertTrue("\(error)".contains("clusters must be a list"), "\(error)")
        }
    }

    func inClusterRoot(token: String, ca: String, namespace: String?) throws -> String {
        try write("sa/token", token)
        try write("sa/ca.crt", ca)
        if let namespace { try write("sa/namespace", namespace) }
        return dir.appendingPathComponent("sa").path
    }

    func testInClusterNeedsEnvironmentAndTokenAndBracketsIPv6() throws {
        let root = try inClusterRoot(token: "t", ca: "ca", namespace: nil)
        XCTAssertThrowsError(try InClusterConfig.load(environment: [:], root: root)) { error in
            XCTAssertTrue("\(error)".contains("KUBERNETES_SERVICE_HOST"), "\(error)")
        }
        let v6 = try InClusterConfig.load(environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"], root: root)
        XCTAssertEqual(v6.server, "https://[fd00::1]:443")
        XCTAssertEqual(v6.namespace, "default")
        XCTAssertEqual(v6.credentials, .tokenFile(root + "/token"))
        XCTAssertThrowsError(try InClusterConfig.load(environment: ["KUBERNETES_SERVICE_HOST": "h", "KUBERNETES_SERVICE_PORT": "1"],
                                                      root: dir.appendingPathComponent("none").path)) { error in
            XCTAssertTrue("\(error)".contains("token") && "\(error)".contains("does not exist"), "\(error)")
        }
    }
}
