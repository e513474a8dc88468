import XCTest
@testable import KubeCore

/// RequestInfo derivation, with the cases of kube-apiserver's requestinfo_test.go restated
/// as tables, plus path cleaning for the gateway.
final class RequestInfoTests: XCTestCase {
    private let resolver = RequestInfoResolver()

    /// `url` may carry a query string; it is split and decoded as Go's `URL.Query()` would.
    private func resolve(_ method: String, _ url: String) -> RequestInfo {
        let pieces = url.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        return resolver.resolve(method: method, path: String(pieces[0]),
                                rawQuery: pieces.count > 1 ? String(pieces[1]) : nil)
    }

    // method, url, verb, prefix, group, version, namespace, resource, subresource, name, parts
    private typealias Row = (String, String, String, String, String, String, String, String, String, String, [String])

    func testResourceRequestsResolveLikeKubeApiserver() {
        let rows: [Row] = [
            // resource paths
            ("GET", "/api/v1/namespaces", "list", "api", "", "v1", "", "namespaces", "", "", ["namespaces"]),
            ("GET", "/api/v1/namespaces/other", "get", "api", "", "v1", "other", "namespaces", "", "other", ["namespaces", "other"]),
            ("GET", "/api/v1/namespaces/other/pods", "list", "api", "", "v1", "other", "pods", "", "", ["pods"]),
            ("GET", "/api/v1/namespaces/other/pods/foo", "get", "api", "", "v1", "other", "pods", "", "foo", ["pods", "foo"]),
            ("HEAD", "/api/v1/namespaces/other/pods/foo", "get", "api", "", "v1", "other", "pods", "", "foo", ["pods", "foo"]),
            ("GET", "/api/v1/pods", "list", "api", "", "v1", "", "pods", "", "", ["pods"]),
            ("HEAD", "/api/v1/pods", "list", "api", "", "v1", "", "pods", "", "", ["pods"]),
            ("PATCH", "/api/v1/namespaces/new-namespace", "patch", "api", "", "v1", "new-namespace", "namespaces", "", "new-namespace", ["namespaces", "new-namespace"]),
            // special verbs
            ("GET", "/api/v1/proxy/namespaces/other/pods/foo", "proxy", "api", "", "v1", "other", "pods", "", "foo", ["pods", "foo"]),
            ("GET", "/api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource", "proxy", "api", "", "v1", "other", "pods", "", "foo", ["pods", "foo", "subpath", "not", "a", "subresource"]),
            ("GET", "/api/v1/watch/pods", "watch", "api", "", "v1", "", "pods", "", "", ["pods"]),
            ("GET", "/api/v1/pods?watch=true", "watch", "api", "", "v1", "", "pods", "", "", ["pods"]),
            ("GET", "/api/v1/pods?watch=false", "list", "api", "", "v1", "", "pods", "", "", ["pods"]),
            ("GET", "/api/v1/watch/namespaces/other/pods", "watch", "api", "", "v1", "other", "pods", "", "", ["pods"]),
            ("GET", "/api/v1/namespaces/other/pods?watch=1", "watch", "api", "", "v1", "other", "pods", "", "", ["pods"]),
            ("GET", "/api/v1/namespaces/other/pods?watch=0", "list", "api", "", "v1", "other", "pods", "", "", ["pods"]),
            ("GET", "/api/v1/watch/namespaces/other/pods/foo", "watch", "api", "", "v1", "other", "pods", "", "foo", ["pods", "foo"]),
            // subresource identification
            ("GET", "/api/v1/namespaces/other/pods/foo/status", "get", "api", "", "v1", "other", "pods", "status", "foo", ["pods", "foo", "status"]),
            ("GET", "/api/v1/namespaces/other/pods/foo/proxy/subpath", "get", "api", "", "v1", "other", "pods", "proxy", "foo", ["pods", "foo", "proxy", "subpath"]),
            ("GET", "/api/v1/namespaces/other/pods/foo/log", "get", "api", "", "v1", "other", "pods", "log", "foo", ["pods", "foo", "log"]),
            ("POST", "/api/v1/namespaces/other/pods/foo/exec", "create", "api", "", "v1", "other", "pods", "exec", "foo", ["pods", "foo", "exec"]),
            ("POST", "/api/v1/namespaces/other/serviceaccounts/sa/token", "create", "api", "", "v1", "other", "serviceaccounts", "token", "sa", ["serviceaccounts", "sa", "token"]),
            ("PUT", "/api/v1/namespaces/other/finalize", "update", "api", "", "v1", "other", "namespaces", "finalize", "other", ["namespaces", "other", "finalize"]),
            ("PUT", "/api/v1/namespaces/other/status", "update", "api", "", "v1", "other", "namespaces", "status", "other", ["namespaces", "other", "status"]),
            ("PATCH", "/apis/apps/v1/namespaces/other/deployments/web/scale", "patch", "apis", "apps", "v1", "other", "deployments", "scale", "web", ["deployments", "web", "scale"]),
            // verb identification
            ("PATCH", "/api/v1/namespaces/other/pods/foo", "patch", "api", "", "v1", "other", "pods", "", "foo", ["pods", "foo"]),
            ("DELETE", "/api/v1/namespaces/other/pods/foo", "delete", "api", "", "v1", "other", "pods", "", "foo", ["pods", "foo"]),
            ("POST", "/api/v1/namespaces/other/pods", "create", "api", "", "v1", "other", "pods", "", "", ["pods"]),
            ("PUT", "/api/v1/namespaces/other/pods/foo", "update", "api", "", "v1", "other", "pods", "", "foo", ["pods", "foo"]),
            ("OPTIONS", "/api/v1/namespaces/other/pods/foo", "", "api", "", "v1", "other", "pods", "", "foo", ["pods", "foo"]),
            // deletecollection verb identification
            ("DELETE", "/api/v1/nodes", "deletecollection", "api", "", "v1", "", "nodes", "", "", ["nodes"]),
            ("DELETE", "/api/v1/namespaces", "deletecollection", "api", "", "v1", "", "namespaces", "", "", ["namespaces"]),
            ("DELETE", "/api/v1/namespaces/other/pods", "deletecollection", "api", "", "v1", "other", "pods", "", "", ["pods"]),
            ("DELETE", "/apis/extensions/v1/namespaces/other/pods", "deletecollection", "apis", "extensions", "v1", "other", "pods", "", "", ["pods"]),
            // api group and version identification
            ("POST", "/apis/extensions/v1/namespaces/other/pods", "create", "apis", "extensions", "v1", "other", "pods", "", "", ["pods"]),
            ("POST", "/apis/extensions/v1beta3/namespaces/other/pods", "create", "apis", "extensions", "v1beta3", "other", "pods", "", "", ["pods"]),
            ("GET", "/apis/agentgate.dev/v1alpha1/namespaces/team/clusterconnections", "list", "apis", "agentgate.dev", "v1alpha1", "team", "clusterconnections", "", "", ["clusterconnections"]),
            // trailing slash is trimmed, as splitPath does
            ("GET", "/api/v1/namespaces/other/pods/", "list", "api", "", "v1", "other", "pods", "", "", ["pods"]),
            // split at every '/' byte, as Go does, even where a combining mark follows it and
            // makes "/\u{301}" one Character (decoded from /%CC%81)
            ("GET", "/api/v1/namespaces/\u{301}other/pods", "list", "api", "", "v1", "\u{301}other", "pods", "", "", ["pods"]),
            ("DELETE", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/\u{301}admin", "delete", "apis",
             "rbac.authorization.k8s.io", "v1", "", "clusterrolebindings", "", "\u{301}admin", ["clusterrolebindings", "\u{301}admin"]),
            ("GET", "/api/v1/namespaces/other/pods/foo/\u{301}log", "get", "api", "", "v1", "other", "pods", "\u{301}log", "foo",
             ["pods", "foo", "\u{301}log"]),
        ]
        for row in rows {
            let (method, url, verb, prefix, group, version, namespace, resource, subresource, name, parts) = row
            let info = resolve(method, url)
            let context = "\(method) \(url)"
            XCTAssertTrue(info.isResourceRequest, context)
            XCTAssertEqual(info.verb, verb, "verb of \(context)")
            XCTAssertEqual(info.apiPrefix, prefix, "prefix of \(context)")
            XCTAssertEqual(info.apiGroup, group, "group of \(context)")
            XCTAssertEqual(info.apiVersion, version, "version of \(context)")
            XCTAssertEqual(info.namespace, namespace, "namespace of \(context)")
            XCTAssertEqual(info.resource, resource, "resource of \(context)")
            XCTAssertEqual(info.subresource, subresource, "subresource of \(context)")
            XCTAssertEqual(info.name, name, "name of \(context)")
            XCTAssertEqual(info.parts, parts, "parts of \(context)")
            XCTAssertEqual(info.path, String(url.split(separator: "?", maxSplits: 1)[0]), "path of \(context)")
        }
    }

    func testNonResourceRequestsKeepTheLowercasedMethod() {
        let urls = [
            "/", "", "/healthz", "/readyz", "/version", "/api", "/apis", "/api/v1", "/api/version/", "/apis/apps",
            "/apis/apps/v1", "/apis/extensions/v1beta1/", "/apis/group/version/", "/openapi/v3",
            "/openapi/v3/apis/apps/v1", "/badprefix/version/resource", "/not-api/version/resource",
            "/apis/version/resource", "/c/team/conn",
        ]
        for url in urls {
            let info = resolve("GET", url)
            XCTAssertFalse(info.isResourceRequest, url)
            // Upstream records the prefix before finding a grouped path too short.
            let prefix = url.hasPrefix("/apis/") && info.path.split(separator: "/").count >= 3 ? "apis" : ""
            XCTAssertEqual(info, RequestInfo(path: url, verb: "get", apiPrefix: prefix), url)
        }
        XCTAssertEqual(resolve("POST", "/apis").verb, "post")
    }

    func testResourceDetectionMatchesUpstreamTable() {
        let cases: [(String, Bool)] = [
            ("/api/version/resource", true),
            ("/apis/group/version/resource/name/subresource", true),
            ("/api/version/resource/name/subresource", true),
            ("/apis/batch/v1/job", true),
            ("/apis/batch/v1/job/foo", true),
            ("/apis/batch/v1/job/foo/scale", true),
            ("/not-api/version/resource", false),
            ("/apis/extensions/v1beta1", false),
            ("/apis/extensions/v1beta1/", false),
            ("/api/version", false),
            ("/api", false),
            ("/", false),
            ("", false),
        ]
        for (url, expected) in cases {
            XCTAssertEqual(resolve("GET", url).isResourceRequest, expected, url)
        }
    }

    func testFieldSelectorOnMetadataNameNamesAListOrWatch() {
        // name, url, expected name, expected verb
        let cases: [(String, String, String, String)] = [
            ("no selector", "/apis/group/version/resource", "", "list"),
            ("metadata.name selector", "/apis/group/version/resource?fieldSelector=metadata.name=name1", "name1", "list"),
            ("with watch", "/apis/group/version/resource?watch=true&fieldSelector=metadata.name=name1", "name1", "watch"),
            ("random selector", "/apis/group/version/resource?fieldSelector=foo=bar", "", "list"),
            ("invalid selector", "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo", "", "list"),
            ("invalid selector with watch", "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=true", "", "watch"),
            ("invalid selector with watch false", "/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=false", "", "list"),
            ("invalid label selector", "/apis/group/version/resource?labelSelector=a%20b&fieldSelector=metadata.name=name1", "", "list"),
            ("invalid limit", "/apis/group/version/resource?limit=ten&fieldSelector=metadata.name=name1&watch=1", "", "watch"),
            ("empty timeoutSeconds", "/apis/group/version/resource?timeoutSeconds=&fieldSelector=metadata.name=name1", "", "list"),
            ("valid limit", "/apis/group/version/resource?limit=500&timeoutSeconds=%2B30&fieldSelector=metadata.name=name1", "name1", "list"),
            ("name not a path segment", "/apis/group/version/resource?fieldSelector=metadata.name=..", "", "list"),
            ("name with percent", "/apis/group/version/resource?fieldSelector=metadata.name=a%25b", "", "list"),
            ("name with a percent a combining mark follows", "/apis/group/version/resource?fieldSelector=metadata.name=a%25%CC%81b", "", "list"),
            ("not-equals is no name", "/apis/group/version/resource?fieldSelector=metadata.name!=name1", "", "list"),
            ("encoded selector", "/api/v1/namespaces/ns/secrets?fieldSelector=metadata.name%3Dtoken", "token", "list"),
            ("watch any other value", "/api/v1/pods?watch=yes", "", "watch"),
            ("watch empty value", "/api/v1/pods?watch=", "", "watch"),
            ("watch FALSE", "/api/v1/pods?watch=FALSE", "", "list"),
            ("first watch value wins", "/api/v1/pods?watch=0&watch=1", "", "list"),
        ]
        for (label, url, name, verb) in cases {
            let info = resolve("GET", url)
            XCTAssertEqual(info.name, name, label)
            XCTAssertEqual(info.verb, verb, label)
        }
        // DELETE with a name selector stays a deletecollection: only get becomes list.
        XCTAssertEqual(resolve("DELETE", "/api/v1/namespaces/ns/pods?fieldSelector=metadata.name=p").verb, "deletecollection")
        XCTAssertEqual(resolve("DELETE", "/api/v1/namespaces/ns/pods?fieldSelector=metadata.name=p").name, "")
    }

    func testSelectorsAreKeptForCollectionVerbsOnly() {
        let list = resolve("GET", "/api/v1/pods?labelSelector=app%3Dweb&fieldSelector=spec.nodeName%3Dn1")
        XCTAssertEqual(list.labelSelector, "app=web")
        XCTAssertEqual(list.fieldSelector, "spec.nodeName=n1")
        let deleteCollection = resolve("DELETE", "/api/v1/namespaces/ns/pods?labelSelector=app%3Dweb")
        XCTAssertEqual(deleteCollection.labelSelector, "app=web")
        // Not for single-object verbs, nor through the deprecated /watch/ prefix.
        XCTAssertEqual(resolve("GET", "/api/v1/namespaces/ns/pods/p?labelSelector=app%3Dweb").labelSelector, "")
        XCTAssertEqual(resolve("GET", "/api/v1/watch/pods?labelSelector=app%3Dweb").labelSelector, "")
    }

    func testVerbPrefixWithoutResourceIsAnError() {
        for path in ["/api/v1/watch", "/api/v1/proxy", "/apis/apps/v1/watch"] {
            XCTAssertThrowsError(try resolver.resolveStrictly(method: "GET", path: path), path) {
                XCTAssertEqual(($0 as? RequestInfoError)?.message, "unable to determine kind and namespace from url, \(path)")
            }
            let info = resolver.resolve(method: "GET", path: path)
            XCTAssertTrue(info.isResourceRequest, path)
            XCTAssertEqual(info.resource, "", path)
        }
        XCTAssertNoThrow(try resolver.resolveStrictly(method: "GET", path: "/api/v1/watch/pods"))
    }

    func testQueryStringDecodesAsGo() {
        let query = RequestInfoResolver.parseQuery("a=1&a=2&b=x+y%21&c&;d=1&e=%zz&=v&&f=%3D")
        XCTAssertEqual(query["a"], ["1", "2"])
        XCTAssertEqual(query["b"], ["x y!"])
        XCTAssertEqual(query["c"], [""])
        XCTAssertNil(query[";d"])
        XCTAssertNil(query["e"])
        XCTAssertEqual(query[""], ["v"])
        XCTAssertEqual(query["f"], ["="])
    }

    // MARK: - cleanPath

    func testCleanPathAcceptsOrdinaryPathsAndDecodesThem() throws {
        let cases: [(String, String)] = [
            ("/", "/"),
            ("/api/v1/namespaces/default/pods", "/api/v1/namespaces/default/pods"),
            ("/api/v1/pods/", "/api/v1/pods/"),
            ("/api/v1/namespaces/default/%73ecrets", "/api/v1/namespaces/default/secrets"),
            ("/api/v1/namespaces/default/configmaps/a%3Ab", "/api/v1/namespaces/default/configmaps/a:b"),
            ("/api/v1/namespaces/default/configmaps/a%25b", "/api/v1/namespaces/default/configmaps/a%b"),
            ("/api/v1/namespaces/default/configmaps/a+b", "/api/v1/namespaces/default/configmaps/a+b"),
            ("/api/v1/namespaces/default/configmaps/...", "/api/v1/namespaces/default/configmaps/..."),
            ("/api/v1/namespaces/default/configmaps/.x", "/api/v1/namespaces/default/configmaps/.x"),
            // An escape in the middle: the plain segments before and after it are kept as they are.
            ("/api/v1/namespaces/%64efault/pods/web-0/", "/api/v1/namespaces/default/pods/web-0/"),
            ("/api/v1/namespaces/d%C3%A9j%C3%A0/pods", "/api/v1/namespaces/déjà/pods"),
        ]
        for (raw, cleaned) in cases {
            XCTAssertEqual(try RequestInfoResolver.cleanPath(raw), cleaned, raw)
        }
        // The decoded path resolves to what the API server reads from the raw one.
        let info = resolver.resolve(method: "GET", path: try RequestInfoResolver.cleanPath("/api/v1/namespaces/default/%73ecrets/db"))
        XCTAssertEqual(info.resource, "secrets")
        XCTAssertEqual(info.name, "db")
    }

    func testCleanPathRejectsAmbiguousPathsInsteadOfNormalising() {
        let cases: [(String, RequestPathError.Reason)] = [
            ("api/v1/pods", .notAbsolute),
            ("", .notAbsolute),
            ("//version", .emptySegment),
            ("/api//v1/pods", .emptySegment),
            ("/api/v1/pods//", .emptySegment),
            ("/api/v1/namespaces/default/pods/../secrets", .dotSegment),
            ("/api/v1/namespaces/default/pods/./x", .dotSegment),
            ("/api/v1/namespaces/default/pods/..", .dotSegment),
            ("/api/v1/namespaces/default/pods/%2e%2e/secrets", .dotSegment),
            ("/api/v1/namespaces/default/pods/.%2E/secrets", .dotSegment),
            ("/api/v1/namespaces/default/pods/%2E", .dotSegment),
            ("/api/v1/namespaces/a%2Fb/pods", .encodedSlash),
            ("/api/v1/namespaces/default%2fsecrets", .encodedSlash),
            ("/api/v1/namespaces/default/pods/%", .invalidEscape),
            ("/api/v1/namespaces/default/pods/%4", .invalidEscape),
            ("/api/v1/namespaces/default/pods/%zz", .invalidEscape),
            ("/api/v1/namespaces/default/pods/%ff", .invalidEscape),
            ("/api/v1/namespaces/default/pods/a%00", .controlCharacter),
            ("/api/v1/namespaces/default/pods/a%0Ab", .controlCharacter),
            ("/api/v1/namespaces/default/pods/a\u{7F}b", .controlCharacter),
            ("/api/v1/namespaces/%64efault/pods/a\tb", .controlCharacter),
            ("/api/v1/namespaces/%64efault/pods/..", .dotSegment),
        ]
        for (raw, reason) in cases {
            XCTAssertThrowsError(try RequestInfoResolver.cleanPath(raw), raw) { error in
                XCTAssertEqual((error as? RequestPathError)?.reason, reason, raw)
                XCTAssertEqual((error as? RequestPathError)?.path, raw)
            }
        }
        XCTAssertThrowsError(try RequestInfoResolver.cleanPath("/a/../b")) {
            XCTAssertEqual("\($0)", "invalid request path \"/a/../b\": path contains a '.' or '..' segment")
        }
    }
}
