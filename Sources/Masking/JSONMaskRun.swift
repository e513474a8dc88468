/// One pass of the masker over a JSON text: walks the ``JSONTape`` in document order, copies
/// every byte it keeps and rewrites only the string values (and, under a masked field, the
/// scalars) it must hide.
///
/// Where a value sits decides what happens to it:
/// - a resource (the document, `items[]` of a list, `object` of a watch event or a Table row,
///   any object with a `kind`) gets the structural rules of its kind; list items inherit the
///   list's kind minus `List` (SecretList → Secret), and the caller's kind hint fills a gap;
/// - every string is scanned by the text detectors, after its member name is checked
///   (`"DB_PASSWORD": "..."`), and a string holding a JSON object is masked recursively
///   (annotations, configs kept in ConfigMaps, docker and kube configs).
/// Masked strings stay strings; a number or boolean under a masked field becomes the mask
/// string (its type changes, its value does not leak).
///
/// The walk recurses at most ``depthLimit`` containers deep: a deeper subtree is postponed
/// and walked later from a shallow stack (see `PostponedSubtrees.swift`), so a document
/// nested thousands of levels deep is masked by the same rules, without exhausting the stack.
struct JSONMaskRun {
    typealias Buffer = UnsafeBufferPointer<UInt8>
    let engine: MaskingEngine
    /// `engine.scanner` for the prefilter call made on every string value: called through a
    /// guaranteed reference, as the engine (held above) keeps it alive for the whole run, it
    /// costs no retain and release around each call.
    let scanner: Unmanaged<TextScanner>
    let b: Buffer
    let tape: JSONTape
    var out: [UInt8] = []
    var cursor = 0
    /// The keyword hits of the string value being looked at, reused from one to the next.
    /// Only string values are scanned: keys, numbers and structure never reach a detector.
    var hits: [TextScanner.Hit] = []
    /// Inside a docker config or kubeconfig document: credential members are masked outright.
    let credentialDocument: Bool
    /// Set when this run masks a Secret's last-applied annotation: its data is masked with this.
    let forcedSecret: Replacement?
    let nesting: Int
    /// Field rules that apply to this document's resource objects.
    let fieldRules: [FieldRule]
    /// Values selected by a field rule (token index → replacement), masked when the walk reaches them.
    var selected: [Int: Replacement] = [:]
    /// Containers the walk is inside of now; at ``depthLimit`` it postpones the next one.
    var depth = 0
    let depthLimit: Int
    /// Subtrees put off by the walk, in document order, with where their output goes in `out`.
    var postponed: [PostponedSubtree] = []

    /// JSON documents held in string values that are masked as documents, one inside another
    /// (an annotation's JSON holding a config's JSON...); deeper ones are masked as text.
    static let maxNesting = 4
    static let lastApplied = Array("kubectl.kubernetes.io/last-applied-configuration".utf8)
    static let credentialKeys: [[UInt8]] = ["auth", "password", "identitytoken", "registrytoken", "token", "client-key-data",
                                            "id-token", "refresh-token", "access-token", "client-secret"].map { Array($0.utf8) }
    static let secretTableSafeColumns: Set<String> = ["Name", "Type", "Data", "Age"]

    init(engine: MaskingEngine, bytes: Buffer, tape: JSONTape, credentialDocument: Bool, forcedSecret: Replacement?, nesting: Int,
         fieldRules: [FieldRule] = [], depthLimit: Int = JSONMaskRun.maxWalkDepth) {
        self.fieldRules = fieldRules
        self.depthLimit = depthLimit
        self.engine = engine
        self.scanner = Unmanaged.passUnretained(engine.scanner)
        self.b = bytes
        self.tape = tape
        self.credentialDocument = credentialDocument
        self.forcedSecret = forcedSecret
        self.nesting = nesting
        out.reserveCapacity(bytes.count + 64)
    }

    mutating func run(kindHint: String?) -> [UInt8] {
        for root in tape.roots { walkResource(root, inherited: kindHint.map { Array($0.utf8) }, topLevel: true) }
        out.append(contentsOf: Buffer(rebasing: b[cursor...]))
        return postponed.isEmpty ? out : spliceInPostponed()
    }

    // MARK: - Token helpers

    @inline(__always) func token(_ t: Int) -> JSONTape.Token { tape.tokens[t] }

    /// Calls `body(key, value)` for each member of object `t`.
    @inline(__always) func forEachMember(_ t: Int, _ body: (Int, Int) -> Void) {
        var k = t + 1
        let end = Int(token(t).next)
        while k < end {
            body(k, k + 1)
            k = Int(token(k + 1).next)
        }
    }

    /// Content of a string token, decoded when it holds escapes.
    func stringBytes(_ t: Int) -> [UInt8] {
        let tok = token(t)
        let lo = Int(tok.start) + 1, hi = Int(tok.end) - 1
        return tok.escaped ? JSONEscaper.unescape(b, lo, hi) : Array(Buffer(rebasing: b[lo..<hi]))
    }

    func keyIs(_ k: Int, _ name: [UInt8]) -> Bool {
        let tok = token(k)
        if tok.escaped { return stringBytes(k) == name }
        let lo = Int(tok.start) + 1
        guard Int(tok.end) - 1 - lo == name.count else { return false }
        for i in 0..<name.count where b[lo + i] != name[i] { return false }
        return true
    }

    func member(_ t: Int, _ name: [UInt8]) -> Int? {
        guard token(t).kind == .object else { return nil }
        var found: Int?
        forEachMember(t) { k, v in if found == nil, keyIs(k, name) { found = v } }
        return found
    }

    func stringMember(_ t: Int, _ name: [UInt8]) -> [UInt8]? {
        guard let v = member(t, name), token(v).kind == .string else { return nil }
        return stringBytes(v)
    }

    mutating func replace(_ t: Int, with bytes: [UInt8]) {
        let tok = token(t)
        out.append(contentsOf: Buffer(rebasing: b[cursor..<Int(tok.start)]))
        out.append(contentsOf: bytes)
        cursor = Int(tok.end)
    }

    /// Replaces token `t` with a JSON string holding `text` (escaped and quoted here).
    mutating func replaceWithString(_ t: Int, _ text: [UInt8]) {
        var quoted: [UInt8] = [0x22]
        JSONEscaper.appendEscaped(text, into: &quoted)
        quoted.append(0x22)
        replace(t, with: quoted)
    }

    // MARK: - Resources

    /// `topLevel`: an object of the body's resource (the document, a list item, a watch
    /// event's object), where field rules apply.
    mutating func walkResource(_ t: Int, inherited: [UInt8]?, topLevel: Bool = false) {
        if !selected.isEmpty, let rule = selected[t] { return maskAll(t, rule, base64: false) }
        guard token(t).kind == .object else { return walkPlain(t, key: nil) }
        if depth >= depthLimit { return postpone(t, .resource(inherited: inherited, topLevel: topLevel)) }
        let ownKind = stringMember(t, K.kind)
        let kind = ownKind ?? inherited
        if ownKind == nil, let object = member(t, K.object), token(object).kind == .object,
           member(t, K.type).map({ token($0).kind == .string }) == true {
            // A watch event: {"type": "...", "object": {...}}.
            return forEachMemberMut(t) { run, k, v in
                if v == object { run.walkResource(v, inherited: inherited, topLevel: topLevel) } else { run.walkPlain(v, key: k) }
            }
        }
        let isSecret = kind == K.secret
        // Items of `FooList` are Foos; items of a list that states no kind inherit the hint.
        let isList = ownKind.map { $0.count >= 4 && $0.suffix(4) == K.list[...] } ?? true
        var itemKind: [UInt8]? = inherited
        if let ownKind, isList { itemKind = ownKind == K.list ? nil : Array(ownKind.dropLast(4)) }
        let secretRule: Replacement? = forcedSecret ?? engine.rule(.secretData)
        if topLevel, !fieldRules.isEmpty, !(isList && member(t, K.items).map { token($0).kind == .array } == true) {
            for rule in fieldRules {
                for path in rule.paths { select(t, path[...], rule.replacement) }
            }
        }
        forEachMemberMut(t) { run, k, v in
            if !run.selected.isEmpty, let rule = run.selected[v] {
                run.maskAll(v, rule, base64: false)
            } else if run.keyIs(k, K.items), run.token(v).kind == .array, isList {
                run.forEachElement(v) { run, e in run.walkResource(e, inherited: itemKind, topLevel: topLevel) }
            } else if isSecret, let secretRule, run.keyIs(k, K.data) || run.keyIs(k, K.stringData) {
                run.maskAll(v, secretRule, base64: run.keyIs(k, K.data))
            } else if run.keyIs(k, K.metadata), run.token(v).kind == .object {
                run.walkMetadata(v, kind: kind, topLevel: topLevel)
            } else if kind == K.tokenRequest, run.keyIs(k, K.status), let rule = run.engine.rule(.tokenRequestToken),
                      run.token(v).kind == .object {
                run.forEachMemberMut(v) { run, k2, v2 in
                    if run.keyIs(k2, K.token) { run.maskAll(v2, rule, base64: false) } else { run.walkPlain(v2, key: k2) }
                }
            } else if kind == K.table, run.keyIs(k, K.rows), run.token(v).kind == .array {
                run.walkTableRows(t, rows: v, topLevel: topLevel)
            } else {
                run.walkPlain(v, key: k)
            }
        }
    }

    /// Table rows: the row objects are resources (objects of the body's resource when the Table
    /// is, so field rules cover them); in a table of Secrets (a row object of kind Secret, or a
    /// column described as a secret's) only the Name/Type/Data/Age cells are kept.
    mutating func walkTableRows(_ table: Int, rows: Int, topLevel: Bool) {
        var columns: [String] = []
        var secretTable = false
        if let defs = member(table, K.columnDefinitions), token(defs).kind == .array {
            forEachElement(defs) { run, d in
                columns.append(run.stringMember(d, K.name).map { String(decoding: $0, as: UTF8.self) } ?? "")
                if let text = run.stringMember(d, K.description), String(decoding: text, as: UTF8.self).lowercased().contains("secret") {
                    secretTable = true
                }
            }
        }
        let rule = engine.rule(.secretData)
        forEachElement(rows) { run, row in
            guard run.token(row).kind == .object else { return run.walkPlain(row, key: nil) }
            let object = run.member(row, K.object)
            let rowIsSecret = secretTable || object.flatMap { run.stringMember($0, K.kind) } == K.secret
            run.forEachMemberMut(row) { run, k, v in
                if run.keyIs(k, K.cells), run.token(v).kind == .array {
                    var column = 0
                    run.forEachElement(v) { run, cell in
                        let name = column < columns.count ? columns[column] : ""
                        column += 1
                        if rowIsSecret, let rule, !JSONMaskRun.secretTableSafeColumns.contains(name) {
                            run.maskAll(cell, rule, base64: false)
                        } else {
                            run.walkPlain(cell, key: nil)
                        }
                    }
                } else if v == object {
                    run.walkResource(v, inherited: rowIsSecret && secretTable ? K.secret : nil, topLevel: topLevel)
                } else {
                    run.walkPlain(v, key: k)
                }
            }
        }
    }

    // MARK: - Plain values

    /// Marks the values at `path` under `t` for masking.
    mutating func select(_ t: Int, _ path: ArraySlice<FieldRule.Component>, _ rule: Replacement) {
        guard let first = path.first else {
            selected[t] = rule
            return
        }
        let rest = path.dropFirst()
        switch first {
        case .member(let name):
            if let v = member(t, Array(name.utf8)) { select(v, rest, rule) }
        case .anyMember:
            guard token(t).kind == .object else { return }
            var values: [Int] = []
            forEachMember(t) { _, v in values.append(v) }
            for v in values { select(v, rest, rule) }
        case .anyItem, .item:
            guard token(t).kind == .array else { return }
            var e = t + 1, index = 0
            let end = Int(token(t).next)
            while e < end {
                if case .item(let wanted) = first, wanted != index {
                } else {
                    select(e, rest, rule)
                }
                e = Int(token(e).next)
                index += 1
            }
        }
    }

    mutating func walkPlain(_ t: Int, key: Int?) {
        if !selected.isEmpty, let rule = selected[t] { return maskAll(t, rule, base64: false) }
        switch token(t).kind {
        case .scalar: return
        case .string: return walkString(t, key: key)
        case .array:
            if depth >= depthLimit { return postpone(t, .plain(key: key)) }
            forEachElement(t) { run, e in run.walkPlain(e, key: nil) }
        case .object:
            if depth >= depthLimit { return postpone(t, .plain(key: key)) }
            if member(t, K.kind).map({ token($0).kind == .string }) == true { return walkResource(t, inherited: nil) }
            forEachMemberMut(t) { run, k, v in
                if run.keyIs(k, K.env), run.token(v).kind == .array, let rule = run.engine.rule(.envValue) {
                    run.walkEnv(v, rule)
                } else if run.credentialDocument, JSONMaskRun.credentialKeys.contains(where: { run.keyIs(k, $0) }),
                          run.token(v).kind == .string {
                    let rule = run.engine.rule(.dockerConfig) ?? run.engine.rule(.kubeconfig) ?? .mask
                    run.maskAll(v, rule, base64: run.keyIs(k, K.clientKeyData))
                } else {
                    run.walkPlain(v, key: k)
                }
            }
        }
    }

    mutating func walkEnv(_ list: Int, _ rule: Replacement) {
        forEachElement(list) { run, e in
            guard let name = run.stringMember(e, K.name), run.engine.envNameMatches(name) else {
                return run.walkPlain(e, key: nil)
            }
            run.forEachMemberMut(e) { run, k, v in
                if run.keyIs(k, K.value) { run.maskAll(v, rule, base64: false) } else { run.walkPlain(v, key: k) }
            }
        }
    }

    /// Replaces every scalar under `t` (keys stay visible; null stays null).
    mutating func maskAll(_ t: Int, _ rule: Replacement, base64: Bool) {
        let tok = token(t)
        switch tok.kind {
        case .object:
            if depth >= depthLimit { return postpone(t, .maskAll(rule, base64: base64)) }
            forEachMemberMut(t) { run, _, v in run.maskAll(v, rule, base64: base64) }
        case .array:
            if depth >= depthLimit { return postpone(t, .maskAll(rule, base64: base64)) }
            forEachElement(t) { run, e in run.maskAll(e, rule, base64: base64) }
        case .string, .scalar:
            if tok.kind == .scalar, b[Int(tok.start)] == UInt8(ascii: "n") { return }
            // The value is read where it lies unless escapes must be decoded first (a Secret's
            // base64 values never have any), and the replacement is written straight to `out`.
            let rendered: [UInt8]
            if tok.kind == .string, tok.escaped {
                rendered = engine.scanner.replacer.render(rule, value: stringBytes(t), base64: base64)
            } else {
                let quote = tok.kind == .string ? 1 : 0
                let value = Buffer(rebasing: b[(Int(tok.start) + quote)..<(Int(tok.end) - quote)])
                rendered = engine.scanner.replacer.render(rule, value: value, base64: base64)
            }
            out.append(contentsOf: Buffer(rebasing: b[cursor..<Int(tok.start)]))
            out.append(0x22)
            JSONEscaper.appendEscaped(rendered, into: &out)
            out.append(0x22)
            cursor = Int(tok.end)
        }
    }

    /// Member-name rules, a nested JSON document, then the text detectors.
    mutating func walkString(_ t: Int, key: Int?) {
        let tok = token(t)
        let lo = Int(tok.start) + 1, hi = Int(tok.end) - 1
        if let key, let category = keyCategory(key), let rule = engine.keyRule(category, value: stringBytes(t)) {
            return maskAll(t, rule, base64: false)
        }
        if hi - lo >= 2, nesting < JSONMaskRun.maxNesting, b[JSONTape.skipSpace(b, lo)] == UInt8(ascii: "{") {
            let content = stringBytes(t)
            let markers = engine.credentialDocumentMarkers(content)
            if let masked = engine.maskDocument(content, kindHint: nil, credentialDocument: markers, forcedSecret: nil, nesting: nesting + 1,
                                                depthLimit: nestedDepthLimit) {
                if masked != content { replaceWithString(t, masked) }
                return
            }
        }
        // Keywords may run past the closing quote (up to the document's end), as in a scan of
        // the whole document: a literal holding a quote is still found where it lines up.
        if !hits.isEmpty { hits.removeAll(keepingCapacity: true) }
        scanner._withUnsafeGuaranteedRef { $0.collectHits(b, lo, hi, keywordsEndBy: b.count, into: &hits) }
        if tok.escaped {
            if hits.isEmpty, !engine.scanner.needsEverySegment, engine.scanner.keywordsSurviveEscaping,
               !tok.unicodeEscaped { return }
            let content = stringBytes(t)
            content.withUnsafeBufferPointer { cb in
                var local: [TextScanner.Hit] = []
                engine.scanner.collectHits(cb, 0, cb.count, into: &local)
                guard !local.isEmpty || engine.scanner.needsEverySegment else { return }
                let found = engine.scanner.matches(cb, 0, cb.count, hits: local[...], lineScoped: false)
                guard !found.isEmpty else { return }
                var plain: [UInt8] = []
                engine.scanner.write(cb, 0, cb.count, found, jsonEscape: false, into: &plain)
                replaceWithString(t, plain)
            }
            return
        }
        guard !hits.isEmpty || engine.scanner.needsEverySegment else { return }
        let found = engine.scanner.matches(b, lo, hi, hits: hits[...], lineScoped: false)
        guard !found.isEmpty else { return }
        out.append(contentsOf: Buffer(rebasing: b[cursor..<lo]))
        engine.scanner.write(b, lo, hi, found, jsonEscape: true, into: &out)
        cursor = hi
    }

    /// What a member name says about its value (`DB_PASSWORD`, `private_key`...), without
    /// allocating for the common case of an unescaped name.
    @inline(__always) func keyCategory(_ k: Int) -> MaskingEngine.KeyCategory? {
        let tok = token(k)
        if tok.escaped {
            return stringBytes(k).withUnsafeBufferPointer { engine.keyCategory($0) }
        }
        let lo = Int(tok.start) + 1, hi = Int(tok.end) - 1
        // Most names are turned away by their last byte alone (`uid`, `manager`, `labels`...).
        if hi > lo, !engine.nameMayHaveCategory(endingIn: b[hi - 1]) { return nil }
        return engine.keyCategory(Buffer(rebasing: b[lo..<hi]))
    }

    // MARK: - Mutating iteration

    mutating func forEachMemberMut(_ t: Int, _ body: (inout JSONMaskRun, Int, Int) -> Void) {
        depth += 1
        defer { depth -= 1 }
        var k = t + 1
        let end = Int(token(t).next)
        while k < end {
            let next = Int(token(k + 1).next)
            body(&self, k, k + 1)
            k = next
        }
    }

    mutating func forEachElement(_ t: Int, _ body: (inout JSONMaskRun, Int) -> Void) {
        depth += 1
        defer { depth -= 1 }
        var e = t + 1
        let end = Int(token(t).next)
        while e < end {
            let next = Int(token(e).next)
            body(&self, e)
            e = next
        }
    }
}

/// Member names and kinds the walker compares against, as bytes.
enum K {
    static let kind = Array("kind".utf8), object = Array("object".utf8), type = Array("type".utf8)
    static let items = Array("items".utf8), list = Array("List".utf8), secret = Array("Secret".utf8)
    static let data = Array("data".utf8), stringData = Array("stringData".utf8), metadata = Array("metadata".utf8)
    static let annotations = Array("annotations".utf8), tokenRequest = Array("TokenRequest".utf8)
    static let status = Array("status".utf8), token = Array("token".utf8), table = Array("Table".utf8)
    static let rows = Array("rows".utf8), cells = Array("cells".utf8), columnDefinitions = Array("columnDefinitions".utf8)
    static let name = Array("name".utf8), description = Array("description".utf8), env = Array("env".utf8)
    static let value = Array("value".utf8), clientKeyData = Array("client-key-data".utf8)
}
