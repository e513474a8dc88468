import KubeCore
import Masking
import XCTest

/// MaskingRule field rules: values at paths of the objects of some resources.
final class FieldRuleTests: XCTestCase {
    func masker(_ rules: [FieldRule]) -> Masker {
        Masker(policy: MaskingPolicy(fieldRules: rules))
    }

    func json(_ bytes: [UInt8]) throws -> JSONValue { try JSONValue(parsing: bytes) }

    func testPathsOfTheAddressedResourceAreMaskedInObjectsListsAndWatchEvents() throws {
        let rule = try FieldRule(name: "cm-keys", apiGroups: [""], resources: ["configmaps"], paths: ["data.api-key", "data.nested"])
        let m = masker([rule])
        let configMaps = MaskedResource(group: "", resource: "configmaps")
        let object = #"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a"},"data":{"api-key":"k-123","nested":"{\"x\":1}","plain":"keep"}}"#
        let masked = try json(m.maskJSON(Array(object.utf8), resource: configMaps))
        XCTAssertEqual(masked[path: ["data", "api-key"]]?.stringValue, "***MASKED***")
        XCTAssertEqual(masked[path: ["data", "nested"]]?.stringValue, "***MASKED***")
        XCTAssertEqual(masked[path: ["data", "plain"]]?.stringValue, "keep")

        let list = #"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":"a"},"data":{"api-key":"k-1"}},{"metadata":{"name":"b"},"data":{"api-key":"k-2","other":"v"}}]}"#
        let maskedList = try json(m.maskJSON(Array(list.utf8), resource: configMaps))
        XCTAssertEqual(maskedList[path: ["items"]]?.arrayValue?.compactMap { $0[path: ["data", "api-key"]]?.stringValue }, ["***MASKED***", "***MASKED***"])
        XCTAssertEqual(maskedList[path: ["items"]]?.arrayValue?.last?[path: ["data", "other"]]?.stringValue, "v")

        let event = #"{"type":"MODIFIED","object":{"kind":"ConfigMap","metadata":{"name":"a"},"data":{"api-key":"k-3"}}}"#
        let maskedEvent = try json(m.maskWatchEvent(Array(event.utf8), resource: configMaps))
        XCTAssertEqual(maskedEvent[path: ["object", "data", "api-key"]]?.stringValue, "***MASKED***")

        // Another resource: untouched, byte for byte.
        let secretsOfOthers = Array(object.utf8)
        XCTAssertEqual(m.maskJSON(secretsOfOthers, resource: MaskedResource(group: "", resource: "pods")), secretsOfOthers)
        XCTAssertEqual(m.maskJSON(secretsOfOthers), secretsOfOthers, "an unknown resource gets only rules that name none")
    }

    func testWildcardsIndexesAndWholeSubtrees() throws {
        let rule = try FieldRule(name: "args", resources: ["deployments"],
                                 paths: ["spec.template.spec.containers[*].args", "spec.template.spec.containers[0].image", "metadata.labels.*"])
        let m = masker([rule])
        let deployment = #"{"kind":"Deployment","metadata":{"name":"web","labels":{"a":"1","b":"2"}},"spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"c1","image":"img:1","args":["--password","p1"]},{"name":"c2","image":"img:2","args":["--token=t2"]}]}}}}"#
        let masked = try json(m.maskJSON(Array(deployment.utf8), resource: MaskedResource(group: "apps", resource: "deployments")))
        let containers = masked[path: ["spec", "template", "spec", "containers"]]?.arrayValue ?? []
        XCTAssertEqual(containers[0]["args"], ["***MASKED***", "***MASKED***"])
        XCTAssertEqual(containers[1]["args"], ["***MASKED***"])
        XCTAssertEqual(containers[0]["image"]?.stringValue, "***MASKED***")
        XCTAssertEqual(containers[1]["image"]?.stringValue, "img:2", "[0] selects the first item only")
        XCTAssertEqual(masked[path: ["metadata", "labels", "a"]]?.stringValue, "***MASKED***")
        XCTAssertEqual(masked[path: ["metadata", "name"]]?.stringValue, "web")
        XCTAssertEqual(masked[path: ["spec", "replicas"]]?.intValue, 3)
    }

    func testKeyedHashReplacementIsStableAndDoesNotRevealTheValue() throws {
        let rule = try FieldRule(name: "h", paths: ["spec.apiKey"], replacement: .keyedHash)
        let m = Masker(policy: MaskingPolicy(fieldRules: [rule], hashKey: Array("gateway-key".utf8)))
        func hashed(_ value: String) throws -> String {
            let body = #"{"kind":"Widget","spec":{"apiKey":"\#(value)"}}"#
            return try json(m.maskJSON(Array(body.utf8)))[path: ["spec", "apiKey"]]?.stringValue ?? ""
        }
        let first = try hashed("sk-live-1"), again = try hashed("sk-live-1"), other = try hashed("sk-live-2")
        XCTAssertTrue(first.hasPrefix("hmac:"), first)
        XCTAssertEqual(first, again, "the same value hashes the same, so an auditor sees when it changed")
        XCTAssertNotEqual(first, other)
        XCTAssertFalse(first.contains("sk-live"))
    }

    /// `kubectl get` asks for a Table; `?includeObject=Object` puts each whole object in its row.
    func testAFieldRuleMasksTheObjectInATableRow() throws {
        let rule = try FieldRule(name: "urls", apiGroups: [""], resources: ["configmaps"], paths: ["data.DATABASE_URL"])
        let table = #"{"kind":"Table","apiVersion":"meta.k8s.io/v1","columnDefinitions":[{"name":"Name","type":"string"},{"name":"Data","type":"string"}],"rows":[{"cells":["app",1],"object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"app"},"data":{"DATABASE_URL":"postgres://app:Sup3rS3cret@db","LOG_LEVEL":"info"}}}]}"#
        let masked = try json(masker([rule]).maskJSON(Array(table.utf8), resource: MaskedResource(group: "", resource: "configmaps")))
        let object = masked["rows"]?.arrayValue?.first?["object"]
        XCTAssertEqual(object?[path: ["data", "DATABASE_URL"]], "***MASKED***")
        XCTAssertEqual(object?[path: ["data", "LOG_LEVEL"]], "info")
        XCTAssertEqual(masked["rows"]?.arrayValue?.first?["cells"], ["app", 1])
    }

    // MARK: - The last-applied annotation

    /// `kubectl apply` keeps the object as applied in an annotation: a field rule must reach
    /// the same path in there, in objects, lists and watch events alike.
    func testAFieldRuleMasksTheValueInsideTheLastAppliedAnnotation() throws {
        let rule = try FieldRule(name: "urls", apiGroups: [""], resources: ["configmaps"], paths: ["data.DATABASE_URL"])
        let m = masker([rule])
        let configMaps = MaskedResource(group: "", resource: "configmaps")
        let applied: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "app", "namespace": "demo"],
                                  "data": ["DATABASE_URL": "postgres://app:Sup3rS3cret@db:5432/app", "LOG_LEVEL": "info"]]
        var object = applied
        object.set(.string(applied.serializedString()), at: ["metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"])

        func assertMasked(_ masked: JSONValue, file: StaticString = #filePath, line: UInt = #line) throws {
            XCTAssertEqual(masked[path: ["data", "DATABASE_URL"]], "***MASKED***", file: file, line: line)
            let annotation = masked[path: ["metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"]]?.stringValue ?? ""
            XCTAssertFalse(annotation.contains("Sup3rS3cret"), annotation, file: file, line: line)
            let inner = try JSONValue(parsing: annotation)
            XCTAssertEqual(inner[path: ["data", "DATABASE_URL"]], "***MASKED***", file: file, line: line)
            XCTAssertEqual(inner[path: ["data", "LOG_LEVEL"]], "info", "other keys stay as applied", file: file, line: line)
        }
        try assertMasked(json(m.maskJSON(object.serialized(), resource: configMaps)))
        let list: JSONValue = ["kind": "ConfigMapList", "apiVersion": "v1", "metadata": [:], "items": [object, object]]
        for item in try json(m.maskJSON(list.serialized(), resource: configMaps))["items"]?.arrayValue ?? [] { try assertMasked(item) }
        let event: JSONValue = ["type": "ADDED", "object": object]
        try assertMasked(json(m.maskWatchEvent(event.serialized(), resource: configMaps))["object"] ?? .null)
    }

    func testALastAppliedAnnotationThatIsNotJSONIsMaskedWhole() throws {
        let rule = try FieldRule(name: "urls", resources: ["configmaps"], paths: ["data.DATABASE_URL"])
        let body = #"{"kind":"ConfigMap","metadata":{"name":"app","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"DATABASE_URL\":\"postgres://app:Sup3rS3cret@db\"}"}},"data":{}}"#
        let masked = try json(masker([rule]).maskJSON(Array(body.utf8), resource: MaskedResource(group: "", resource: "configmaps")))
        XCTAssertEqual(masked[path: ["metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"]], "***MASKED***")
    }

    func testBadPathsAreRejectedNamingThePathAndTheProblem() {
        for (path, problem) in [("", "is empty"), ("data..x", "empty segment"), ("spec.items[x]", "[x]"), ("[0]", "no member name"),
                                ("a]b", "bracket")] {
            XCTAssertThrowsError(try FieldRule.parse(path), path) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("\"\(path)\"") && text.contains(problem), text)
            }
        }
        XCTAssertNoThrow(try FieldRule.parse("data.*"))
        XCTAssertNoThrow(try FieldRule.parse("spec.containers[*].env[2].value"))
    }
}
