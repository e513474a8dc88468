import KubeCore

/// MaskingRule (`mr`): extra secrets to hide from agents, on top of the built-in masking that
/// always runs (Secret data, service-account tokens, the gateway's own credentials).
///
/// AgentConnections pick rules in their namespace with `spec.maskingRuleSelector`. Structural
/// `fieldRules` apply first, then text patterns (`detectors`, `customPatterns`) on every string
/// and on plain-text bodies; `envNamePatterns` mask container env `value`s by variable name.
/// A regex that does not compile sets `Ready=False, reason=InvalidSpec` naming the field.
public struct MaskingRule: AgentGateObject {
    public static let kindInfo = AgentGateKinds.maskingRule

    public var apiVersion: String
    public var kind: String
    public var metadata: ObjectMeta
    public var spec: MaskingRuleSpec
    public var status: MaskingRuleStatus?

    public init(metadata: ObjectMeta, spec: MaskingRuleSpec, status: MaskingRuleStatus? = nil) {
        self.apiVersion = AgentGateGroup.apiVersion
        self.kind = Self.kindInfo.kind
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

/// At least one of `fieldRules`, `detectors`, `customPatterns`, `envNamePatterns` (the CRD requires it).
public struct MaskingRuleSpec: Codable, Sendable, Hashable {
    /// Fields masked by path, unique by name; applied before the text patterns.
    public var fieldRules: [MaskingFieldRule]?
    /// Built-in secret detectors that use this rule's replacement (all of them run with the
    /// fixed mask anyway).
    public var detectors: [SecretDetector]?
    /// Regexes whose matches are masked in free text, unique by name.
    public var customPatterns: [CustomPattern]?
    /// Container env variable names whose `value`s are masked, on top of the built-in PASSWORD,
    /// TOKEN, SECRET, KEY and CREDENTIAL. Case-insensitive: a plain name matches anywhere in the
    /// variable name, a `*` glob (`*_PASS`) the whole name, anything else is a regex.
    public var envNamePatterns: [String]?
    /// How a masked value is rendered; defaults to a fixed mask.
    public var replacement: MaskReplacement?

    public init(fieldRules: [MaskingFieldRule]? = nil, detectors: [SecretDetector]? = nil,
                customPatterns: [CustomPattern]? = nil, envNamePatterns: [String]? = nil,
                replacement: MaskReplacement? = nil) {
        self.fieldRules = fieldRules
        self.detectors = detectors
        self.customPatterns = customPatterns
        self.envNamePatterns = envNamePatterns
        self.replacement = replacement
    }
}

/// Masks fields at `paths` in objects of the listed resources (absent lists match all).
/// Path syntax: dot-separated field names, `*` for every key of a map, `[*]` for every list
/// item, e.g. `data.*`, `spec.template.spec.containers[*].args`.
public struct MaskingFieldRule: Codable, Sendable, Hashable {
    /// Unique within the MaskingRule.
    public var name: String
    /// API groups of the objects (`""` is the core group).
    public var apiGroups: [String]?
    /// Resources in plural form (`configmaps`).
    public var resources: [String]?
    /// Field paths from the object's top level (syntax above).
    public var paths: [String]

    public init(name: String, apiGroups: [String]? = nil, resources: [String]? = nil, paths: [String]) {
        self.name = name
        self.apiGroups = apiGroups
        self.resources = resources
        self.paths = paths
    }
}

/// The secret formats the masking engine recognises without a regex from the user.
public enum SecretDetector: String, Codable, Sendable, Hashable, CaseIterable {
    case jwt
    case pemPrivateKey
    case awsAccessKey
    case awsSecretKey
    case gcpServiceAccountKey
    case githubToken
    case gitlabToken
    case slackToken
    case bearerToken
    case passwordAssignment
}

/// A user regular expression whose matches are masked; `name` shows in recordings.
public struct CustomPattern: Codable, Sendable, Hashable {
    public var name: String
    /// ICU syntax. Every match is masked whole, whatever groups it has; a pattern that names a
    /// capture group `secret` has only that group masked (`api_key=(?<secret>[A-Za-z0-9]+)`).
    public var regex: String
    public init(name: String, regex: String) {
        self.name = name
        self.regex = regex
    }
}

/// How a rule's masked values are written; default style `Mask` with `********`.
public struct MaskReplacement: Codable, Sendable, Hashable {
    /// `Mask` writes `mask`; `Hash` writes a keyed hash so equal secrets stay correlatable.
    public var style: MaskStyle?
    /// Text written in place of a secret with style `Mask`; default `********`.
    public var mask: String?

    public static let defaultMask = "********"

    public init(style: MaskStyle? = nil, mask: String? = nil) {
        self.style = style
        self.mask = mask
    }
}

public enum MaskStyle: String, Codable, Sendable, Hashable, CaseIterable {
    case mask = "Mask"
    case hash = "Hash"
}

/// Written by the operator.
public struct MaskingRuleStatus: Codable, Sendable, Hashable {
    /// The generation this status describes.
    public var observedGeneration: Int64?
    /// Text patterns compiled from detectors, custom patterns and env name patterns.
    public var compiledPatterns: Int32?
    /// `Ready`, `Reconciling`, `Stalled` (kstatus); a bad regex is `Stalled`, `InvalidSpec`.
    public var conditions: [Condition]?

    public init(observedGeneration: Int64? = nil, compiledPatterns: Int32? = nil, conditions: [Condition]? = nil) {
        self.observedGeneration = observedGeneration
        self.compiledPatterns = compiledPatterns
        self.conditions = conditions
    }
}
