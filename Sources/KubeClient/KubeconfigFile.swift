import Foundation
import KubeCore

/// The parsed, mergeable form of kubeconfig files (the `Config` kind).
///
/// Contract: named entries (`clusters`, `users`, `contexts`) keep the file they came from, so
/// relative paths resolve against that file's directory and errors name it. ``merge(_:)`` keeps
/// what is already there: the first file to define a name (or `current-context`) wins, as
/// kubectl merges `KUBECONFIG`. Unknown fields are ignored; a field of the wrong type is an
/// error naming the file and the field.
struct KubeconfigFile {
    struct Entry {
        var value: JSONValue
        var file: String
        var directory: String
    }

    var clusters: [String: Entry] = [:]
    var users: [String: Entry] = [:]
    var contexts: [String: Entry] = [:]
    var currentContext: String?
    var currentContextFile: String?
    var files: [String] = []

    static let empty = KubeconfigFile()

    private init() {}

    init(yaml: String, path: String, directory: String? = nil) throws {
        let root: JSONValue
        do {
            root = try JSONValue(yaml: yaml)
        } catch {
            throw KubeConfigError("kubeconfig \(path) is not valid YAML: \(error)")
        }
        files = [path]
        if root.isNull { return }  // an empty file is an empty config, as kubectl treats it
        guard root.objectValue != nil else {
            throw KubeConfigError("kubeconfig \(path) must be a YAML mapping (kind: Config), not \(root.typeName)")
        }
        let dir = directory ?? (path as NSString).deletingLastPathComponent
        for (field, section) in [("clusters", "cluster"), ("users", "user"), ("contexts", "context")] {
            guard let list = root[field], !list.isNull else { continue }
            guard let items = list.arrayValue else {
                throw KubeConfigError("kubeconfig \(path): \(field) must be a list, not \(list.typeName)")
            }
            for (index, item) in items.enumerated() {
                guard let name = item["name"]?.stringValue, !name.isEmpty else {
                    throw KubeConfigError("kubeconfig \(path): \(field)[\(index)].name is required")
                }
                let body = item[section] ?? .object([:])
                guard body.objectValue != nil || body.isNull else {
                    throw KubeConfigError("kubeconfig \(path): \(field)[\(index)] (\(name)).\(section) must be a mapping")
                }
                let entry = Entry(value: body.isNull ? .object([:]) : body, file: path, directory: dir)
                switch field {
                case "clusters": if clusters[name] == nil { clusters[name] = entry }
                case "users": if users[name] == nil { users[name] = entry }
                default: if contexts[name] == nil { contexts[name] = entry }
                }
            }
        }
        if let current = root["current-context"]?.stringValue, !current.isEmpty {
            currentContext = current
            currentContextFile = path
        }
    }

    /// Adds `other`'s entries that are not already defined (first file wins).
    mutating func merge(_ other: KubeconfigFile) {
        files += other.files
        clusters.merge(other.clusters) { mine, _ in mine }
        users.merge(other.users) { mine, _ in mine }
        contexts.merge(other.contexts) { mine, _ in mine }
        if currentContext == nil {
            currentContext = other.currentContext
            currentContextFile = other.currentContextFile
        }
    }

    private var fileList: String { files.joined(separator: ", ") }

    func resolve(context requested: String?) throws -> KubeConfig {
        guard let contextName = requested ?? currentContext else {
            throw KubeConfigError("current-context is not set in \(fileList); pass --context (contexts: \(contexts.keys.sorted().joined(separator: ", ")))")
        }
        guard let context = contexts[contextName] else {
            let source = requested != nil ? "--context" : "current-context in \(currentContextFile ?? fileList)"
            throw KubeConfigError("context \"\(contextName)\" (from \(source)) is not defined in \(fileList); known contexts: \(contexts.keys.sorted().joined(separator: ", "))")
        }
        let where_ = "context \"\(contextName)\" in \(context.file)"
        guard let clusterName = context.value["cluster"]?.stringValue, !clusterName.isEmpty else {
            throw KubeConfigError("\(where_): context.cluster is required")
        }
        guard let cluster = clusters[clusterName] else {
            throw KubeConfigError("\(where_): cluster \"\(clusterName)\" is not defined in \(fileList)")
        }
        let clusterWhere = "cluster \"\(clusterName)\" in \(cluster.file)"
        guard let server = try string(cluster, "server", clusterWhere), !server.isEmpty else {
            throw KubeConfigError("\(clusterWhere): cluster.server is required")
        }
        guard let serverURL = URL(string: server), let scheme = serverURL.scheme, ["http", "https"].contains(scheme), serverURL.host != nil else {
            throw KubeConfigError("\(clusterWhere): cluster.server \"\(server)\" is not an http(s) URL")
        }
        var config = KubeConfig(server: server, contextName: contextName, origin: where_)
        if let namespace = try string(context, "namespace", where_), !namespace.isEmpty {
            config.namespace = namespace
        }
        config.insecureSkipTLSVerify = cluster.value["insecure-skip-tls-verify"]?.boolValue ?? false
        config.tlsServerName = try string(cluster, "tls-server-name", clusterWhere)
        config.certificateAuthorityPEM = try bytes(cluster, data: "certificate-authority-data", file: "certificate-authority", clusterWhere)

        if let userName = context.value["user"]?.stringValue, !userName.isEmpty {
            guard let user = users[userName] else {
                throw KubeConfigError("\(where_): user \"\(userName)\" is not defined in \(fileList)")
            }
            let userWhere = "user \"\(userName)\" in \(user.file)"
            config.clientCertificatePEM = try bytes(user, data: "client-certificate-data", file: "client-certificate", userWhere)
            config.clientKeyPEM = try bytes(user, data: "client-key-data", file: "client-key", userWhere)
            if (config.clientCertificatePEM == nil) != (config.clientKeyPEM == nil) {
                throw KubeConfigError("\(userWhere): client-certificate and client-key must be given together")
            }
            config.credentials = try credentials(user, userWhere)
        }
        return config
    }

    private func credentials(_ user: Entry, _ where_: String) throws -> KubeConfig.Credentials {
        if let token = try string(user, "token", where_), !token.isEmpty {
            return .token(token)
        }
        if let file = try string(user, "tokenFile", where_), !file.isEmpty {
            let path = absolute(file, user.directory)
            guard FileManager.default.fileExists(atPath: path) else {
                throw KubeConfigError("\(where_): user.tokenFile \(path) does not exist")
            }
            return .tokenFile(path)
        }
        if let exec = user.value["exec"], !exec.isNull {
            return .exec(try execConfig(exec, user, where_))
        }
        if let provider = user.value["auth-provider"], !provider.isNull {
            let name = provider["name"]?.stringValue ?? "?"
            throw KubeConfigError("\(where_): user.auth-provider \"\(name)\" is not supported; use an exec credential plugin (user.exec)")
        }
        if let username = try string(user, "username", where_), let password = try string(user, "password", where_) {
            return .basic(username: username, password: password)
        }
        return .none
    }

    private func execConfig(_ exec: JSONValue, _ user: Entry, _ where_: String) throws -> ExecConfig {
        guard let command = exec["command"]?.stringValue, !command.isEmpty else {
            throw KubeConfigError("\(where_): user.exec.command is required")
        }
        let apiVersion = exec["apiVersion"]?.stringValue ?? ""
        let supported = ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"]
        guard supported.contains(apiVersion) else {
            throw KubeConfigError("\(where_): user.exec.apiVersion \"\(apiVersion)\" is not supported; use client.authentication.k8s.io/v1")
        }
        var args: [String] = []
        for (index, arg) in (exec["args"]?.arrayValue ?? []).enumerated() {
            guard let text = arg.stringValue else {
                throw KubeConfigError("\(where_): user.exec.args[\(index)] must be a string")
            }
            args.append(text)
        }
        var env: [String: String] = [:]
        for (index, item) in (exec["env"]?.arrayValue ?? []).enumerated() {
            guard let name = item["name"]?.stringValue, let value = item["value"]?.stringValue else {
                throw KubeConfigError("\(where_): user.exec.env[\(index)] needs string name and value")
            }
            env[name] = value
        }
        // kubectl resolves a command with a path separator relative to the kubeconfig's directory.
        let resolved = command.contains("/") ? absolute(command, user.directory) : command
        return ExecConfig(apiVersion: apiVersion, command: resolved, args: args, env: env,
                          installHint: exec["installHint"]?.stringValue, origin: "\(where_): user.exec")
    }

    private func string(_ entry: Entry, _ field: String, _ where_: String) throws -> String? {
        guard let value = entry.value[field], !value.isNull else { return nil }
        guard let text = value.stringValue else {
            throw KubeConfigError("\(where_): \(field) must be a string, not \(value.typeName)")
        }
        return text
    }

    /// Inline base64 data wins over a file reference, as in client-go.
    private func bytes(_ entry: Entry, data: String, file: String, _ where_: String) throws -> [UInt8]? {
        if let encoded = try string(entry, data, where_), !encoded.isEmpty {
            let cleaned = encoded.filter { !$0.isWhitespace }
            guard let decoded = Data(base64Encoded: cleaned) else {
                throw KubeConfigError("\(where_): \(data) is not valid base64")
            }
            return Array(decoded)
        }
        if let path = try string(entry, file, where_), !path.isEmpty {
            let full = absolute(path, entry.directory)
            guard let contents = FileManager.default.contents(atPath: full) else {
                throw KubeConfigError("\(where_): \(file) \(full) cannot be read")
            }
            return Array(contents)
        }
        return nil
    }

    private func absolute(_ path: String, _ directory: String) -> String {
        if path.hasPrefix("/") { return (path as NSString).standardizingPath }
        if path.hasPrefix("~/") { return (NSHomeDirectory() as NSString).appendingPathComponent(String(path.dropFirst(2))) }
        return ((directory as NSString).appendingPathComponent(path) as NSString).standardizingPath
    }
}
