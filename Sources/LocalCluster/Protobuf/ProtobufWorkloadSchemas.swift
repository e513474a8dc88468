import KubeCore

/// The protobuf shapes of apps/v1 Deployment and batch/v1 Job as `kubectl create deployment`
/// and `kubectl create job` send them (k8s.io/api's generated.proto field numbers), with the
/// pod template they carry: the fields a pod template commonly sets, not every one. A field
/// not listed is skipped, as everywhere in ``KubernetesProtobuf``; clients that need the
/// others (probes, volumes, security contexts) send JSON, as kubectl does for `apply`.
///
/// Go pointer fields (`*int32`, `*bool`) are written only when set, so their zero is kept
/// (`.optionalInt`, `.bool`); plain fields are always written, so their zero is dropped
/// (`.int`, `.flag`), as Go's JSON `omitempty` drops it.
extension KubernetesProtobuf {
    /// metav1.LabelSelector.
    static let labelSelector: [Int: Field] = [
        1: .stringMap("matchLabels"),
        2: .repeatedMessage("matchExpressions", [1: .string("key"), 2: .string("operator"), 3: .repeatedString("values")]),
    ]

    /// core/v1 Container.
    static let container: [Int: Field] = [
        1: .string("name"), 2: .string("image"), 3: .repeatedString("command"), 4: .repeatedString("args"),
        5: .string("workingDir"),
        6: .repeatedMessage("ports", [1: .string("name"), 2: .int("hostPort"), 3: .int("containerPort"),
                                      4: .string("protocol"), 5: .string("hostIP")]),
        7: .repeatedMessage("env", [1: .string("name"), 2: .string("value")]),
        8: .message("resources", [1: .quantityMap("limits"), 2: .quantityMap("requests")]),
        9: .repeatedMessage("volumeMounts", [1: .string("name"), 2: .flag("readOnly"), 3: .string("mountPath"),
                                             4: .string("subPath")]),
        13: .string("terminationMessagePath"), 14: .string("imagePullPolicy"), 16: .flag("stdin"),
        17: .flag("stdinOnce"), 18: .flag("tty"), 20: .string("terminationMessagePolicy"),
    ]

    /// core/v1 PodTemplateSpec.
    static let podTemplateSpec: [Int: Field] = [
        1: .message("metadata", objectMeta),
        2: .message("spec", [
            2: .repeatedMessage("containers", container), 3: .string("restartPolicy"),
            4: .optionalInt("terminationGracePeriodSeconds"), 5: .optionalInt("activeDeadlineSeconds"),
            6: .string("dnsPolicy"), 7: .stringMap("nodeSelector"), 8: .string("serviceAccountName"),
            9: .string("serviceAccount"), 10: .string("nodeName"), 11: .flag("hostNetwork"),
            15: .repeatedMessage("imagePullSecrets", [1: .string("name")]), 16: .string("hostname"),
            17: .string("subdomain"), 19: .string("schedulerName"), 20: .repeatedMessage("initContainers", container),
            21: .bool("automountServiceAccountToken"), 24: .string("priorityClassName"), 30: .bool("enableServiceLinks"),
        ]),
    ]

    /// apps/v1 Deployment (spec only: a client's status is not stored on create).
    static let deployment: [Int: Field] = [
        1: .message("metadata", objectMeta),
        2: .message("spec", [
            1: .optionalInt("replicas"), 2: .message("selector", labelSelector), 3: .message("template", podTemplateSpec),
            4: .message("strategy", [1: .string("type"), 2: .message("rollingUpdate", [1: .intOrString("maxUnavailable"),
                                                                                      2: .intOrString("maxSurge")])]),
            5: .int("minReadySeconds"), 6: .optionalInt("revisionHistoryLimit"), 7: .flag("paused"),
            9: .optionalInt("progressDeadlineSeconds"),
        ]),
    ]

    /// batch/v1 Job (spec only).
    static let job: [Int: Field] = [
        1: .message("metadata", objectMeta),
        2: .message("spec", [
            1: .optionalInt("parallelism"), 2: .optionalInt("completions"), 3: .optionalInt("activeDeadlineSeconds"),
            4: .message("selector", labelSelector), 5: .bool("manualSelector"), 6: .message("template", podTemplateSpec),
            7: .optionalInt("backoffLimit"), 8: .optionalInt("ttlSecondsAfterFinished"), 9: .string("completionMode"),
            10: .bool("suspend"),
        ]),
    ]
}
