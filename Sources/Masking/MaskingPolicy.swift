/// What the masking engine hides and how it writes what it hid.
///
/// A `MaskingPolicy` is the compiled, merged form of the MaskingRule objects selected by an
/// AgentConnection plus the gateway's own credentials. It is a plain value: building a
/// ``Masker`` from it precomputes the prefilter tables once, after which masking is pure.
///
/// Three layers, applied in this order by the ``Masker``:
/// 1. Structural rules (``StructuralRule``): fields known to hold secrets, found by position
///    (a Secret's `data`, an env var named like a password, a TokenRequest's token...).
/// 2. Text detectors (``Detector``) and custom patterns (``CompiledPattern``): run on every
///    string value of a JSON document and on plain text (logs, exec output, errors).
/// 3. Always-scrub literals (``alwaysScrub``): the gateway's own injected credentials,
///    replaced wherever they appear, even when every rule above is switched off.
public struct MaskingPolicy: Sendable {
    /// Enabled structural rules and the replacement each one writes.
    public var structuralRules: [StructuralRule: Replacement]
    /// Enabled built-in text detectors and the replacement each one writes.
    public var detectors: [Detector: Replacement]
    /// Custom patterns from MaskingRules, compiled by ``PatternCompiler``.
    public var customPatterns: [CompiledPattern]
    /// Paths masked outright in the objects of some resources (MaskingRule `fieldRules`).
    public var fieldRules: [FieldRule]
    /// Env var names whose `value` is masked: an env var matches when its name contains one of
    /// these as a substring, compared case-insensitively (`DB_PASSWORD` contains `PASSWORD`).
    /// A pattern holding `*` is a glob over the whole name instead (`*_PASS`).
    public var envNamePatterns: [String]
    /// Literal secrets replaced wherever they appear (plain and base64-encoded), whatever the
    /// rules say: the credential the gateway injects upstream. Literals shorter than 8 bytes are
    /// ignored, because scrubbing short strings would mangle ordinary text.
    public var alwaysScrub: [String]
    /// Key of the keyed-hash replacement (HMAC-SHA256). Keep it secret and stable, so that the
    /// same value hashes the same across sessions and an auditor can tell that it changed.
    public var hashKey: [UInt8]

    /// Why an env-name pattern cannot be used, or nil: plain names match as substrings, `*`
    /// globs and regexes must compile (what the operator reports on a MaskingRule).
    public static func envNamePatternProblem(_ pattern: String) -> String? {
        MaskingEngine.envNamePatternProblem(pattern)
    }

    /// The env-name patterns used when a MaskingRule does not list its own.
    public static let defaultEnvNamePatterns = ["PASSWORD", "TOKEN", "SECRET", "KEY", "CREDENTIAL"]

    public init(
        structuralRules: [StructuralRule: Replacement] = [:],
        detectors: [Detector: Replacement] = [:],
        customPatterns: [CompiledPattern] = [],
        fieldRules: [FieldRule] = [],
        envNamePatterns: [String] = MaskingPolicy.defaultEnvNamePatterns,
        alwaysScrub: [String] = [],
        hashKey: [UInt8] = []
    ) {
        self.structuralRules = structuralRules
        self.detectors = detectors
        self.customPatterns = customPatterns
        self.fieldRules = fieldRules
        self.envNamePatterns = envNamePatterns
        self.alwaysScrub = alwaysScrub
        self.hashKey = hashKey
    }

    /// Every structural rule and every detector on, all with the same replacement. This is what
    /// a connection gets when no MaskingRule narrows it.
    public static func standard(
        replacement: Replacement = .mask, hashKey: [UInt8] = [], alwaysScrub: [String] = []
    ) -> MaskingPolicy {
        MaskingPolicy(
            structuralRules: Dictionary(uniqueKeysWithValues: StructuralRule.allCases.map { ($0, replacement) }),
            detectors: Dictionary(uniqueKeysWithValues: Detector.allCases.map { ($0, replacement) }),
            alwaysScrub: alwaysScrub,
            hashKey: hashKey
        )
    }

    /// Number of compiled text patterns (built-in detectors plus custom patterns), as
    /// MaskingRule status reports it.
    public var compiledPatternCount: Int { detectors.count + customPatterns.count }
}

/// How a masked value is written.
public enum Replacement: Sendable, Hashable {
    /// A fixed text, such as `***MASKED***`.
    case fixed(String)
    /// `hmac:` followed by the first 12 hex digits of HMAC-SHA256(policy key, value): the same
    /// value always gives the same text, so an auditor sees that a value changed, not the value.
    case keyedHash

    /// The default fixed mask.
    public static let mask = Replacement.fixed("***MASKED***")
}

/// Fields known by position to hold secrets.
public enum StructuralRule: String, CaseIterable, Sendable, Hashable {
    /// Values of a Secret's `data` and `stringData` (kind Secret, items of a SecretList, objects
    /// of watch events and Table rows). `data` values stay valid base64: they decode to the mask.
    case secretData
    /// The `kubectl.kubernetes.io/last-applied-configuration` annotation of a Secret: the JSON
    /// inside (the Secret's values in clear) has its data masked. The annotation of every
    /// object is masked as its object is (field rules, env values, detectors) whatever this
    /// rule says, and masked whole, with this rule's replacement, when it does not parse.
    case lastAppliedConfiguration
    /// `env[].value` of containers whose `name` matches ``MaskingPolicy/envNamePatterns``.
    case envValue
    /// `status.token` of a TokenRequest (`kubectl create token`).
    case tokenRequestToken
    /// `token`, `client-key-data`, `password` (and auth-provider tokens) of a kubeconfig held in a
    /// string value, YAML or JSON.
    case kubeconfig
    /// `auths.*.auth`, `password`, `identitytoken` of a docker config JSON held in a string value.
    case dockerConfig
}

/// Built-in text detectors. Each has a keyword prefilter so that text without the keyword is
/// skipped with a table lookup per byte.
public enum Detector: String, CaseIterable, Sendable, Hashable {
    /// JSON Web Tokens: `eyJ...` header, payload and signature in base64url.
    case jwt
    /// The body of a PEM private key block (`-----BEGIN ... PRIVATE KEY-----`); the BEGIN/END
    /// lines stay visible. A block with no END line is masked to the end of the text.
    case pemPrivateKey
    /// AWS access key ids (`AKIA`, `ASIA`... followed by 16 upper-case letters or digits).
    case awsAccessKey
    /// AWS secret access keys: 40 base64 characters after `aws_secret_access_key` /
    /// `SecretAccessKey`. A bare 40-character string is not matched (git SHAs look the same).
    case awsSecretKey
    /// The `private_key` value of a GCP service-account JSON key.
    case gcpServiceAccountKey
    /// GitHub tokens: `ghp_`, `gho_`, `ghs_`, `ghu_`, `ghr_`, `github_pat_`.
    case githubToken
    /// GitLab personal access tokens: `glpat-`.
    case gitlabToken
    /// Slack tokens: `xoxa-`, `xoxb-`, `xoxp-`, `xoxr-`, `xoxs-`.
    case slackToken
    /// The token after `Bearer ` (any case).
    case bearerToken
    /// `password=...`, `passwd: ...`, `secret=...`, `api_key=...`, `token: ...` and the same as a
    /// JSON member (`"DB_PASSWORD": "..."`). See ``PasswordHeuristics`` for the entropy check.
    case passwordAssignment
}
