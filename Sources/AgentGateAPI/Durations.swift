import KubeCore

/// Go-duration fields as seconds, with the CRD defaults applied, for the operator and gateway.
/// Each is `nil` only when the text is not a Go duration, which the CRD pattern rules out for
/// objects the API server admitted; callers treat `nil` as an InvalidSpec naming the field.

extension CredentialPolicy {
    public var tokenTTLSeconds: Double? { GoDuration.parse(tokenTTL ?? Self.defaultTokenTTL) }
    public var rotateBeforeSeconds: Double? { GoDuration.parse(rotateBefore ?? Self.defaultRotateBefore) }
}

extension ApprovalPolicy {
    public var timeoutSeconds: Double? { GoDuration.parse(timeout ?? Self.defaultTimeout) }
}

extension RecordingPolicySpec {
    public var retentionSeconds: Double? { GoDuration.parse(retention ?? Self.defaultRetention) }
}

extension AlertRule {
    public var windowSeconds: Double? { GoDuration.parse(window ?? Self.defaultWindow) }
}
