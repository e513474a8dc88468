import KubeCore
import XCTest

@testable import Masking

/// Structural rules: Secrets, last-applied annotations, env values, TokenRequests, kubeconfig
/// and docker-config payloads, in single objects, lists, watch events and Tables.
final class StructuralRuleTests: XCTestCase {
    let masker = Masker(policy: .standard(hashKey: Array("test-key".utf8)))
    static let maskedBase64 = "KioqTUFTS0VEKioq"   // base64("***MASKED***")

    func mask(_ json: String, kindHint: String? = nil) throws -> JSONValue {
        let out = masker.maskJSON(Array(json.utf8), kindHint: kindHint)
        return try JSONValue(parsing: out)
    }

    func testSecretDataIsMaskedAsBase64OfTheMaskAndStringDataAsPlainMask() throws {
        let out = try mask(#"{"apiVersion":"v1","data":{"password":"aHVudGVyMg=="},"kind":"Secret","metadata":{"name":"db"},"stringData":{"user":"admin"},"type":"Opaque"}"#)
        XCTAssertEqual(out[path: ["data", "password"]], .string(Self.maskedBase64))
        XCTAssertEqual(out[path: ["stringData", "user"]], "***MASKED***")
        XCTAssertEqual(out[path: ["metadata", "name"]], "db")
        XCTAssertEqual(out["type"], "Opaque")
    }

    func testSecretListItemsInheritTheListKind() throws {
        let out = try mask(#"{"kind":"SecretList","apiVersion":"v1","items":[{"metadata":{"name":"a"},"data":{"k":"dmFsdWU="}},{"metadata":{"name":"b"},"data":{"k2":"b3RoZXI="}}]}"#)
        XCTAssertEqual(out[path: ["items"]]?.arrayValue?[0][path: ["data", "k"]], .string(Self.maskedBase64))
        XCTAssertEqual(out[path: ["items"]]?.arrayValue?[1][path: ["data", "k2"]], .string(Self.maskedBase64))
        XCTAssertEqual(out[path: ["items"]]?.arrayValue?[1][path: ["metadata", "name"]], "b")
    }

    func testKindHintCoversAListWithoutKind() throws {
        let out = try mask(#"{"items":[{"data":{"k":"dmFsdWU="}}]}"#, kindHint: "Secret")
        XCTAssertEqual(out["items"]?.arrayValue?[0][path: ["data", "k"]], .string(Self.maskedBase64))
    }

    func testSecretKindAfterDataIsStillFound() throws {
        let out = try mask(#"{"data":{"k":"c2VjcmV0dmFsdWU="},"kind":"Secret"}"#)
        XCTAssertEqual(out[path: ["data", "k"]], .string(Self.maskedBase64))
    }

    func testNonStringValueUnderSecretDataBecomesTheMaskString() throws {
        let out = try mask(#"{"kind":"Secret","stringData":{"pin":1234,"on":true,"none":null}}"#)
        XCTAssertEqual(out[path: ["stringData", "pin"]], "***MASKED***")
        XCTAssertEqual(out[path: ["stringData", "on"]], "***MASKED***")
        XCTAssertEqual(out[path: ["stringData", "none"]], .null)
    }

    func testWatchEventObjectIsMaskedAsASecret() throws {
        let line = #"{"type":"ADDED","object":{"kind":"Secret","apiVersion":"v1","metadata":{"name":"x"},"data":{"t":"dG9rZW4="}}}"#
        let out = try JSONValue(parsing: masker.maskWatchEvent(Array(line.utf8)))
        XCTAssertEqual(out[path: ["object", "data", "t"]], .string(Self.maskedBase64))
        XCTAssertEqual(out["type"], "ADDED")
    }

    func testWatchEventWithKindHintMasksAnObjectThatStatesNoKind() throws {
        let line = #"{"type":"ADDED","object":{"metadata":{"name":"x"},"data":{"t":"dG9rZW4="}}}"#
        let out = try JSONValue(parsing: masker.maskWatchEvent(Array(line.utf8), kindHint: "Secret"))
        XCTAssertEqual(out[path: ["object", "data", "t"]], .string(Self.maskedBase64))
    }

    func testWatchStreamOfSeveralEventsIsMaskedEventByEvent() throws {
        let stream = #"{"type":"ADDED","object":{"kind":"Secret","data":{"a":"YQ=="}}}"# + "\n"
            + #"{"type":"MODIFIED","object":{"kind":"Secret","data":{"a":"Yg=="}}}"# + "\n"
        let out = String(decoding: masker.maskJSON(Array(stream.utf8)), as: UTF8.self)
        XCTAssertFalse(out.contains("YQ=="))
        XCTAssertFalse(out.contains("Yg=="))
        XCTAssertEqual(out.components(separatedBy: Self.maskedBase64).count, 3)
    }

    func testLastAppliedAnnotationOfASecretIsMaskedInside() throws {
        let inner = #"{"apiVersion":"v1","data":{"password":"aHVudGVyMg=="},"kind":"Secret","metadata":{"name":"db"}}"#
        let doc: JSONValue = ["kind": "Secret", "metadata": ["annotations": ["kubectl.kubernetes.io/last-applied-configuration": .string(inner)]], "data": ["password": "aHVudGVyMg=="]]
        let out = masker.maskJSON(doc.serialized())
        XCTAssertFalse(String(decoding: out, as: UTF8.self).contains("aHVudGVyMg=="))
        let annotation = try JSONValue(parsing: out)[path: ["metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"]]?.stringValue
        let parsed = try JSONValue(parsing: annotation ?? "")
        XCTAssertEqual(parsed[path: ["data", "password"]], .string(Self.maskedBase64))
        XCTAssertEqual(parsed[path: ["metadata", "name"]], "db")
    }

    func testUnparseableLastAppliedAnnotationOfASecretIsMaskedWhole() throws {
        let doc: JSONValue = ["kind": "Secret", "metadata": ["annotations": ["kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"p\":\"aHVudGVy"]]]
        let out = try JSONValue(parsing: masker.maskJSON(doc.serialized()))
        XCTAssertEqual(out[path: ["metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"]], "***MASKED***")
    }

    func testEnvValueIsMaskedWhenTheNameMatchesAndKeptOtherwise() throws {
        let pod = #"{"kind":"Pod","spec":{"containers":[{"name":"app","env":[{"name":"DB_PASSWORD","value":"hunter2"},{"name":"LOG_LEVEL","value":"debug"},{"value":"abc","name":"api_token"},{"name":"AWS_ACCESS_KEY_ID","value":"x"}]}]}}"#
        let out = try mask(pod)
        let env = out[path: ["spec", "containers"]]?.arrayValue?[0]["env"]?.arrayValue
        XCTAssertEqual(env?[0]["value"], "***MASKED***")
        XCTAssertEqual(env?[1]["value"], "debug")
        XCTAssertEqual(env?[2]["value"], "***MASKED***", "value before name, lower case")
        XCTAssertEqual(env?[3]["value"], "***MASKED***", "KEY matches")
    }

    func testEnvValuesNamedLikeSecretsAreMaskedInsideTheLastAppliedAnnotationOfADeployment() throws {
        let applied: JSONValue = ["apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "web"],
                                  "spec": ["template": ["spec": ["containers": [["name": "app", "env": [
                                      ["name": "DB_PASSWORD", "value": "hunter2-prod"], ["name": "LOG_LEVEL", "value": "debug"]]]]]]]]
        var deployment = applied
        deployment.set(.string(applied.serializedString()), at: ["metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"])
        let list: JSONValue = ["kind": "DeploymentList", "apiVersion": "apps/v1", "items": [deployment]]
        let out = masker.maskJSON(list.serialized())
        XCTAssertFalse(String(decoding: out, as: UTF8.self).contains("hunter2-prod"))
        let annotation = try JSONValue(parsing: out)["items"]?.arrayValue?.first?[path: ["metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"]]
        let env = try JSONValue(parsing: annotation?.stringValue ?? "")[path: ["spec", "template", "spec", "containers"]]?.arrayValue?.first?["env"]
        XCTAssertEqual(env?.arrayValue?.map { $0["value"] }, ["***MASKED***", "debug"])
    }

    func testEnvNamePatternsAcceptGlobsAndRegexes() throws {
        var policy = MaskingPolicy.standard()
        policy.envNamePatterns = ["*_PASS", "^SIGNING_.*$"]
        let m = Masker(policy: policy)
        let pod = #"{"kind":"Deployment","spec":{"template":{"spec":{"containers":[{"env":[{"name":"DB_PASS","value":"a"},{"name":"SIGNING_SALT","value":"b"},{"name":"PASSWORD","value":"c"}]}]}}}}"#
        let out = try JSONValue(parsing: m.maskJSON(Array(pod.utf8)))
        let env = out[path: ["spec", "template", "spec", "containers"]]?.arrayValue?[0]["env"]?.arrayValue
        XCTAssertEqual(env?[0]["value"], "***MASKED***")
        XCTAssertEqual(env?[1]["value"], "***MASKED***")
        XCTAssertEqual(env?[2]["value"], "c", "default patterns replaced")
    }

    func testTokenRequestStatusTokenIsMasked() throws {
        let out = try mask(#"{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","spec":{"audiences":["x"]},"status":{"token":"opaque-token-value","expirationTimestamp":"2026-01-01T00:00:00Z"}}"#)
        XCTAssertEqual(out[path: ["status", "token"]], "***MASKED***")
        XCTAssertEqual(out[path: ["status", "expirationTimestamp"]], "2026-01-01T00:00:00Z")
    }

    func testKubeconfigInAConfigMapHasItsCredentialsMasked() throws {
        let kubeconfig = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://k\nusers:\n- name: u\n  user:\n    token: abcdef0123456789\n    client-key-data: TFMwdExTMUNSVWRKVGc=\n    password: pa55word\n"
        let cm: JSONValue = ["kind": "ConfigMap", "data": ["config": .string(kubeconfig)]]
        let out = try JSONValue(parsing: masker.maskJSON(cm.serialized()))
        let text = out[path: ["data", "config"]]?.stringValue ?? ""
        XCTAssertFalse(text.contains("abcdef0123456789"))
        XCTAssertFalse(text.contains("TFMwdExTMUNSVWRKVGc="))
        XCTAssertFalse(text.contains("pa55word"))
        XCTAssertTrue(text.contains("server: https://k"))
        XCTAssertTrue(text.contains("client-key-data: \(Self.maskedBase64)"))
    }

    func testKubeconfigAsJSONInAConfigMapHasItsCredentialsMasked() throws {
        let inner = #"{"apiVersion":"v1","kind":"Config","clusters":[{"name":"c","cluster":{"server":"https://k"}}],"users":[{"name":"u","user":{"token":"abc","client-key-data":"TFMw"}}]}"#
        let cm: JSONValue = ["kind": "ConfigMap", "data": ["config.json": .string(inner)]]
        let out = String(decoding: masker.maskJSON(cm.serialized()), as: UTF8.self)
        XCTAssertFalse(out.contains("\\\"abc\\\""))
        XCTAssertFalse(out.contains("TFMw\\\""))
        XCTAssertTrue(out.contains("https://k"))
    }

    func testDockerConfigJSONAuthsAreMasked() throws {
        let inner = #"{"auths":{"registry.example.com":{"username":"bob","password":"pw","auth":"Ym9iOnB3"}}}"#
        let cm: JSONValue = ["kind": "ConfigMap", "data": [".dockerconfigjson": .string(inner)]]
        let out = String(decoding: masker.maskJSON(cm.serialized()), as: UTF8.self)
        XCTAssertFalse(out.contains("Ym9iOnB3"))
        XCTAssertFalse(out.contains("\\\"pw\\\""))
        XCTAssertTrue(out.contains("registry.example.com"))
    }

    func testSecretTableMasksCellsOutsideTheSafeColumnsAndTheRowObject() throws {
        let table = #"{"kind":"Table","apiVersion":"meta.k8s.io/v1","columnDefinitions":[{"name":"Name","type":"string"},{"name":"Type","type":"string"},{"name":"Value","type":"string"}],"rows":[{"cells":["db","Opaque","plaintext-value"],"object":{"kind":"Secret","metadata":{"name":"db"},"data":{"p":"aHVudGVy"}}}]}"#
        let out = try mask(table)
        let row = out["rows"]?.arrayValue?[0]
        XCTAssertEqual(row?["cells"], ["db", "Opaque", "***MASKED***"])
        XCTAssertEqual(row?[path: ["object", "data", "p"]], .string(Self.maskedBase64))
    }

    func testOrdinaryTableCellsAreScannedForTextPatterns() throws {
        let jwt = DetectorTests.sampleJWT
        let table = #"{"kind":"Table","columnDefinitions":[{"name":"Name"},{"name":"Token"}],"rows":[{"cells":["a","\#(jwt)"],"object":{"kind":"PartialObjectMetadata","metadata":{"name":"a"}}}]}"#
        let out = try mask(table)
        XCTAssertEqual(out["rows"]?.arrayValue?[0]["cells"], ["a", "***MASKED***"])
    }

    func testKeyedHashIsStableAndDependsOnValueAndKey() throws {
        let a = Masker(policy: .standard(replacement: .keyedHash, hashKey: Array("k1".utf8)))
        let b = Masker(policy: .standard(replacement: .keyedHash, hashKey: Array("k2".utf8)))
        func hashOf(_ m: Masker, _ value: String) throws -> String {
            let out = try JSONValue(parsing: m.maskJSON(Array(#"{"kind":"Secret","stringData":{"v":"\#(value)"}}"#.utf8)))
            return out[path: ["stringData", "v"]]?.stringValue ?? ""
        }
        let first = try hashOf(a, "hunter2")
        XCTAssertTrue(first.hasPrefix("hmac:"))
        XCTAssertEqual(first.count, 17)
        // HMAC-SHA256(k1, "hunter2"), first 6 bytes in hex (Python's hmac module agrees): an
        // auditor's records stay comparable across gateway versions.
        XCTAssertEqual(first, "hmac:1b0ba06e566b")
        XCTAssertEqual(first, try hashOf(a, "hunter2"))
        XCTAssertNotEqual(first, try hashOf(a, "hunter3"))
        XCTAssertNotEqual(first, try hashOf(b, "hunter2"))
    }

    func testSecretCreatedThroughARequestBodyIsRecordedMasked() throws {
        let body = #"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"n"},"stringData":{"password":"s3cr3t-value"}}"#
        let out = String(decoding: masker.maskRequestBody(Array(body.utf8), contentType: "application/json"), as: UTF8.self)
        XCTAssertFalse(out.contains("s3cr3t-value"))
        let yaml = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: n\ndata:\n  password: czNjcjN0LXZhbHVl\n"
        let outYAML = String(decoding: masker.maskRequestBody(Array(yaml.utf8), contentType: "application/apply-patch+yaml"), as: UTF8.self)
        XCTAssertFalse(outYAML.contains("czNjcjN0LXZhbHVl"))
        XCTAssertTrue(outYAML.contains("name: n"))
    }

    func testJSONPatchToASecretHasEveryValueMasked() throws {
        let patch = #"[{"op":"add","path":"/data/token","value":"dG9rZW4tdmFsdWU="}]"#
        let out = String(decoding: masker.maskRequestBody(Array(patch.utf8), contentType: "application/json-patch+json", kindHint: "Secret"), as: UTF8.self)
        XCTAssertFalse(out.contains("dG9rZW4tdmFsdWU="))
        XCTAssertTrue(out.contains("/data/token"))
    }

    func testYAMLSecretIsMaskedAndStaysYAML() throws {
        let yaml = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: aHVudGVyMg==\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  log: debug\n"
        let out = masker.maskYAML(yaml)
        XCTAssertFalse(out.contains("aHVudGVyMg=="))
        let docs = try JSONValue.parseYAMLDocuments(out)
        XCTAssertEqual(docs.count, 2)
        XCTAssertEqual(docs[0][path: ["data", "password"]], .string(Self.maskedBase64))
        XCTAssertEqual(docs[1][path: ["data", "log"]], "debug")
    }

    func testJSONValueIsMaskedInPlace() {
        var value: JSONValue = ["kind": "Secret", "data": ["a": "YWJj"]]
        masker.mask(&value)
        XCTAssertEqual(value[path: ["data", "a"]], .string(Self.maskedBase64))
    }

    func testInvalidJSONMentioningASecretIsWithheld() {
        let out = masker.maskJSON(Array(#"{"kind":"Secret","data":{"a":"YWJj""#.utf8))
        XCTAssertEqual(out, Masker.withheldBody)
    }

    func testEmbeddedSecretInsideAnotherObjectIsMasked() throws {
        let review = #"{"kind":"AdmissionReview","request":{"object":{"kind":"Secret","data":{"a":"YWJjZGVm"}}}}"#
        let out = try mask(review)
        XCTAssertEqual(out[path: ["request", "object", "data", "a"]], .string(Self.maskedBase64))
    }
}
