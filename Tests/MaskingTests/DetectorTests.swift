import KubeCore
import XCTest

@testable import Masking

/// Text detectors, always-scrub literals and the false-positive guard.
final class DetectorTests: XCTestCase {
    static let sampleJWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDphIn0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
    let masker = Masker(policy: .standard(hashKey: Array("k".utf8), alwaysScrub: ["gateway-injected-credential-XYZ123"]))

    func text(_ s: String) -> String { masker.maskText(s) }

    func testJWTInALogLineIsMasked() {
        XCTAssertEqual(text("token=\(Self.sampleJWT) ok"), "token=***MASKED*** ok")
        XCTAssertEqual(text("auth \(Self.sampleJWT)"), "auth ***MASKED***")
    }

    func testPEMPrivateKeyBodyIsMaskedAndTheMarkersKept() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabcdef\n-----END RSA PRIVATE KEY-----\n"
        XCTAssertEqual(text("key:\n" + pem), "key:\n-----BEGIN RSA PRIVATE KEY-----\n***MASKED***\n-----END RSA PRIVATE KEY-----\n")
    }

    func testPEMCertificateIsNotMasked() {
        let cert = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----\n"
        XCTAssertEqual(text(cert), cert)
    }

    func testPEMInsideAJSONStringIsMasked() throws {
        let cm: JSONValue = ["kind": "ConfigMap", "data": ["key.pem": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"]]
        let out = try JSONValue(parsing: masker.maskJSON(cm.serialized()))
        XCTAssertEqual(out[path: ["data", "key.pem"]], "-----BEGIN PRIVATE KEY-----\n***MASKED***\n-----END PRIVATE KEY-----\n")
    }

    func testAWSAccessKeyIdAndSecretKeyAreMasked() {
        XCTAssertEqual(text("id AKIAIOSFODNN7EXAMPLE end"), "id ***MASKED*** end")
        XCTAssertEqual(text("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"), "aws_secret_access_key = ***MASKED***")
        XCTAssertEqual(text("AKIAIOSFODNN7EXAMPLEXX"), "AKIAIOSFODNN7EXAMPLEXX", "22 characters is not a key id")
    }

    func testAWSSecretKeyAsAJSONMemberIsMasked() throws {
        let cm: JSONValue = ["kind": "ConfigMap", "data": ["AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "region": "eu-west-1"]]
        let out = try JSONValue(parsing: masker.maskJSON(cm.serialized()))
        XCTAssertEqual(out[path: ["data", "AWS_SECRET_ACCESS_KEY"]], "***MASKED***")
        XCTAssertEqual(out[path: ["data", "region"]], "eu-west-1")
    }

    func testGCPServiceAccountPrivateKeyIsMasked() throws {
        let sa = #"{"type":"service_account","project_id":"p","private_key_id":"abc","private_key":"-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----\n","client_email":"a@p.iam.gserviceaccount.com"}"#
        let masked = text("creds: " + sa)
        XCTAssertFalse(masked.contains("MIIEvQ"))
        XCTAssertTrue(masked.contains("a@p.iam.gserviceaccount.com"))
        let cm: JSONValue = ["kind": "ConfigMap", "data": ["sa.json": .string(sa)]]
        let out = String(decoding: masker.maskJSON(cm.serialized()), as: UTF8.self)
        XCTAssertFalse(out.contains("MIIEvQ"))
    }

    func testGitHubGitLabAndSlackTokensAreMasked() {
        XCTAssertEqual(text("ghp_abcdefghijklmnopqrstuvwxyz0123456789"), "***MASKED***")
        XCTAssertEqual(text("x github_pat_11ABCDEFG0123456789_abcdefghijklmnop y"), "x ***MASKED*** y")
        XCTAssertEqual(text("glpat-abcdefghij0123456789"), "***MASKED***")
        XCTAssertEqual(text("SLACK=xoxb-123456789012-abcdefghij"), "SLACK=***MASKED***")
        XCTAssertEqual(text("ghp_short"), "ghp_short")
    }

    func testBearerTokenIsMaskedButTheWordKept() {
        XCTAssertEqual(text("Authorization: Bearer abc.def-ghi_jkl"), "Authorization: Bearer ***MASKED***")
        XCTAssertEqual(text("bearer  sk-live-0123456789"), "bearer  ***MASKED***")
    }

    func testPasswordAssignmentsAreMaskedAfterTheEntropyCheck() {
        XCTAssertEqual(text("password=changeme"), "password=***MASKED***")
        XCTAssertEqual(text("DB_PASSWORD: \"S3cr3t!x\""), "DB_PASSWORD: \"***MASKED***\"")
        XCTAssertEqual(text("--db-passwd=Tr0ub4dor&3"), "--db-passwd=***MASKED***&3")
        XCTAssertEqual(text("secret=true"), "secret=true", "too short")
        XCTAssertEqual(text("password: ********"), "password: ********", "placeholder")
        XCTAssertEqual(text("password=${DB_PASSWORD}"), "password=${DB_PASSWORD}", "reference")
        XCTAssertEqual(text("password=aaaaaaaa"), "password=aaaaaaaa", "low entropy")
        XCTAssertEqual(text("secretName: my-secret"), "secretName: my-secret")
    }

    func testAlwaysScrubLiteralIsReplacedEvenWithEveryRuleOff() throws {
        let m = Masker(policy: MaskingPolicy(alwaysScrub: ["gateway-injected-credential-XYZ123"]))
        XCTAssertEqual(m.maskText("sent gateway-injected-credential-XYZ123!"), "sent ***MASKED***!")
        let b64 = String(decoding: Replacer.base64(Array("gateway-injected-credential-XYZ123".utf8)), as: UTF8.self)
        XCTAssertFalse(m.maskText("echo \(b64)").contains(b64))
        let cm: JSONValue = ["kind": "ConfigMap", "data": ["x": "pre gateway-injected-credential-XYZ123 post"]]
        XCTAssertEqual(try JSONValue(parsing: m.maskJSON(cm.serialized()))[path: ["data", "x"]], "pre ***MASKED*** post")
    }

    func testAnAlwaysScrubLiteralWithAQuoteNeverBreaksTheDocument() throws {
        // A static credential may hold any byte. Its raw form can only line up with a document
        // across a string's closing quote; the value is masked, and the output is still JSON.
        let credential = #"abcd1234","note"#
        let m = Masker(policy: MaskingPolicy(alwaysScrub: [credential]))
        let body = Array(#"{"kind":"ConfigMap","data":{"a":"abcd1234","note":"kept"}}"#.utf8)
        let out = m.maskJSON(body)
        let parsed = try JSONValue(parsing: out)
        XCTAssertFalse(String(decoding: out, as: UTF8.self).contains("abcd1234"), String(decoding: out, as: UTF8.self))
        XCTAssertEqual(parsed[path: ["data", "note"]], "kept")
        // Inside one string (escaped there), the whole credential is found and masked.
        let escaped: JSONValue = ["kind": "ConfigMap", "data": ["a": .string("x \(credential) y")]]
        XCTAssertEqual(try JSONValue(parsing: m.maskJSON(escaped.serialized()))[path: ["data", "a"]], "x ***MASKED*** y")
        XCTAssertEqual(m.maskText("sent \(credential)!"), "sent ***MASKED***!")
    }

    func testDetectorsRunOnEscapedJSONStrings() throws {
        let body = #"{"kind":"Event","message":"token \u003c\#(Self.sampleJWT)\u003e"}"#
        let out = try JSONValue(parsing: masker.maskJSON(Array(body.utf8)))
        XCTAssertEqual(out["message"], "token <***MASKED***>")
    }

    func testErrorMessageIsMasked() {
        let message = "Unauthorized: token \(Self.sampleJWT) expired"
        XCTAssertEqual(masker.maskErrorMessage(message), "Unauthorized: token ***MASKED*** expired")
    }

    func testOrdinaryObjectsAreLeftByteIdentical() throws {
        let configMap = #"{"apiVersion":"v1","data":{"app.properties":"log.level=info\nserver.port=8080\n","encoded":"aGVsbG8gd29ybGQsIHRoaXMgaXMgb3JkaW5hcnkgdGV4dA==","token-ttl":"3600","secretName":"tls-cert","password-file":"/etc/app/pw"},"kind":"ConfigMap","metadata":{"creationTimestamp":"2026-05-01T10:00:00Z","name":"app","namespace":"default","resourceVersion":"123456","uid":"0f8d5e0a-8b7c-4c1e-9f3e-1a2b3c4d5e6f"}}"#
        XCTAssertEqual(String(decoding: masker.maskJSON(Array(configMap.utf8)), as: UTF8.self), configMap)
        let pod = #"{"kind":"Pod","metadata":{"name":"p","uid":"7c9e6679-7425-40de-944b-e07fc1f90ae7","resourceVersion":"98765"},"spec":{"containers":[{"image":"nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31","name":"web","env":[{"name":"PORT","value":"8080"}],"volumeMounts":[{"mountPath":"/etc/secret","name":"s"}]}],"volumes":[{"name":"s","secret":{"secretName":"db-creds"}}],"serviceAccountName":"default","automountServiceAccountToken":false},"status":{"startTime":"2026-05-01T10:00:00Z","podIP":"10.0.0.7"}}"#
        XCTAssertEqual(String(decoding: masker.maskJSON(Array(pod.utf8)), as: UTF8.self), pod)
    }

    func testOrdinaryLogLinesAreLeftAlone() {
        let log = "2026-05-01T10:00:00Z INFO served GET /healthz in 2ms uid=7c9e6679-7425-40de-944b-e07fc1f90ae7 image=sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31 commit=9f3e1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f\n"
        XCTAssertEqual(text(log), log)
    }

    /// The shipped sample rule's groups only choose between `live` and `test`: the key itself,
    /// outside any group, must not stay visible.
    func testCustomPatternMasksTheWholeMatchWhateverGroupsItHas() throws {
        var policy = MaskingPolicy()
        policy.customPatterns = [try PatternCompiler.compile(name: "internal-api-key", pattern: "ik_(live|test)_[A-Za-z0-9]{24,}")]
        let m = Masker(policy: policy)
        let key = "ik_live_0123456789abcdefghijklmnOPQR"
        XCTAssertEqual(m.maskText("token \(key) here"), "token ***MASKED*** here")
        let cm: JSONValue = ["kind": "ConfigMap", "data": ["API_KEY": .string(key)]]
        XCTAssertEqual(try JSONValue(parsing: m.maskJSON(cm.serialized()))[path: ["data", "API_KEY"]], "***MASKED***")
    }

    func testCustomPatternWithAGroupNamedSecretMasksOnlyThatGroup() throws {
        var policy = MaskingPolicy()
        policy.customPatterns = [try PatternCompiler.compile(name: "acme", pattern: #"(acme)_key=(?<secret>[A-Za-z0-9]+)"#)]
        let m = Masker(policy: policy)
        XCTAssertEqual(m.maskText("x acme_key=ABC123def y"), "x acme_key=***MASKED*** y")
        let cm: JSONValue = ["kind": "ConfigMap", "data": ["a": "acme_key=zzz999"]]
        XCTAssertEqual(try JSONValue(parsing: m.maskJSON(cm.serialized()))[path: ["data", "a"]], "acme_key=***MASKED***")
    }

    func testAMatchWhoseSecretGroupTookNoPartIsMaskedWhole() throws {
        var policy = MaskingPolicy()
        policy.customPatterns = [try PatternCompiler.compile(name: "acme", pattern: #"acme_(key=(?<secret>\d+)|id=[a-z]+)"#)]
        let m = Masker(policy: policy)
        XCTAssertEqual(m.maskText("acme_key=123 acme_id=abc"), "acme_key=***MASKED*** ***MASKED***")
    }

    func testCustomPatternWithoutKeywordRunsOnEveryString() throws {
        var policy = MaskingPolicy()
        policy.customPatterns = [try PatternCompiler.compile(name: "ssn", pattern: #"\d{3}-\d{2}-\d{4}"#, replacement: .keyedHash)]
        let m = Masker(policy: policy)
        let out = m.maskText("ssn 123-45-6789.")
        XCTAssertTrue(out.hasPrefix("ssn hmac:"), out)
        XCTAssertFalse(out.contains("6789"))
    }
}
