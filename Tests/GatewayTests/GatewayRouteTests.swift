import Gateway
import TestSupport
import XCTest

/// The route parser: connection prefix, raw path kept for forwarding, tricks refused.
final class GatewayRouteTests: XCTestCase {
    func testConnectionPrefixIsStrippedAndTheRawRemainderKept() throws {
        let route = try GatewayRoute.parse("/c/team-a/bot/api/v1/namespaces/x/configmaps/a%3Ab?watch=1&labelSelector=a%3Db").get()
        XCTAssertEqual(route.namespace, "team-a")
        XCTAssertEqual(route.name, "bot")
        XCTAssertEqual(route.rawPath, "/api/v1/namespaces/x/configmaps/a%3Ab")
        XCTAssertEqual(route.decodedPath, "/api/v1/namespaces/x/configmaps/a:b")
        XCTAssertEqual(route.upstreamTarget, "/api/v1/namespaces/x/configmaps/a%3Ab?watch=1&labelSelector=a%3Db")
        XCTAssertEqual(try GatewayRoute.parse("/c/ns/n").get().rawPath, "/")
    }

    func testPathTricksAreInvalidAndNonConnectionPathsAreNotFound() {
        for uri in ["/c/a/b/../../c/d/api", "/c/ns/n/api/v1/namespaces/a%2Fb/pods", "/c/ns/n//api", "/c/ns/n/api/%2e%2e/x",
                    "/c/ns/n/api/v1/pods%zz", "/c/ns/n/api/v1/pods%00", "/c/./n/api", "c/ns/n/api"] {
            guard case .failure(.invalidPath) = GatewayRoute.parse(uri) else {
                XCTFail("\(uri) must be refused as an invalid path")
                continue
            }
        }
        for uri in ["/api/v1/pods", "/c/ns", "/x/ns/n/api"] {
            XCTAssertEqual(GatewayRoute.parse(uri), .failure(.notAConnectionPath), uri)
        }
    }

    func testAcceptIsSteeredAwayFromProtobufKeepingTableVariants() {
        XCTAssertEqual(UpstreamHeaders.jsonAccept("application/vnd.kubernetes.protobuf,application/json"), "application/json")
        XCTAssertEqual(UpstreamHeaders.jsonAccept("application/vnd.kubernetes.protobuf"), "application/json")
        XCTAssertEqual(UpstreamHeaders.jsonAccept("application/json;as=Table;v=v1;g=meta.k8s.io,application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json"),
                       "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
        XCTAssertEqual(UpstreamHeaders.jsonAccept(""), "application/json")
    }
}
