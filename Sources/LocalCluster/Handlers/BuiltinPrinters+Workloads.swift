import Foundation
import KubeCore

/// Printers of Pods and the workload kinds (kube-apiserver's `printPod`, `printDeployment`,
/// `printReplicaSet`, `printStatefulSet`, `printDaemonSet`, `printJob`, `printCronJob`).
extension BuiltinPrinters {
    static let containers = column("Containers", priority: 1, description: "Names of each container in the template.")
    static let images = column("Images", priority: 1, description: "Images referenced by each container in the template.")
    static let selector = column("Selector", priority: 1)

    static let pod = BuiltinPrinter(
        columns: [column("Ready", description: "The aggregate readiness state of this pod for accepting traffic."),
                  column("Status", description: "The aggregate status of the containers in this pod."),
                  column("Restarts", description: "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
                  age, column("IP", priority: 1), column("Node", priority: 1), column("Nominated Node", priority: 1),
                  column("Readiness Gates", priority: 1)],
        cells: { object, now in PodRow(object).cells(now: now) },
        conditions: { object in
            switch object[path: ["status", "phase"]]?.stringValue {
            case "Succeeded":
                return [["type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."]]
            case "Failed":
                return [["type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."]]
            default:
                return []
            }
        })

    static let deployment = BuiltinPrinter(columns: [column("Ready"), column("Up-to-date", "integer"), column("Available", "integer"),
                                                     age, containers, images, selector]) { object, now in
        let desired = object[path: ["spec", "replicas"]]?.intValue ?? 1
        let status = object["status"] ?? [:]
        let (names, images) = Cells.containers(object)
        return [.string("\(status["readyReplicas"]?.intValue ?? 0)/\(desired)"), .int(status["updatedReplicas"]?.intValue ?? 0),
                .int(status["availableReplicas"]?.intValue ?? 0), Cells.age(object, now), .string(names), .string(images),
                .string(Cells.selector(object[path: ["spec", "selector"]], none: ""))]
    }

    static let replicaSet = BuiltinPrinter(columns: [column("Desired", "integer"), column("Current", "integer"), column("Ready", "integer"),
                                                     age, containers, images, selector]) { object, now in
        let (names, images) = Cells.containers(object)
        return [.int(object[path: ["spec", "replicas"]]?.intValue ?? 1), .int(object[path: ["status", "replicas"]]?.intValue ?? 0),
                .int(object[path: ["status", "readyReplicas"]]?.intValue ?? 0), Cells.age(object, now), .string(names), .string(images),
                .string(Cells.selector(object[path: ["spec", "selector"]]))]
    }

    static let statefulSet = BuiltinPrinter(columns: [column("Ready"), age, containers, images]) { object, now in
        let (names, images) = Cells.containers(object)
        let ready = object[path: ["status", "readyReplicas"]]?.intValue ?? 0
        return [.string("\(ready)/\(object[path: ["spec", "replicas"]]?.intValue ?? 1)"), Cells.age(object, now), .string(names), .string(images)]
    }

    static let daemonSet = BuiltinPrinter(columns: [column("Desired", "integer"), column("Current", "integer"), column("Ready", "integer"),
                                                    column("Up-to-date", "integer"), column("Available", "integer"),
                                                    column("Node Selector"), age, containers, images, selector]) { object, now in
        let status = object["status"] ?? [:]
        func count(_ key: String) -> JSONValue { .int(status[key]?.intValue ?? 0) }
        let (names, images) = Cells.containers(object)
        return [count("desiredNumberScheduled"), count("currentNumberScheduled"), count("numberReady"), count("updatedNumberScheduled"),
                count("numberAvailable"), .string(Cells.labels(object[path: ["spec", "template", "spec", "nodeSelector"]])),
                Cells.age(object, now), .string(names), .string(images), .string(Cells.selector(object[path: ["spec", "selector"]]))]
    }

    static let job = BuiltinPrinter(columns: [column("Status"), column("Completions"), column("Duration"), age, containers, images,
                                              selector]) { object, now in
        let conditions = (object[path: ["status", "conditions"]]?.arrayValue ?? []).filter { $0["status"] == "True" }
        func has(_ type: String) -> Bool { conditions.contains { $0["type"]?.stringValue == type } }
        let status: String
        if has("Complete") { status = "Complete" }
        else if has("Failed") { status = "Failed" }
        else if object[path: ["metadata", "deletionTimestamp"]] != nil { status = "Terminating" }
        else if has("Suspended") { status = "Suspended" }
        else if has("FailureTarget") { status = "FailureTarget" }
        else if has("SuccessCriteriaMet") { status = "SuccessCriteriaMet" }
        else { status = "Running" }
        let succeeded = object[path: ["status", "succeeded"]]?.intValue ?? 0
        let completions: String
        if let wanted = object[path: ["spec", "completions"]]?.intValue {
            completions = "\(succeeded)/\(wanted)"
        } else if let parallelism = object[path: ["spec", "parallelism"]]?.intValue, parallelism > 1 {
            completions = "\(succeeded)/1 of \(parallelism)"
        } else {
            completions = "\(succeeded)/1"
        }
        var duration = ""
        if let start = object[path: ["status", "startTime"]]?.stringValue.flatMap(KubeTime.parse) {
            let end = object[path: ["status", "completionTime"]]?.stringValue.flatMap(KubeTime.parse) ?? now
            duration = TableConverter.humanDuration(end.timeIntervalSince(start))
        }
        let (names, images) = Cells.containers(object)
        return [.string(status), .string(completions), .string(duration), Cells.age(object, now), .string(names), .string(images),
                .string(Cells.selector(object[path: ["spec", "selector"]]))]
    }

    static let cronJob = BuiltinPrinter(columns: [column("Schedule"), column("Timezone"), column("Suspend", "boolean"),
                                                  column("Active", "integer"), column("Last Schedule"), age, containers, images,
                                                  selector]) { object, now in
        let spec = object["spec"] ?? [:]
        let template = object[path: ["spec", "jobTemplate"]] ?? [:]
        let (names, images) = Cells.containers(template)
        let lastSchedule = object[path: ["status", "lastScheduleTime"]] == nil ? "<none>" : Cells.since(object[path: ["status", "lastScheduleTime"]], now)
        return [.string(spec["schedule"]?.stringValue ?? ""), .string(spec["timeZone"]?.stringValue ?? "<none>"),
                .bool(spec["suspend"]?.boolValue ?? false), .int(Int64(object[path: ["status", "active"]]?.arrayValue?.count ?? 0)),
                .string(lastSchedule), Cells.age(object, now), .string(names), .string(images),
                .string(Cells.selector(template[path: ["spec", "selector"]]))]
    }
}

/// One pod's READY, STATUS and RESTARTS as `printPod` works them out from its status.
struct PodRow {
    let pod: JSONValue

    init(_ pod: JSONValue) { self.pod = pod }

    func cells(now: Date) -> [JSONValue] {
        let spec = pod["spec"] ?? [:]
        let status = pod["status"] ?? [:]
        let phase = status["phase"]?.stringValue ?? ""
        var reason = status["reason"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } ?? phase
        let conditions = status["conditions"]?.arrayValue ?? []
        if conditions.contains(where: { $0["type"] == "PodScheduled" && $0["reason"] == "SchedulingGated" }) {
            reason = "SchedulingGated"
        }
        let initSpecs = spec["initContainers"]?.arrayValue ?? []
        func restartable(_ name: String?) -> Bool {
            initSpecs.first { $0["name"]?.stringValue == name }?["restartPolicy"]?.stringValue == "Always"
        }
        var total = (spec["containers"]?.arrayValue?.count ?? 0) + initSpecs.filter { restartable($0["name"]?.stringValue) }.count
        var ready = 0
        var restarts = 0
        var sidecarRestarts = 0
        var lastRestart: Date?
        var lastSidecarRestart: Date?
        func finished(_ container: JSONValue) -> Date? {
            container[path: ["lastState", "terminated", "finishedAt"]]?.stringValue.flatMap(KubeTime.parse)
        }
        var initializing = false
        for (index, container) in (status["initContainerStatuses"]?.arrayValue ?? []).enumerated() {
            let count = Int(container["restartCount"]?.intValue ?? 0)
            restarts += count
            if let date = finished(container), lastRestart.map({ $0 < date }) ?? true { lastRestart = date }
            let name = container["name"]?.stringValue
            if restartable(name) {
                sidecarRestarts += count
                if let date = finished(container), lastSidecarRestart.map({ $0 < date }) ?? true { lastSidecarRestart = date }
            }
            let terminated = container[path: ["state", "terminated"]]
            let waitingReason = container[path: ["state", "waiting", "reason"]]?.stringValue ?? ""
            if let terminated, terminated["exitCode"]?.intValue ?? 0 == 0 { continue }
            if restartable(name), container["started"]?.boolValue == true {
                if container["ready"]?.boolValue == true { ready += 1 }
                continue
            }
            if let terminated {
                let text = terminated["reason"]?.stringValue ?? ""
                if !text.isEmpty {
                    reason = "Init:" + text
                } else if let signal = terminated["signal"]?.intValue, signal != 0 {
                    reason = "Init:Signal:\(signal)"
                } else {
                    reason = "Init:ExitCode:\(terminated["exitCode"]?.intValue ?? 0)"
                }
            } else if !waitingReason.isEmpty && waitingReason != "PodInitializing" {
                reason = "Init:" + waitingReason
            } else {
                reason = "Init:\(index)/\(initSpecs.count)"
            }
            initializing = true
            break
        }
        let initialized = conditions.contains { $0["type"] == "Initialized" && $0["status"] == "True" }
        if !initializing || initialized {
            restarts = sidecarRestarts
            lastRestart = lastSidecarRestart
            var hasRunning = false
            for container in (status["containerStatuses"]?.arrayValue ?? []).reversed() {
                restarts += Int(container["restartCount"]?.intValue ?? 0)
                if let date = finished(container), lastRestart.map({ $0 < date }) ?? true { lastRestart = date }
                let waiting = container[path: ["state", "waiting", "reason"]]?.stringValue ?? ""
                let terminated = container[path: ["state", "terminated"]]
                if !waiting.isEmpty {
                    reason = waiting
                } else if let terminated, let text = terminated["reason"]?.stringValue, !text.isEmpty {
                    reason = text
                } else if let terminated {
                    if let signal = terminated["signal"]?.intValue, signal != 0 {
                        reason = "Signal:\(signal)"
                    } else {
                        reason = "ExitCode:\(terminated["exitCode"]?.intValue ?? 0)"
                    }
                } else if container["ready"]?.boolValue == true, container[path: ["state", "running"]] != nil {
                    hasRunning = true
                    ready += 1
                }
            }
            if reason == "Completed" && hasRunning {
                reason = conditions.contains { $0["type"] == "Ready" && $0["status"] == "True" } ? "Running" : "NotReady"
            }
        }
        if pod[path: ["metadata", "deletionTimestamp"]] != nil {
            if status["reason"]?.stringValue == "NodeLost" {
                reason = "Unknown"
            } else if phase != "Succeeded" && phase != "Failed" {
                reason = "Terminating"
            }
        }
        total = max(total, 0)
        var restartText = String(restarts)
        if restarts != 0, let lastRestart {
            restartText = "\(restarts) (\(TableConverter.humanDuration(now.timeIntervalSince(lastRestart))) ago)"
        }
        let podIP = status["podIPs"]?.arrayValue?.first?["ip"]?.stringValue ?? status["podIP"]?.stringValue ?? ""
        let nodeName = spec["nodeName"]?.stringValue ?? ""
        let nominated = status["nominatedNodeName"]?.stringValue ?? ""
        var gates = "<none>"
        let readinessGates = spec["readinessGates"]?.arrayValue ?? []
        if !readinessGates.isEmpty {
            let satisfied = readinessGates.filter { gate in
                conditions.first { $0["type"] == gate["conditionType"] }?["status"] == "True"
            }.count
            gates = "\(satisfied)/\(readinessGates.count)"
        }
        return [.string("\(ready)/\(total)"), .string(reason), .string(restartText), PrinterCells.age(pod, now),
                .string(podIP.isEmpty ? "<none>" : podIP), .string(nodeName.isEmpty ? "<none>" : nodeName),
                .string(nominated.isEmpty ? "<none>" : nominated), .string(gates)]
    }
}

/// Cell formats the printers share, as kube's printers write them.
enum PrinterCells {
    /// AGE: the humanized time since `metadata.creationTimestamp`.
    static func age(_ object: JSONValue, _ now: Date) -> JSONValue {
        .string(since(object[path: ["metadata", "creationTimestamp"]], now))
    }

    /// `translateTimestampSince`: `<unknown>` for no time, else a humanized duration.
    static func since(_ value: JSONValue?, _ now: Date) -> String {
        guard let date = value?.stringValue.flatMap(KubeTime.parse) else { return "<unknown>" }
        return TableConverter.humanDuration(now.timeIntervalSince(date))
    }

    /// `labels.FormatLabels`: `k=v` sorted by key, comma-separated; `<none>` when empty.
    static func labels(_ map: JSONValue?) -> String {
        let pairs = (map?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.stringValue ?? "")" }
        return pairs.isEmpty ? "<none>" : pairs.joined(separator: ",")
    }

    /// `metav1.FormatLabelSelector`: the selector's string form, `none` when it selects everything.
    static func selector(_ value: JSONValue?, none: String = "<none>") -> String {
        guard let value, value != .null else { return none }
        guard let decoded = try? value.decode(LabelSelector.self), let parsed = try? decoded.asSelector() else {
            return "<error>"
        }
        let text = parsed.description
        return text.isEmpty ? none : text
    }

    /// CONTAINERS and IMAGES of the pod template under `spec.template`.
    static func containers(_ workload: JSONValue) -> (names: String, images: String) {
        let containers = workload[path: ["spec", "template", "spec", "containers"]]?.arrayValue ?? []
        return (containers.map { $0["name"]?.stringValue ?? "" }.joined(separator: ","),
                containers.map { $0["image"]?.stringValue ?? "" }.joined(separator: ","))
    }

    /// A Service's EXTERNAL-IP (`getServiceExternalIP`).
    static func serviceExternalIP(_ service: JSONValue, type: String) -> String {
        let external = service[path: ["spec", "externalIPs"]]?.arrayValue?.compactMap(\.stringValue) ?? []
        switch type {
        case "ClusterIP", "NodePort":
            return external.isEmpty ? "<none>" : external.joined(separator: ",")
        case "LoadBalancer":
            let ingress = (service[path: ["status", "loadBalancer", "ingress"]]?.arrayValue ?? []).compactMap {
                $0["ip"]?.stringValue ?? $0["hostname"]?.stringValue
            }
            let all = ingress + external
            return all.isEmpty ? "<pending>" : all.joined(separator: ",")
        case "ExternalName":
            return service[path: ["spec", "externalName"]]?.stringValue ?? ""
        default:
            return "<unknown>"
        }
    }

    /// `GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order.
    static func accessModes(_ value: JSONValue?) -> String {
        let modes = Set(value?.arrayValue?.compactMap(\.stringValue) ?? [])
        return [("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP")]
            .filter { modes.contains($0.0) }.map(\.1).joined(separator: ",")
    }

    /// `listWithMoreString`: the first `max` items, then `+ N more...`; `<unset>` when empty.
    static func listWithMore(_ items: [String], max: Int) -> String {
        let shown = items.prefix(max).joined(separator: ",")
        if items.count > max { return "\(shown) + \(items.count - max) more..." }
        return shown.isEmpty ? "<unset>" : shown
    }

    /// An `events.k8s.io/v1` Event in `v1` field names (the printer reads the core form).
    static func coreEvent(_ event: JSONValue) -> JSONValue {
        guard event["regarding"] != nil || event["note"] != nil else { return event }
        var core = event
        let renamed = [("regarding", "involvedObject"), ("note", "message"), ("reportingController", "reportingComponent"),
                       ("deprecatedSource", "source"), ("deprecatedCount", "count"),
                       ("deprecatedFirstTimestamp", "firstTimestamp"), ("deprecatedLastTimestamp", "lastTimestamp")]
        for (from, to) in renamed where event[from] != nil { core[to] = event[from] }
        return core
    }
}
