import AgentGateAPI
import Masking

/// The masking policy of one connection: the built-in rules (every structural rule and
/// detector, fixed mask) with the connection's selected MaskingRules on top.
///
/// - A rule's `detectors`, `customPatterns` and `fieldRules` use the rule's replacement
///   (`Mask` with its text, or `Hash`: HMAC-SHA256 with the gateway's key, shortened);
///   a detector listed by several rules takes the replacement of the first by name.
/// - `envNamePatterns` add to the default ones (PASSWORD, TOKEN, SECRET, KEY, CREDENTIAL).
/// - The connection's own token is always scrubbed.
/// - A part that does not compile (the operator reports the rule InvalidSpec and normally
///   keeps such a rule out of the configuration) is skipped and named in `problems`; the
///   rest of the policy still applies, so one bad pattern never switches masking off.
enum ConnectionMaskingPolicy {
    static func build(rules: [NamedMaskingRule], token: String, hashKey: [UInt8]) -> (policy: MaskingPolicy, problems: [String]) {
        var policy = MaskingPolicy.standard(hashKey: hashKey, alwaysScrub: [token])
        var problems: [String] = []
        var claimedDetectors = Set<Detector>()
        for rule in rules.sorted(by: { $0.name < $1.name }) {
            let replacement = replacement(rule.spec.replacement)
            for detector in rule.spec.detectors ?? [] {
                guard let engineDetector = Detector(rawValue: detector.rawValue) else {
                    problems.append("MaskingRule \(rule.name): detector \(detector.rawValue) is unknown to this gateway")
                    continue
                }
                if claimedDetectors.insert(engineDetector).inserted { policy.detectors[engineDetector] = replacement }
            }
            for pattern in rule.spec.customPatterns ?? [] {
                do {
                    policy.customPatterns.append(try PatternCompiler.compile(name: "\(rule.name)/\(pattern.name)", pattern: pattern.regex,
                                                                            replacement: replacement))
                } catch {
                    problems.append("MaskingRule \(rule.name): \(error)")
                }
            }
            for pattern in rule.spec.envNamePatterns ?? [] where !policy.envNamePatterns.contains(pattern) {
                policy.envNamePatterns.append(pattern)
            }
            for fieldRule in rule.spec.fieldRules ?? [] {
                do {
                    policy.fieldRules.append(try FieldRule(name: "\(rule.name)/\(fieldRule.name)", apiGroups: fieldRule.apiGroups,
                                                           resources: fieldRule.resources, paths: fieldRule.paths, replacement: replacement))
                } catch {
                    problems.append("MaskingRule \(rule.name): field rule \(fieldRule.name): \(error)")
                }
            }
        }
        return (policy, problems)
    }

    static func replacement(_ spec: MaskReplacement?) -> Replacement {
        switch spec?.style ?? .mask {
        case .hash: return .keyedHash
        case .mask: return .fixed(spec?.mask ?? MaskReplacement.defaultMask)
        }
    }
}
