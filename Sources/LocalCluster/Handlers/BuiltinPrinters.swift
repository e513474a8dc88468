import Foundation
import KubeCore

/// The Table columns and cells of the built-in kinds, as kube-apiserver's printers make them
/// (`pkg/printers/internalversion/printers.go`): the same column names, types and
/// priorities (priority 1 columns are what `kubectl get -o wide` adds), and cells computed
/// the same way (`2/2` READY, `<none>` for an empty IP, humanized ages). The server fills
/// every column, as kube-apiserver's table convertor does (it prints wide); kubectl picks.
///
/// Kinds without a printer get kube-apiserver's default table: NAME and CREATED AT.
/// Workload printers live in `BuiltinPrinters+Workloads.swift`; shared cell formats in
/// ``PrinterCells``.
struct BuiltinPrinter: Sendable {
    /// Columns after NAME (which every printer here starts with, except Events').
    let columns: [PrinterColumn]
    /// Whether the table opens with NAME (all but Events, whose NAME is a last, wide column).
    var namesFirst = true
    /// The cells of one object, in column order; `now` is the time ages are measured to.
    let cells: @Sendable (_ object: JSONValue, _ now: Date) -> [JSONValue]
    /// Row conditions (`Completed` for finished pods), as kube-apiserver marks them.
    var conditions: @Sendable (_ object: JSONValue) -> [JSONValue] = { _ in [] }
}

enum BuiltinPrinters {
    static func column(_ name: String, _ type: String = "string", priority: Int = 0, format: String? = nil,
                       description: String = "") -> PrinterColumn {
        PrinterColumn(name: name, type: type, format: format, description: description, priority: priority, jsonPath: "")
    }

    static let name = column("Name", format: "name",
                             description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")
    static let age = column("Age", description: "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata")

    /// The printer for a built-in resource, nil for kinds printed with the default table.
    static func printer(group: String, resource: String) -> BuiltinPrinter? {
        switch (group, resource) {
        case ("", "pods"): return pod
        case ("apps", "deployments"): return deployment
        case ("apps", "replicasets"): return replicaSet
        case ("apps", "statefulsets"): return statefulSet
        case ("apps", "daemonsets"): return daemonSet
        case ("batch", "jobs"): return job
        case ("batch", "cronjobs"): return cronJob
        case ("", "services"): return service
        case ("", "configmaps"): return configMap
        case ("", "secrets"): return secret
        case ("", "namespaces"): return namespace
        case ("", "nodes"): return node
        case ("", "serviceaccounts"): return serviceAccount
        case ("", "events"), ("events.k8s.io", "events"): return event
        case ("", "persistentvolumeclaims"): return persistentVolumeClaim
        case ("", "endpoints"): return endpoints
        case ("discovery.k8s.io", "endpointslices"): return endpointSlice
        case ("coordination.k8s.io", "leases"): return lease
        case ("policy", "poddisruptionbudgets"): return podDisruptionBudget
        case ("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "clusterroles"): return role
        case ("rbac.authorization.k8s.io", "rolebindings"), ("rbac.authorization.k8s.io", "clusterrolebindings"): return roleBinding
        case ("admissionregistration.k8s.io", "validatingadmissionpolicies"): return validatingAdmissionPolicy
        default: return nil
        }
    }

    typealias Cells = PrinterCells

    static let configMap = BuiltinPrinter(columns: [column("Data", "integer"), age]) { object, now in
        let count = (object["data"]?.objectValue?.count ?? 0) + (object["binaryData"]?.objectValue?.count ?? 0)
        return [.int(Int64(count)), Cells.age(object, now)]
    }

    static let secret = BuiltinPrinter(columns: [column("Type"), column("Data", "integer"), age]) { object, now in
        [.string(object["type"]?.stringValue ?? "Opaque"), .int(Int64(object["data"]?.objectValue?.count ?? 0)), Cells.age(object, now)]
    }

    static let namespace = BuiltinPrinter(columns: [column("Status"), age]) { object, now in
        [.string(object[path: ["status", "phase"]]?.stringValue ?? ""), Cells.age(object, now)]
    }

    static let serviceAccount = BuiltinPrinter(columns: [column("Secrets", "integer"), age]) { object, now in
        [.int(Int64(object["secrets"]?.arrayValue?.count ?? 0)), Cells.age(object, now)]
    }

    static let lease = BuiltinPrinter(columns: [column("Holder"), age]) { object, now in
        [.string(object[path: ["spec", "holderIdentity"]]?.stringValue ?? ""), Cells.age(object, now)]
    }

    static let service = BuiltinPrinter(columns: [column("Type"), column("Cluster-IP"), column("External-IP"), column("Port(s)"),
                                                  age, column("Selector", priority: 1)]) { object, now in
        let spec = object["spec"] ?? [:]
        let type = spec["type"]?.stringValue ?? "ClusterIP"
        let clusterIP = spec["clusterIPs"]?.arrayValue?.first?.stringValue ?? spec["clusterIP"]?.stringValue ?? "<none>"
        let ports = (spec["ports"]?.arrayValue ?? []).map { port -> String in
            let number = port["port"]?.intValue ?? 0
            let proto = port["protocol"]?.stringValue ?? "TCP"
            if let nodePort = port["nodePort"]?.intValue, nodePort > 0 { return "\(number):\(nodePort)/\(proto)" }
            return "\(number)/\(proto)"
        }.joined(separator: ",")
        return [.string(type), .string(clusterIP.isEmpty ? "<none>" : clusterIP), .string(Cells.serviceExternalIP(object, type: type)),
                .string(ports.isEmpty ? "<none>" : ports), Cells.age(object, now), .string(Cells.labels(spec["selector"]))]
    }

    static let node = BuiltinPrinter(columns: [column("Status"), column("Roles"), age, column("Version"),
                                               column("Internal-IP", priority: 1), column("External-IP", priority: 1),
                                               column("OS-Image", priority: 1), column("Kernel-Version", priority: 1),
                                               column("Container-Runtime", priority: 1)]) { object, now in
        var status: [String] = []
        if let ready = (object[path: ["status", "conditions"]]?.arrayValue ?? []).first(where: { $0["type"] == "Ready" }) {
            status.append(ready["status"] == "True" ? "Ready" : "NotReady")
        } else {
            status.append("Unknown")
        }
        if object[path: ["spec", "unschedulable"]]?.boolValue == true { status.append("SchedulingDisabled") }
        var roles = Set<String>()
        for (key, value) in object[path: ["metadata", "labels"]]?.objectValue ?? [:] {
            if key.hasPrefix("node-role.kubernetes.io/") {
                let role = String(key.dropFirst("node-role.kubernetes.io/".count))
                if !role.isEmpty { roles.insert(role) }
            } else if key == "kubernetes.io/role", let role = value.stringValue, !role.isEmpty {
                roles.insert(role)
            }
        }
        let info = object[path: ["status", "nodeInfo"]] ?? [:]
        func address(_ type: String) -> String {
            (object[path: ["status", "addresses"]]?.arrayValue ?? []).first { $0["type"]?.stringValue == type }?["address"]?.stringValue ?? "<none>"
        }
        func known(_ key: String) -> JSONValue {
            let value = info[key]?.stringValue ?? ""
            return .string(value.isEmpty ? "<unknown>" : value)
        }
        return [.string(status.joined(separator: ",")), .string(roles.isEmpty ? "<none>" : roles.sorted().joined(separator: ",")),
                Cells.age(object, now), .string(info["kubeletVersion"]?.stringValue ?? ""),
                .string(address("InternalIP")), .string(address("ExternalIP")),
                known("osImage"), known("kernelVersion"), known("containerRuntimeVersion")]
    }

    static let persistentVolumeClaim = BuiltinPrinter(columns: [column("Status"), column("Volume"), column("Capacity"),
                                                                column("Access Modes"), column("StorageClass"),
                                                                column("VolumeAttributesClass"), age,
                                                                column("VolumeMode", priority: 1)]) { object, now in
        let bound = !(object[path: ["spec", "volumeName"]]?.stringValue ?? "").isEmpty
        let capacity = bound ? object[path: ["status", "capacity", "storage"]]?.stringValue ?? "" : ""
        let modes = bound ? Cells.accessModes(object[path: ["status", "accessModes"]]) : ""
        let className = object[path: ["spec", "storageClassName"]]?.stringValue
            ?? object[path: ["metadata", "annotations", "volume.beta.kubernetes.io/storage-class"]]?.stringValue ?? ""
        let attributesClass = object[path: ["status", "currentVolumeAttributesClassName"]]?.stringValue ?? ""
        let phase = object[path: ["metadata", "deletionTimestamp"]] != nil ? "Terminating" : object[path: ["status", "phase"]]?.stringValue ?? ""
        return [.string(phase), .string(object[path: ["spec", "volumeName"]]?.stringValue ?? ""), .string(capacity), .string(modes),
                .string(className), .string(attributesClass.isEmpty ? "<unset>" : attributesClass), Cells.age(object, now),
                .string(object[path: ["spec", "volumeMode"]]?.stringValue ?? "<unset>")]
    }

    static let endpoints = BuiltinPrinter(columns: [column("Endpoints"), age]) { object, now in
        var addresses: [String] = []
        for subset in object["subsets"]?.arrayValue ?? [] {
            let ports = (subset["ports"]?.arrayValue ?? []).compactMap { $0["port"]?.intValue }
            for address in subset["addresses"]?.arrayValue ?? [] {
                let ip = address["ip"]?.stringValue ?? ""
                if ports.isEmpty { addresses.append(ip) } else { addresses += ports.map { "\(ip):\($0)" } }
            }
        }
        let text = Cells.listWithMore(addresses, max: 3)
        return [.string(text == "<unset>" ? "<none>" : text), Cells.age(object, now)]
    }

    static let endpointSlice = BuiltinPrinter(columns: [column("AddressType"), column("Ports"), column("Endpoints"), age]) { object, now in
        let ports = (object["ports"]?.arrayValue ?? []).map { port in
            port["port"]?.intValue.map(String.init) ?? port["name"]?.stringValue ?? "*"
        }
        let addresses = (object["endpoints"]?.arrayValue ?? []).flatMap { $0["addresses"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        return [.string(object["addressType"]?.stringValue ?? ""), .string(Cells.listWithMore(ports, max: 3)),
                .string(Cells.listWithMore(addresses, max: 3)), Cells.age(object, now)]
    }

    static let podDisruptionBudget = BuiltinPrinter(columns: [column("Min Available"), column("Max Unavailable"),
                                                              column("Allowed Disruptions", "integer"), age]) { object, now in
        func intOrString(_ value: JSONValue?) -> String {
            guard let value, value != .null else { return "N/A" }
            return value.stringValue ?? value.intValue.map(String.init) ?? "N/A"
        }
        return [.string(intOrString(object[path: ["spec", "minAvailable"]])), .string(intOrString(object[path: ["spec", "maxUnavailable"]])),
                .int(object[path: ["status", "disruptionsAllowed"]]?.intValue ?? 0), Cells.age(object, now)]
    }

    static let role = BuiltinPrinter(columns: [column("Created At")]) { object, _ in
        let created = object[path: ["metadata", "creationTimestamp"]]?.stringValue.flatMap(KubeTime.parse)
        return [.string(created.map(KubeTime.format) ?? "<unknown>")]
    }

    static let roleBinding = BuiltinPrinter(columns: [column("Role"), age, column("Users", priority: 1), column("Groups", priority: 1),
                                                      column("ServiceAccounts", priority: 1)]) { object, now in
        let roleRef = "\(object[path: ["roleRef", "kind"]]?.stringValue ?? "")/\(object[path: ["roleRef", "name"]]?.stringValue ?? "")"
        var users: [String] = [], groups: [String] = [], accounts: [String] = []
        for subject in object["subjects"]?.arrayValue ?? [] {
            let name = subject["name"]?.stringValue ?? ""
            switch subject["kind"]?.stringValue {
            case "User": users.append(name)
            case "Group": groups.append(name)
            case "ServiceAccount": accounts.append("\(subject["namespace"]?.stringValue ?? "")/\(name)")
            default: break
            }
        }
        return [.string(roleRef), Cells.age(object, now), .string(users.joined(separator: ", ")),
                .string(groups.joined(separator: ", ")), .string(accounts.joined(separator: ", "))]
    }

    static let validatingAdmissionPolicy = BuiltinPrinter(columns: [column("Validations", "integer"), column("ParamKind"), age]) { object, now in
        var paramKind = "<unset>"
        if let kind = object[path: ["spec", "paramKind"]], kind != .null {
            paramKind = "\(kind["apiVersion"]?.stringValue ?? "")/\(kind["kind"]?.stringValue ?? "")"
        }
        return [.int(Int64(object[path: ["spec", "validations"]]?.arrayValue?.count ?? 0)), .string(paramKind), Cells.age(object, now)]
    }

    /// Events: no NAME first; kubectl shows LAST SEEN TYPE REASON OBJECT MESSAGE.
    static let event = BuiltinPrinter(columns: [column("Last Seen"), column("Type"), column("Reason"), column("Object"),
                                                column("Subobject", priority: 1), column("Source", priority: 1), column("Message"),
                                                column("First Seen", priority: 1), column("Count", priority: 1),
                                                column("Name", priority: 1, format: "name")], namesFirst: false) { object, now in
        let core = Cells.coreEvent(object)
        let eventTime = core["eventTime"]
        var first = Cells.since(core["firstTimestamp"], now)
        if core["firstTimestamp"]?.stringValue == nil { first = Cells.since(eventTime, now) }
        var last = core["lastTimestamp"]?.stringValue == nil ? first : Cells.since(core["lastTimestamp"], now)
        var count = core["count"]?.intValue ?? 0
        if let series = core["series"], series != .null {
            last = Cells.since(series["lastObservedTime"], now)
            count = series["count"]?.intValue ?? count
        } else if count == 0 {
            count = 1
        }
        let involved = core["involvedObject"] ?? [:]
        let kind = (involved["kind"]?.stringValue ?? "").lowercased()
        let target = (involved["name"]?.stringValue ?? "").isEmpty ? kind : "\(kind)/\(involved["name"]?.stringValue ?? "")"
        var source = [core[path: ["source", "component"]]?.stringValue ?? core["reportingComponent"]?.stringValue ?? ""]
        if let host = core[path: ["source", "host"]]?.stringValue ?? core["reportingInstance"]?.stringValue, !host.isEmpty { source.append(host) }
        return [.string(last), .string(core["type"]?.stringValue ?? ""), .string(core["reason"]?.stringValue ?? ""), .string(target),
                .string(involved["fieldPath"]?.stringValue ?? ""), .string(source.filter { !$0.isEmpty }.joined(separator: ", ")),
                .string((core["message"]?.stringValue ?? "").trimmingCharacters(in: .whitespacesAndNewlines)),
                .string(first), .int(count), .string(core[path: ["metadata", "name"]]?.stringValue ?? "")]
    }
}
