import AgentGateAPI
import Foundation
import KubeCore
import XCTest

/// Every overlay (`config/default`, `config/ha`) renders with real `kubectl kustomize`, every
/// rendered object passes Kubernetes' own schemas (`kubernetes-validate`), and the objects keep
/// the promises the README's "Deploy to a cluster" makes: least-privilege RBAC, locked-down
/// pods, a single-replica gateway that records to a PersistentVolumeClaim, and a highly
/// available one on PostgreSQL with its store URL and masking key from Secrets.
/// (ConfigOverlayApplyTests applies the same overlays to the local cluster with kubectl.)
final class KustomizeConfigTests: XCTestCase {
    static let overlays = ["config/default", "config/ha"]
    /// The Kubernetes version the manifests target: kubectl's and the local cluster's (v1.32).
    static let kubernetesVersion = "1.32"

    private func renderYAML(_ directory: String) throws -> String {
        guard let kubectl = Self.findExecutable("kubectl") else {
            throw XCTSkip("kubectl is not on PATH; .ci/run installs it")
        }
        let result = try Self.run(kubectl, ["kustomize", RepositoryFiles.url(directory).path])
        XCTAssertEqual(result.status, 0, "kubectl kustomize \(directory): \(result.stderr)")
        return result.stdout
    }

    private func render(_ directory: String) throws -> [JSONValue] {
        try JSONValue.parseYAMLDocuments(try renderYAML(directory))
    }

    /// Runs a program to completion (kubectl, python3). Their stderr stays small, so reading
    /// stdout to its end first cannot stall them.
    private static func run(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: errors, as: UTF8.self))
    }

    private static func findExecutable(_ name: String) -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { URL(fileURLWithPath: String($0)).appendingPathComponent(name) }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    private func objects(_ all: [JSONValue], kind: String) -> [String: JSONValue] {
        Dictionary(all.filter { $0["kind"]?.stringValue == kind }
            .compactMap { o in o[path: ["metadata", "name"]]?.stringValue.map { ($0, o) } }, uniquingKeysWith: { a, _ in a })
    }

    func testEveryOverlayRendersCRDsRBACDeploymentsAndService() throws {
        for overlay in Self.overlays {
            try assertRendersCRDsRBACDeploymentsAndService(overlay)
        }
    }

    private func assertRendersCRDsRBACDeploymentsAndService(_ overlay: String) throws {
        let all = try render(overlay)
        XCTAssertEqual(Set(objects(all, kind: "CustomResourceDefinition").keys), Set(AgentGateKinds.all.map(\.crdName)), overlay)
        XCTAssertEqual(Set(objects(all, kind: "Namespace").keys), ["agentgate-system"], overlay)
        XCTAssertEqual(Set(objects(all, kind: "Deployment").keys), ["agentgate-operator", "agentgate-gateway"], overlay)
        XCTAssertEqual(Set(objects(all, kind: "Service").keys), ["agentgate-gateway"], overlay)
        XCTAssertEqual(Set(objects(all, kind: "ServiceAccount").keys), ["agentgate-operator", "agentgate-gateway"], overlay)
        XCTAssertEqual(Set(objects(all, kind: "ClusterRole").keys), ["agentgate-operator", "agentgate-gateway"], overlay)
        XCTAssertEqual(Set(objects(all, kind: "ClusterRoleBinding").keys), ["agentgate-operator", "agentgate-gateway"], overlay)
        XCTAssertEqual(Set(objects(all, kind: "Role").keys), ["agentgate-operator", "agentgate-gateway"], overlay)
        XCTAssertEqual(Set(objects(all, kind: "RoleBinding").keys), ["agentgate-operator", "agentgate-gateway"], overlay)
        XCTAssertEqual(Set(objects(all, kind: "ValidatingAdmissionPolicy").keys), ["agentgate-serviceaccount-binding"], overlay)
        XCTAssertEqual(Set(objects(all, kind: "ValidatingAdmissionPolicyBinding").keys), ["agentgate-serviceaccount-binding"], overlay)
        let clusterScoped = ["CustomResourceDefinition", "Namespace", "ClusterRole", "ClusterRoleBinding",
                             "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
        for object in all where clusterScoped.contains(object["kind"]?.stringValue ?? "") {
            XCTAssertNil(object[path: ["metadata", "namespace"]], "\(overlay): a cluster-scoped \(object["kind"] ?? nil) has no namespace")
        }
        for object in all where !clusterScoped.contains(object["kind"]?.stringValue ?? "") {
            XCTAssertEqual(object[path: ["metadata", "namespace"]], "agentgate-system", "\(overlay): \(object["kind"] ?? nil)")
        }
    }

    /// config/admission's file and the copy the sandbox installs (ServiceAccountBindingPolicy) are one text.
    func testShippedBindingPolicyIsTheOneTheSandboxInstalls() throws {
        let file = try RepositoryFiles.text("config/admission/serviceaccount_binding_policy.yaml")
        XCTAssertEqual(file.trimmingCharacters(in: .newlines), ServiceAccountBindingPolicy.yaml.trimmingCharacters(in: .newlines),
                       "run scripts/embed-assets.py: Sources/AgentGateAPI/BindingPolicyFiles.swift is an old copy of the YAML file")
        for overlay in Self.overlays {
            let rendered = try render(overlay)
            for kind in ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"] {
                let shipped = try JSONValue.parseYAMLDocuments(ServiceAccountBindingPolicy.yaml).first { $0["kind"]?.stringValue == kind }
                XCTAssertEqual(objects(rendered, kind: kind)[ServiceAccountBindingPolicy.name], shipped, "\(overlay): \(kind)")
            }
        }
    }

    func testRenderedCRDsAreTheGeneratedOnes() throws {
        for overlay in Self.overlays {
            let rendered = objects(try render(overlay), kind: "CustomResourceDefinition")
            for kind in AgentGateKinds.all {
                XCTAssertEqual(rendered[kind.crdName], try AgentGateCRDs.manifest(for: kind), "\(overlay): \(kind.crdName)")
            }
        }
    }

    func testRBACIsLeastPrivilege() throws {
        for overlay in Self.overlays {
            try assertRBACIsLeastPrivilege(overlay)
        }
    }

    private func assertRBACIsLeastPrivilege(_ overlay: String) throws {
        let all = try render(overlay)
        let clusterRoles = objects(all, kind: "ClusterRole")
        let roles = objects(all, kind: "Role")
        func grants(_ role: JSONValue?) -> Set<String> {
            var result: Set<String> = []
            for rule in role?["rules"]?.arrayValue ?? [] {
                for group in rule["apiGroups"]?.arrayValue ?? [] {
                    for resource in rule["resources"]?.arrayValue ?? [] {
                        for verb in rule["verbs"]?.arrayValue ?? [] {
                            result.insert("\(group.stringValue ?? "")/\(resource.stringValue ?? "")/\(verb.stringValue ?? "")")
                        }
                    }
                }
            }
            return result
        }
        let operatorCluster = grants(clusterRoles["agentgate-operator"])
        XCTAssertTrue(operatorCluster.contains("/serviceaccounts/token/create"))
        XCTAssertTrue(operatorCluster.contains("agentgate.io/agentconnections/watch"))
        XCTAssertTrue(operatorCluster.contains("agentgate.io/recordingpolicies/status/patch"))
        XCTAssertTrue(operatorCluster.contains("agentgate.io/maskingrules/finalizers/update"))
        XCTAssertTrue(operatorCluster.contains("/events/create"))
        XCTAssertTrue(operatorCluster.contains("admissionregistration.k8s.io/validatingadmissionpolicies/watch"),
                      "the operator sees whether the ServiceAccount binding policy is installed")
        XCTAssertFalse(operatorCluster.contains { $0.hasPrefix("admissionregistration.k8s.io/") && !$0.hasSuffix("/get")
                && !$0.hasSuffix("/list") && !$0.hasSuffix("/watch") }, "the operator only reads admission policies")
        let operatorLocal = grants(roles["agentgate-operator"])
        XCTAssertTrue(operatorLocal.contains("/secrets/create"))
        XCTAssertTrue(operatorLocal.contains("coordination.k8s.io/leases/update"))

        XCTAssertEqual(grants(roles["agentgate-gateway"]), ["/secrets/get", "/secrets/list", "/secrets/watch"])
        // Status of the kinds, and approval and alert Events on AgentConnections.
        XCTAssertEqual(grants(clusterRoles["agentgate-gateway"]), Set(AgentGateKinds.all.flatMap { kind in
            ["get", "patch"].map { "agentgate.io/\(kind.plural)/status/\($0)" }
        } + ["/events/create", "/events/patch", "events.k8s.io/events/create", "events.k8s.io/events/patch"]),
                       "status, and approval and alert Events")
        for (name, role) in clusterRoles.merging(roles, uniquingKeysWith: { a, _ in a }) {
            XCTAssertFalse(grants(role).contains { $0.contains("*") }, "\(name) grants a wildcard")
        }
        for (name, role) in clusterRoles {
            XCTAssertFalse(grants(role).contains { $0.hasPrefix("/secrets/") }, "\(name) grants Secrets cluster-wide")
        }
    }

    func testPodsRunLockedDownWithProbesAndResources() throws {
        for overlay in Self.overlays {
            try assertPodsRunLockedDownWithProbesAndResources(overlay)
        }
    }

    private func assertPodsRunLockedDownWithProbesAndResources(_ overlay: String) throws {
        let deployments = objects(try render(overlay), kind: "Deployment")
        XCTAssertEqual(Set(deployments.keys), ["agentgate-operator", "agentgate-gateway"], overlay)
        // JSON logs, one object per line, for the cluster's log pipeline.
        let expectedArgs = ["agentgate-operator": ["operator", "--log-format", "json", "--leader-elect", "--gateway-namespace"],
                            "agentgate-gateway": ["gateway", "--log-format", "json", "--listen", "0.0.0.0:8443", "--admin-listen"]]
        for (name, deployment) in deployments {
            let pod = deployment[path: ["spec", "template", "spec"]]
            XCTAssertEqual(pod?[path: ["securityContext", "runAsNonRoot"]], true, "\(overlay): \(name)")
            XCTAssertEqual(pod?[path: ["securityContext", "seccompProfile", "type"]], "RuntimeDefault", "\(overlay): \(name)")
            for container in pod?["containers"]?.arrayValue ?? [] {
                XCTAssertEqual(container[path: ["securityContext", "readOnlyRootFilesystem"]], true, "\(overlay): \(name)")
                XCTAssertEqual(container[path: ["securityContext", "allowPrivilegeEscalation"]], false, "\(overlay): \(name)")
                XCTAssertEqual(container[path: ["securityContext", "capabilities", "drop"]], ["ALL"], "\(overlay): \(name)")
                XCTAssertEqual(container[path: ["livenessProbe", "httpGet", "path"]], "/healthz", "\(overlay): \(name)")
                XCTAssertEqual(container[path: ["readinessProbe", "httpGet", "path"]], "/readyz", "\(overlay): \(name)")
                XCTAssertNotNil(container[path: ["resources", "requests", "memory"]], "\(overlay): \(name)")
                XCTAssertNotNil(container[path: ["resources", "limits", "memory"]], "\(overlay): \(name)")
                let args = container["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
                XCTAssertEqual(Array(args.prefix(expectedArgs[name]?.count ?? 0)), expectedArgs[name], "\(overlay): \(name)")
            }
        }
    }

    // MARK: Kubernetes' own schemas

    /// kubernetes-validate (PyPI) bundles the JSON schemas of each Kubernetes release, so it
    /// runs offline. `--strict` rejects a field the schema does not know, as the API server's
    /// strict field validation does. Every rendered kind is a built-in one (the CRDs are
    /// apiextensions.k8s.io/v1 objects), so every object must pass: a kind without a schema
    /// fails here instead of being skipped.
    func testKubernetesSchemasAcceptEveryRenderedObject() throws {
        let python = try XCTUnwrap(Self.findExecutable("python3"), "python3 is not on PATH")
        let installed = try Self.run(python, ["-m", "kubernetes_validate", "--version"])
        guard installed.status == 0 else {
            XCTFail("kubernetes-validate is not installed: python3 -m pip install kubernetes-validate (.ci/run installs it)\n\(installed.stderr)")
            return
        }
        for overlay in Self.overlays {
            let yaml = try renderYAML(overlay)
            let count = try JSONValue.parseYAMLDocuments(yaml).count
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("agentgate-rendered-\(UUID().uuidString).yaml")
            try yaml.write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }
            let result = try Self.run(python, ["-m", "kubernetes_validate", "--kubernetes-version", Self.kubernetesVersion,
                                               "--strict", file.path])
            let lines = result.stdout.split(separator: "\n")
            let problems = lines.filter { !$0.hasPrefix("INFO ") }.joined(separator: "\n")
            XCTAssertEqual(result.status, 0, "\(overlay):\n\(problems)\n\(result.stderr)")
            let passed = lines.filter { $0.hasPrefix("INFO ") && $0.hasSuffix(" against version \(Self.kubernetesVersion)") }
            XCTAssertEqual(passed.count, count, "\(overlay): each of the \(count) objects passes v\(Self.kubernetesVersion)'s schema:\n\(result.stdout)")
            XCTAssertFalse(lines.contains { $0.hasPrefix("WARN") }, "\(overlay): an object has no schema:\n\(result.stdout)")
        }
    }

    // MARK: config/default: one gateway on SQLite

    func testDefaultGatewayRecordsToAPersistentVolumeClaimNeverAnEmptyDir() throws {
        let all = try render("config/default")
        let gateway = try XCTUnwrap(objects(all, kind: "Deployment")["agentgate-gateway"])
        XCTAssertEqual(gateway[path: ["spec", "replicas"]], 1)
        // Its ReadWriteOnce volume is mounted by one pod at a time: the old pod goes first.
        XCTAssertEqual(gateway[path: ["spec", "strategy", "type"]], "Recreate")
        let pod = try XCTUnwrap(gateway[path: ["spec", "template", "spec"]])
        let container = try XCTUnwrap(Self.container("gateway", in: pod))
        let args = Self.args(container)

        let store = try XCTUnwrap(Self.flag("--store", in: args))
        XCTAssertTrue(store.hasPrefix("sqlite:"), store)
        let database = String(store.dropFirst("sqlite:".count).prefix { $0 != "?" })
        let dataVolume = try XCTUnwrap(Self.volume(holding: database, container: container, pod: pod), "no volume holds \(database)")
        XCTAssertNil(dataVolume["emptyDir"], "the recordings must not be on an emptyDir")
        let claimName = try XCTUnwrap(dataVolume[path: ["persistentVolumeClaim", "claimName"]]?.stringValue)
        XCTAssertEqual(claimName, "agentgate-gateway-data")
        let claim = try XCTUnwrap(objects(all, kind: "PersistentVolumeClaim")[claimName], "the claim is part of the install")
        XCTAssertEqual(claim[path: ["spec", "accessModes"]], ["ReadWriteOnce"])
        XCTAssertNotNil(claim[path: ["spec", "resources", "requests", "storage"]]?.stringValue)
        // The data directory (masking key) is on the same claim.
        let dataDirectory = try XCTUnwrap(Self.flag("--data-dir", in: args))
        XCTAssertEqual(Self.volume(holding: dataDirectory + "/masking-key", container: container, pod: pod), dataVolume)
        XCTAssertNil(Self.flag("--masking-key-file", in: args), "one replica keeps the key it made in its data directory")

        XCTAssertEqual(Self.emptyDirMountPaths(container: container, pod: pod), ["/tmp"], "an emptyDir holds only /tmp")
    }

    // MARK: The admin API in both overlays

    /// The admin port serves TLS from a Secret, people log in through the issuers and roles
    /// of one ConfigMap, and the static admin token is off.
    func testAdminAPIServesTLSFromASecretWithOIDCRolesAndNoStaticToken() throws {
        for overlay in Self.overlays {
            let all = try render(overlay)
            let gateway = try XCTUnwrap(objects(all, kind: "Deployment")["agentgate-gateway"], overlay)
            let pod = try XCTUnwrap(gateway[path: ["spec", "template", "spec"]])
            let container = try XCTUnwrap(Self.container("gateway", in: pod))
            let args = Self.args(container)
            for (flag, key) in [("--admin-tls-cert", "tls.crt"), ("--admin-tls-key", "tls.key")] {
                let file = try XCTUnwrap(Self.flag(flag, in: args), "\(overlay): \(flag)")
                XCTAssertEqual(Self.volume(holding: file, container: container, pod: pod)?[path: ["secret", "secretName"]],
                               "agentgate-admin-tls", "\(overlay): \(flag)")
                XCTAssertEqual(Self.secretKey(projectedAt: file, container: container, pod: pod), key, "\(overlay): \(flag)")
            }
            let authFile = try XCTUnwrap(Self.flag("--admin-auth-file", in: args), overlay)
            let volume = try XCTUnwrap(Self.volume(holding: authFile, container: container, pod: pod), overlay)
            let configMapName = try XCTUnwrap(volume[path: ["configMap", "name"]]?.stringValue, "\(overlay): from a ConfigMap")
            let configMap = try XCTUnwrap(objects(all, kind: "ConfigMap")[configMapName], "\(overlay): the ConfigMap ships")
            let mountPath = Self.mount(holding: authFile, container: container)?["mountPath"]?.stringValue ?? ""
            let text = try XCTUnwrap(configMap[path: ["data", String(authFile.dropFirst(mountPath.count + 1))]]?.stringValue)
            let auth = try JSONValue(yaml: text)
            XCTAssertEqual(Set(auth["roles"]?.objectValue?.keys.map { $0 } ?? []), ["reviewer", "approver", "admin"], overlay)
            XCTAssertNotNil(auth["issuers"]?.arrayValue?.first?["issuer"]?.stringValue, overlay)
            XCTAssertTrue(args.contains("--no-admin-token"), "\(overlay): the static token is off")
            XCTAssertNil(Self.flag("--admin-token-file", in: args), overlay)
            let listen = try XCTUnwrap(Self.flag("--admin-listen", in: args))
            XCTAssertTrue(listen.hasPrefix("0.0.0.0:"), "\(overlay): reachable from other pods, hence TLS")
        }
    }

    // MARK: config/ha: three gateways on PostgreSQL, two operators

    func testHAGatewayRunsThreeReplicasSpreadAcrossNodesAndPreferablyZones() throws {
        let gateway = try XCTUnwrap(objects(try render("config/ha"), kind: "Deployment")["agentgate-gateway"])
        XCTAssertEqual(gateway[path: ["spec", "replicas"]], 3)
        // A rollout adds a ready replica before it removes one.
        XCTAssertEqual(gateway[path: ["spec", "strategy", "type"]], "RollingUpdate")
        XCTAssertEqual(gateway[path: ["spec", "strategy", "rollingUpdate", "maxUnavailable"]], 0)
        XCTAssertEqual(gateway[path: ["spec", "strategy", "rollingUpdate", "maxSurge"]], 1)
        let labels = try Self.podLabels(gateway)
        let constraints = gateway[path: ["spec", "template", "spec", "topologySpreadConstraints"]]?.arrayValue ?? []
        func constraint(_ topologyKey: String) -> JSONValue? {
            constraints.first { $0["topologyKey"]?.stringValue == topologyKey }
        }
        let nodes = try XCTUnwrap(constraint("kubernetes.io/hostname"), "spread across nodes")
        XCTAssertEqual(nodes["whenUnsatisfiable"], "DoNotSchedule")
        XCTAssertEqual(nodes["maxSkew"], 1)
        XCTAssertTrue(try Self.selector(nodes["labelSelector"]).matches(labels), "the node spread counts the gateway's pods")
        let zones = try XCTUnwrap(constraint("topology.kubernetes.io/zone"), "spread across zones")
        XCTAssertEqual(zones["whenUnsatisfiable"], "ScheduleAnyway", "zones are a preference: a cluster may have one")
        XCTAssertTrue(try Self.selector(zones["labelSelector"]).matches(labels), "the zone spread counts the gateway's pods")
    }

    func testHABudgetsDisruptionsSoTwoGatewaysAndOneOperatorKeepRunning() throws {
        let all = try render("config/ha")
        let deployments = objects(all, kind: "Deployment")
        let budgets = Array(objects(all, kind: "PodDisruptionBudget").values)
        for (name, mustStay) in [("agentgate-gateway", 2), ("agentgate-operator", 1)] {
            let deployment = try XCTUnwrap(deployments[name])
            let labels = try Self.podLabels(deployment)
            let replicas = Int(deployment[path: ["spec", "replicas"]]?.intValue ?? 1)
            let selecting = try budgets.filter { try Self.selector($0[path: ["spec", "selector"]]).matches(labels) }
            XCTAssertEqual(selecting.count, 1, "one PodDisruptionBudget selects \(name)'s pods")
            guard let budget = selecting.first?["spec"] else { continue }
            let kept = budget["minAvailable"]?.intValue.map(Int.init)
                ?? budget["maxUnavailable"]?.intValue.map { replicas - Int($0) }
            XCTAssertEqual(kept, mustStay, "\(name): pods a voluntary disruption leaves running")
        }
    }

    func testHAGatewayReadsItsStoreURLAndMaskingKeyFromSecretsAndKeepsNoVolume() throws {
        let all = try render("config/ha")
        let gateway = try XCTUnwrap(objects(all, kind: "Deployment")["agentgate-gateway"])
        let pod = try XCTUnwrap(gateway[path: ["spec", "template", "spec"]])
        let container = try XCTUnwrap(Self.container("gateway", in: pod))
        let args = Self.args(container)

        XCTAssertNil(Self.flag("--store", in: args), "the store URL (with its password) is not in the manifest")
        let storeFile = try XCTUnwrap(Self.flag("--store-file", in: args))
        let store = Self.volume(holding: storeFile, container: container, pod: pod)
        XCTAssertEqual(store?[path: ["secret", "secretName"]], "agentgate-store")
        XCTAssertEqual(Self.secretKey(projectedAt: storeFile, container: container, pod: pod), "url")

        let keyFile = try XCTUnwrap(Self.flag("--masking-key-file", in: args), "every replica hashes with one shared key")
        let key = Self.volume(holding: keyFile, container: container, pod: pod)
        XCTAssertEqual(key?[path: ["secret", "secretName"]], "agentgate-masking-key")
        XCTAssertEqual(Self.secretKey(projectedAt: keyFile, container: container, pod: pod), "key")

        // Nothing per replica on disk: no claim (a ReadWriteOnce one could not be shared), and an
        // emptyDir only for /tmp, where the data directory goes.
        XCTAssertTrue(objects(all, kind: "PersistentVolumeClaim").isEmpty)
        XCTAssertFalse((pod["volumes"]?.arrayValue ?? []).contains { $0["persistentVolumeClaim"] != nil })
        XCTAssertEqual(Self.emptyDirMountPaths(container: container, pod: pod), ["/tmp"])
        let dataDirectory = try XCTUnwrap(Self.flag("--data-dir", in: args))
        XCTAssertTrue(dataDirectory.hasPrefix("/tmp/"), dataDirectory)
    }

    func testHAOperatorRunsTwoReplicasWithLeaderElection() throws {
        let all = try render("config/ha")
        let operatorDeployment = try XCTUnwrap(objects(all, kind: "Deployment")["agentgate-operator"])
        XCTAssertEqual(operatorDeployment[path: ["spec", "replicas"]], 2)
        let pod = try XCTUnwrap(operatorDeployment[path: ["spec", "template", "spec"]])
        let container = try XCTUnwrap(Self.container("operator", in: pod))
        XCTAssertTrue(Self.args(container).contains("--leader-elect"))
        // The replica waiting for the Lease prefers another node than the leader's.
        let spread = pod["topologySpreadConstraints"]?.arrayValue?.first { $0["topologyKey"] == "kubernetes.io/hostname" }
        XCTAssertEqual(spread?["whenUnsatisfiable"], "ScheduleAnyway")
        XCTAssertTrue(try Self.selector(spread?["labelSelector"]).matches(try Self.podLabels(operatorDeployment)))
    }

    // MARK: Reading rendered pods

    private static func container(_ name: String, in pod: JSONValue) -> JSONValue? {
        pod["containers"]?.arrayValue?.first { $0["name"]?.stringValue == name }
    }

    private static func args(_ container: JSONValue) -> [String] {
        container["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    /// The value of `--flag VALUE` or `--flag=VALUE`.
    private static func flag(_ name: String, in args: [String]) -> String? {
        for (index, arg) in args.enumerated() {
            if arg == name, index + 1 < args.count { return args[index + 1] }
            if arg.hasPrefix(name + "=") { return String(arg.dropFirst(name.count + 1)) }
        }
        return nil
    }

    /// The volume mounted (deepest mount first) where `path` lives in `container`.
    private static func volume(holding path: String, container: JSONValue, pod: JSONValue) -> JSONValue? {
        guard let mount = self.mount(holding: path, container: container), let name = mount["name"]?.stringValue else { return nil }
        return pod["volumes"]?.arrayValue?.first { $0["name"]?.stringValue == name }
    }

    private static func mount(holding path: String, container: JSONValue) -> JSONValue? {
        (container["volumeMounts"]?.arrayValue ?? [])
            .filter { mount in mount["mountPath"]?.stringValue.map { path.hasPrefix($0 + "/") } ?? false }
            .max { ($0["mountPath"]?.stringValue?.count ?? 0) < ($1["mountPath"]?.stringValue?.count ?? 0) }
    }

    /// The key of the Secret volume whose file `path` is (with `items`, the item's key;
    /// without, the file name is the key).
    private static func secretKey(projectedAt path: String, container: JSONValue, pod: JSONValue) -> String? {
        guard let mountPath = mount(holding: path, container: container)?["mountPath"]?.stringValue,
              let secret = volume(holding: path, container: container, pod: pod)?["secret"] else { return nil }
        let file = String(path.dropFirst(mountPath.count + 1))
        guard let items = secret["items"]?.arrayValue else { return file }
        return items.first { $0["path"]?.stringValue == file }?["key"]?.stringValue
    }

    private static func emptyDirMountPaths(container: JSONValue, pod: JSONValue) -> Set<String> {
        let emptyDirs = Set((pod["volumes"]?.arrayValue ?? []).filter { $0["emptyDir"] != nil }.compactMap { $0["name"]?.stringValue })
        return Set((container["volumeMounts"]?.arrayValue ?? [])
            .filter { emptyDirs.contains($0["name"]?.stringValue ?? "") }.compactMap { $0["mountPath"]?.stringValue })
    }

    private static func podLabels(_ deployment: JSONValue) throws -> [String: String] {
        try XCTUnwrap(deployment[path: ["spec", "template", "metadata", "labels"]]).decode([String: String].self)
    }

    private static func selector(_ value: JSONValue?) throws -> LabelSelector {
        try XCTUnwrap(value, "a label selector").decode(LabelSelector.self)
    }
}
