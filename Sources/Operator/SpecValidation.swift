import AgentGateAPI
import Foundation
import KubeCore
import Masking

/// Checks what the CRD schemas cannot: durations against each other, selectors, URLs and
/// regexes. Each problem names the field and says what to fix; the reconcilers turn them
/// into `Ready=False, reason=InvalidSpec` (and `Stalled=True`), never a crash or a retry loop.
enum SpecValidation {
    /// A problem with one field.
    struct Problem: Equatable, CustomStringConvertible {
        var field: String
        var message: String
        var description: String { "\(field): \(message)" }
    }

    static let minimumTokenTTL: Double = 600
    static let maximumTokenTTL: Double = 86_400

    static func validate(_ spec: AgentConnectionSpec) -> [Problem] {
        var problems: [Problem] = []
        let issuer = spec.identity.issuer
        if let url = URL(string: issuer), let scheme = url.scheme, let host = url.host, !host.isEmpty {
            let loopback = ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host)
            if scheme != "https" && !(scheme == "http" && loopback) {
                problems.append(Problem(field: "spec.identity.issuer",
                                        message: "\"\(issuer)\" must be an https URL (http is accepted only on loopback, for the dev issuer)"))
            }
        } else {
            problems.append(Problem(field: "spec.identity.issuer", message: "\"\(issuer)\" is not an absolute URL"))
        }
        if spec.identity.audiences.isEmpty {
            problems.append(Problem(field: "spec.identity.audiences", message: "must name at least one audience"))
        }
        if (spec.identity.allowedSubjects ?? []).isEmpty && (spec.identity.allowedGroups ?? []).isEmpty {
            problems.append(Problem(field: "spec.identity", message: "allowedSubjects or allowedGroups must admit someone"))
        }
        let credentials = spec.credentials ?? CredentialPolicy()
        let ttl = credentials.tokenTTLSeconds
        let rotateBefore = credentials.rotateBeforeSeconds
        if ttl == nil {
            problems.append(Problem(field: "spec.credentials.tokenTTL", message: "\"\(credentials.tokenTTL ?? "")\" is not a duration such as 1h or 30m"))
        } else if let ttl, ttl < minimumTokenTTL || ttl > maximumTokenTTL {
            problems.append(Problem(field: "spec.credentials.tokenTTL",
                                    message: "\(GoDuration.format(ttl)) is outside 10m...24h (TokenRequest refuses shorter tokens)"))
        }
        if rotateBefore == nil {
            problems.append(Problem(field: "spec.credentials.rotateBefore",
                                    message: "\"\(credentials.rotateBefore ?? "")\" is not a duration such as 10m"))
        } else if let ttl, let rotateBefore, rotateBefore >= ttl {
            problems.append(Problem(field: "spec.credentials.rotateBefore",
                                    message: "\(GoDuration.format(rotateBefore)) must be shorter than tokenTTL (\(GoDuration.format(ttl)))"))
        }
        if let selector = spec.maskingRuleSelector {
            do {
                _ = try selector.asSelector()
            } catch {
                problems.append(Problem(field: "spec.maskingRuleSelector", message: "\(error)"))
            }
        }
        if let approval = spec.approval {
            if approval.timeoutSeconds == nil {
                problems.append(Problem(field: "spec.approval.timeout", message: "\"\(approval.timeout ?? "")\" is not a duration such as 10m"))
            }
            if !(approval.rules ?? []).isEmpty && (approval.approverGroups ?? []).isEmpty {
                problems.append(Problem(field: "spec.approval.approverGroups", message: "rules hold requests, so someone must be able to approve them"))
            }
        }
        return problems
    }

    static func validate(_ spec: RecordingPolicySpec) -> [Problem] {
        var problems: [Problem] = []
        if let retention = spec.retentionSeconds {
            if retention < 3600 {
                problems.append(Problem(field: "spec.retention", message: "\(GoDuration.format(retention)) is shorter than the minimum of 1h"))
            }
        } else {
            problems.append(Problem(field: "spec.retention", message: "\"\(spec.retention ?? "")\" is not a duration such as 720h"))
        }
        if let max = spec.capture?.maxBodyBytes, max < 0 {
            problems.append(Problem(field: "spec.capture.maxBodyBytes", message: "\(max) must not be negative"))
        }
        var names = Set<String>()
        for (index, alert) in (spec.alerts ?? []).enumerated() {
            let field = "spec.alerts[\(index)]"
            if !names.insert(alert.name).inserted {
                problems.append(Problem(field: "\(field).name", message: "\"\(alert.name)\" is used by another alert"))
            }
            if alert.threshold < 1 {
                problems.append(Problem(field: "\(field).threshold", message: "\(alert.threshold) must be at least 1"))
            }
            if let window = alert.windowSeconds {
                if window < 1 || window > 86_400 {
                    problems.append(Problem(field: "\(field).window", message: "\(GoDuration.format(window)) is outside 1s...24h"))
                }
            } else {
                problems.append(Problem(field: "\(field).window", message: "\"\(alert.window ?? "")\" is not a duration such as 1m"))
            }
        }
        return problems
    }

    /// Compiles a MaskingRule's text patterns with the gateway's own engine; returns how many
    /// compiled, or the problems (a bad or catastrophic regex names the pattern and the reason).
    static func compile(_ spec: MaskingRuleSpec) -> (compiled: Int, problems: [Problem]) {
        var problems: [Problem] = []
        var compiled = spec.detectors?.count ?? 0
        for (index, pattern) in (spec.customPatterns ?? []).enumerated() {
            do {
                _ = try PatternCompiler.compile(name: pattern.name, pattern: pattern.regex)
                compiled += 1
            } catch {
                problems.append(Problem(field: "spec.customPatterns[\(index)].regex", message: error.description))
            }
        }
        for (index, pattern) in (spec.envNamePatterns ?? []).enumerated() {
            if let problem = MaskingPolicy.envNamePatternProblem(pattern) {
                problems.append(Problem(field: "spec.envNamePatterns[\(index)]", message: problem))
            } else {
                compiled += 1
            }
        }
        for (ruleIndex, rule) in (spec.fieldRules ?? []).enumerated() {
            for (pathIndex, path) in rule.paths.enumerated() {
                do {
                    _ = try FieldRule.parse(path)
                } catch {
                    problems.append(Problem(field: "spec.fieldRules[\(ruleIndex)].paths[\(pathIndex)]", message: error.description))
                }
            }
        }
        return (compiled, problems)
    }

    static func summary(_ problems: [Problem]) -> String {
        problems.map(\.description).joined(separator: "; ")
    }
}
