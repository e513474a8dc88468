/// The `kubectl.kubernetes.io/last-applied-configuration` annotation: `kubectl apply` keeps
/// the whole object as applied in it, as a JSON string, so every value a rule masks in the
/// object is there again in clear. The JSON inside is masked as the object itself is — with
/// the object's kind (a Secret's data by the last-applied rule), the field rules that apply to
/// the object, env values by name and the text detectors — and replaced whole when it cannot
/// be read as JSON: never returned less masked than the object.
extension JSONMaskRun {
    /// The metadata of an object of kind `kind` (`topLevel`: one of the body's resource objects,
    /// which field rules cover): annotations are plain values, but for the last-applied one.
    mutating func walkMetadata(_ m: Int, kind: [UInt8]?, topLevel: Bool) {
        if !selected.isEmpty, let rule = selected[m] { return maskAll(m, rule, base64: false) }
        forEachMemberMut(m) { run, k, v in
            guard run.keyIs(k, K.annotations), run.token(v).kind == .object, run.selected[v] == nil else { return run.walkPlain(v, key: k) }
            run.forEachMemberMut(v) { run, ak, av in
                if run.keyIs(ak, JSONMaskRun.lastApplied), run.token(av).kind == .string, run.selected[av] == nil {
                    run.maskLastApplied(av, kind: kind, topLevel: topLevel)
                } else {
                    run.walkPlain(av, key: ak)
                }
            }
        }
    }

    /// Masks the annotation's JSON as its object is masked; masks it whole if it does not parse
    /// or nests in more documents than the walk follows (``maxNesting``).
    mutating func maskLastApplied(_ t: Int, kind: [UInt8]?, topLevel: Bool) {
        let secretRule = kind == K.secret ? engine.rule(.lastAppliedConfiguration) : nil
        let rules = topLevel ? fieldRules : []
        let fallback = engine.rule(.lastAppliedConfiguration) ?? rules.first?.replacement ?? .mask
        let inner = stringBytes(t)
        guard nesting < JSONMaskRun.maxNesting,
              let masked = engine.maskDocument(inner, kindHint: kind.map { String(decoding: $0, as: UTF8.self) }, credentialDocument: false,
                                               forcedSecret: secretRule, nesting: nesting + 1, fieldRules: rules,
                                               depthLimit: nestedDepthLimit) else {
            return maskAll(t, fallback, base64: false)
        }
        if masked != inner { replaceWithString(t, masked) }
    }
}
