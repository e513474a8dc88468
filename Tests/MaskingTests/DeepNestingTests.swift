import Foundation
import KubeCore
import Masking
import XCTest

/// A document nested deeper than the walk recurses is masked by the same rules, at every
/// depth, and never turns the rest of the body over to text patterns (which know nothing of
/// env names or field rules).
final class DeepNestingTests: XCTestCase {
    static let jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDphIn0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
    static let maskedBase64 = "KioqTUFTS0VEKioq"   // base64("***MASKED***")

    let masker: Masker = {
        var policy = MaskingPolicy.standard()
        policy.fieldRules = [try! FieldRule(name: "urls", resources: ["configmaps", "widgets"], paths: ["data.DATABASE_URL", "spec.blob"])]
        return Masker(policy: policy)
    }()

    /// `{"a":{"a":...inner...}}`, `depth` objects deep.
    static func nested(_ depth: Int, around inner: String) -> String {
        String(repeating: #"{"a":"#, count: depth) + inner + String(repeating: "}", count: depth)
    }

    static func env(_ name: String, _ value: String) -> JSONValue { ["name": .string(name), "value": .string(value)] }

    func mask(_ body: String, _ resource: String) -> String {
        String(decoding: masker.maskJSON(Array(body.utf8), resource: MaskedResource(group: resource == "deployments" ? "apps" : "", resource: resource)),
               as: UTF8.self)
    }

    func testAnObjectNestedDeeperThan512LevelsDoesNotUnmaskTheOtherObjectsOfAListOrWatch() throws {
        let deep = Self.nested(600, around: #""x""#)
        let deployment: JSONValue = ["metadata": ["name": "web"], "spec": ["template": ["spec": ["containers": [
            ["name": "app", "env": [Self.env("DB_PASSWORD", "hunter2-prod"), Self.env("API_TOKEN", "plain-token-77"), Self.env("LOG_LEVEL", "debug")]]]]]]]
        let deployments = #"{"kind":"DeploymentList","apiVersion":"apps/v1","metadata":{},"items":["#
            + deployment.serializedString() + #",{"metadata":{"name":"deep"},"spec":{"unknown":"# + deep + "}}]}"
        let maskedDeployments = mask(deployments, "deployments")
        XCTAssertFalse(maskedDeployments.contains("hunter2-prod"), "env value masked by name")
        XCTAssertFalse(maskedDeployments.contains("plain-token-77"), "env value masked by name")
        XCTAssertTrue(maskedDeployments.contains(#""value":"debug""#))
        XCTAssertTrue(maskedDeployments.contains(deep), "the deep field is kept as it is: nothing in it to mask")

        let configMap: JSONValue = ["kind": "ConfigMap", "metadata": ["name": "app"], "data": ["DATABASE_URL": "postgres://app:Sup3rS3cret@db/app"]]
        let configMaps = #"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{},"items":[{"kind":"ConfigMap","metadata":{"name":"deep"},"x":"#
            + deep + "}," + configMap.serializedString() + "]}"
        XCTAssertFalse(mask(configMaps, "configmaps").contains("Sup3rS3cret"), "a field rule still applies to the list's other items")

        let watch = #"{"type":"ADDED","object":{"kind":"ConfigMap","metadata":{"name":"deep"},"x":"# + deep + "}}\n"
            + #"{"type":"ADDED","object":"# + configMap.serializedString() + "}\n"
        let maskedWatch = mask(watch, "configmaps")
        XCTAssertFalse(maskedWatch.contains("Sup3rS3cret"), "a field rule still applies to the stream's other events")
        XCTAssertTrue(maskedWatch.contains(#""DATABASE_URL":"***MASKED***""#))
    }

    func testSecretsEnvValuesAndFieldRulesAreMaskedAtAnyDepth() throws {
        let secret: JSONValue = ["kind": "Secret", "metadata": ["name": "s"], "data": ["password": "aHVudGVyMg=="]]
        let container: JSONValue = ["name": "app", "env": [Self.env("DB_PASSWORD", "hunter2-prod"), Self.env("LOG_LEVEL", "debug")]]
        let payload = #"{"secret":"# + secret.serializedString() + #","container":"# + container.serializedString()
            + #","note":"keep me","token":""# + Self.jwt + #""}"#
        let body = #"{"kind":"Widget","metadata":{"name":"w"},"spec":{"deep":"# + Self.nested(1000, around: payload)
            + #","blob":"# + Self.nested(700, around: #"{"k":"in-blob-secret","n":42,"z":null}"#) + "}}"
        let out = mask(body, "widgets")
        XCTAssertTrue(out.contains(String(repeating: #"{"a":"#, count: 1000) + #"{"secret":"#), "structure kept")
        for (gone, reason) in [("aHVudGVyMg==", "Secret data"), ("hunter2-prod", "env value by name"), (Self.jwt, "JWT detector"),
                               ("in-blob-secret", "field rule"), (#""n":42"#, "field rule, scalar")] {
            XCTAssertFalse(out.contains(gone), reason)
        }
        XCTAssertTrue(out.contains(#""note":"keep me""#), "masked by rule, not wholesale")
        XCTAssertTrue(out.contains(#""name":"LOG_LEVEL","value":"debug""#))
        XCTAssertTrue(out.contains(#"{"k":"***MASKED***","n":"***MASKED***","z":null}"#))
        XCTAssertTrue(out.contains(#""data":{"password":"\#(Self.maskedBase64)"}"#), "a Secret's data stays base64, of the mask")
        XCTAssertNotNil(try? JSONValue(parsing: out), "still one valid JSON document")
    }

    /// YAML is masked through a value: one too deep for KubeCore to parse back after masking is
    /// withheld, not returned as it came. (KubeCore's writer recurses: a big stack for it.)
    func testAValueTooDeepToReadBackAfterMaskingIsWithheld() {
        let withheld = Self.onThread(stackSize: 64 << 20) { [masker] in
            var value: JSONValue = ["kind": "ConfigMap", "data": ["token": .string(Self.jwt)]]
            for _ in 0..<10_001 { value = ["a": value] }
            masker.mask(&value)
            return value == Masker.withheldValue
        }
        XCTAssertTrue(withheld)
    }

    /// A hundred thousand levels, on a thread with a 512 KiB stack (a sixteenth of a Linux
    /// thread's usual one): the walk must not recurse per level.
    func testA100000DeepArrayOrObjectIsMaskedWithoutExhaustingTheStack() throws {
        let depth = 100_000
        let arrays = String(repeating: "[", count: depth) + #""\#(Self.jwt)""# + String(repeating: "]", count: depth)
        let objects = Self.nested(depth, around: #"{"env":[{"name":"DB_PASSWORD","value":"hunter2-prod"}],"note":"keep me"}"#)
        let masked = Self.onThread(stackSize: 512 << 10) { [masker] in
            [arrays, objects].map { String(decoding: masker.maskJSON(Array($0.utf8), kindHint: "ConfigMap"), as: UTF8.self) }
        }
        XCTAssertEqual(masked.first, String(repeating: "[", count: depth) + #""***MASKED***""# + String(repeating: "]", count: depth))
        XCTAssertEqual(masked.last, Self.nested(depth, around: #"{"env":[{"name":"DB_PASSWORD","value":"***MASKED***"}],"note":"keep me"}"#))
    }

    /// `body`'s result, computed on a thread of its own with a stack of `stackSize` bytes.
    static func onThread<T>(stackSize: Int, _ body: @escaping @Sendable () -> T) -> T {
        let result = ThreadResult<T>()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            result.value = body()
            done.signal()
        }
        thread.stackSize = stackSize
        thread.start()
        done.wait()
        return result.value!
    }
}

/// A value handed from a thread to the one waiting for it on a semaphore.
private final class ThreadResult<T>: @unchecked Sendable {
    var value: T?
}
