// swift-tools-version:6.1
import PackageDescription

// One package, one executable. Modules follow ../shared/DESIGN.md; each depends only on
// what it uses, so `swift build --target X` stays cheap.
let package = Package(
    name: "agentgate",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "agentgate", targets: ["agentgate"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // Kubernetes value model shared by every other module: JSON values, metav1 types,
        // selectors, RequestInfo, patch types, Go durations.
        .target(
            name: "KubeCore",
            dependencies: [.product(name: "Yams", package: "Yams")]
        ),
        // What an API server does with those values: CEL, patch application, server-side apply,
        // structural-schema validation. Only the local cluster needs it.
        .target(name: "KubeMachinery", dependencies: ["KubeCore"]),
        // The three custom resources: Swift types, CRD manifests, compiled gateway config.
        .target(
            name: "AgentGateAPI",
            dependencies: ["KubeCore"]
        ),
        // Kubernetes client: kubeconfig/in-cluster config, typed and untyped CRUD, patches,
        // watch that survives restarts and 410s, TokenRequest. Built on AsyncHTTPClient.
        .target(
            name: "KubeClient",
            dependencies: [
                "KubeCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Informers, work queue, reconcilers, leader election, Events, metrics and probes:
        // the small controller runtime the operator is built on.
        .target(
            name: "ControllerRuntime",
            dependencies: [
                "KubeCore", "KubeClient", "HTTPServing",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // OIDC discovery and JWKS fetching: the gateway verifies with the keys, the operator
        // reports whether an issuer answers.
        .target(
            name: "OIDC",
            dependencies: [
                "KubeCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The operator: AgentConnection, MaskingRule and RecordingPolicy into gateway configuration.
        .target(
            name: "Operator",
            dependencies: [
                "ControllerRuntime", "AgentGateAPI", "KubeClient", "KubeCore", "Masking", "OIDC",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The HTTP/1.1 (+TLS, +WebSocket upgrade) server the local cluster and the gateway share.
        .target(
            name: "HTTPServing",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The system zlib, for SPDY/3 header compression.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // SPDY/3.1 frames, header compression and the server side of a connection: what
        // kubectl's port-forward and its exec/attach fallback speak. Used by the local
        // cluster (serving) and the gateway (relaying, decoded).
        .target(name: "SPDY", dependencies: ["CZlib"]),
        // Embedded, in-memory Kubernetes API server (tests and `agentgate dev`).
        .target(
            name: "LocalCluster",
            dependencies: [
                "KubeCore", "KubeMachinery", "HTTPServing", "SPDY",
                // The embedded workload controllers run on ControllerRuntime's Controller and WorkQueue.
                "ControllerRuntime",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Secret masking engine: pure, allocation-lean, fuzzable.
        .target(
            name: "Masking",
            dependencies: ["KubeCore", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // Recorded sessions and exchanges: one protocol, SQLite and PostgreSQL backends.
        // The SQLite driver calls the C API of the SQLite that sqlite-nio vendors
        // (`import VaporCSQLite`); sqlite-nio publishes only the `SQLiteNIO` product, so that
        // product is the one way in. A system libsqlite3 instead would add a shared library
        // to the single-binary image.
        .target(
            name: "SessionStore",
            dependencies: [
                "KubeCore", "CZlib",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The data path: OIDC-authenticated, recorded, masked reverse proxy to the Kubernetes API.
        .target(
            name: "Gateway",
            dependencies: [
                "KubeCore", "AgentGateAPI", "HTTPServing", "KubeClient", "SessionStore", "Masking", "ControllerRuntime", "SPDY",
                "OIDC",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTPCompression", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The admin web page, compiled into the binary as byte arrays (`PackageResources`):
            // no resource bundle beside the executable, which the container image ships alone.
            resources: [
                .embedInCode("Admin/Web/index.html"),
                .embedInCode("Admin/Web/app.js"),
                .embedInCode("Admin/Web/app.css"),
            ]
        ),
        .target(
            name: "Sandbox",
            dependencies: [
                "KubeCore", "AgentGateAPI", "LocalCluster", "Gateway", "Operator", "KubeClient", "HTTPServing",
                .product(name: "Logging", package: "swift-log"),
                // The dev OIDC issuer (DevIssuer/): signing keys and tokens.
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "agentgate",
            dependencies: [
                "KubeCore", "AgentGateAPI", "LocalCluster", "Gateway", "Operator", "ControllerRuntime", "KubeClient", "HTTPServing",
                "Sandbox",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "KubeCoreTests", dependencies: ["KubeCore"]),
        .testTarget(name: "KubeMachineryTests", dependencies: ["KubeMachinery", "KubeCore"]),
        // KubeMachinery: the CRD manifests' schemas and CEL rules are checked by the real validator.
        .testTarget(name: "AgentGateAPITests", dependencies: ["AgentGateAPI", "KubeCore", "KubeMachinery"]),
        .testTarget(
            name: "LocalClusterTests",
            dependencies: [
                "LocalCluster", "HTTPServing", "AgentGateAPI", "KubeCore", "TestSupport", "SPDY",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // Fixtures shared by the test targets: a real embedded API server, real programs.
        .target(
            name: "TestSupport",
            dependencies: ["KubeClient", "LocalCluster", "AgentGateAPI", "KubeCore", "HTTPServing"],
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "KubeClientTests", dependencies: ["KubeClient", "AgentGateAPI", "KubeCore", "TestSupport"]),
        .testTarget(
            name: "ControllerRuntimeTests",
            dependencies: [
                "ControllerRuntime", "KubeClient", "AgentGateAPI", "KubeCore", "TestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "OperatorTests",
            dependencies: [
                "Operator", "ControllerRuntime", "KubeClient", "LocalCluster", "AgentGateAPI", "KubeCore", "TestSupport", "Gateway",
                "HTTPServing", "SessionStore", "Sandbox",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(name: "SandboxTests", dependencies: ["KubeCore", "HTTPServing", "TestSupport"]),
        .testTarget(name: "MaskingTests", dependencies: ["Masking", "KubeCore"]),
        .testTarget(
            name: "SessionStoreTests",
            dependencies: [
                "SessionStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "Gateway", "LocalCluster", "SessionStore", "Masking", "AgentGateAPI", "KubeCore", "KubeClient", "HTTPServing", "TestSupport",
                "ControllerRuntime", "Sandbox",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
        // Benchmarks: executables that print figures, kept apart from the product modules in
        // Benchmarks/ (the libFuzzer targets are in Fuzz/, built by scripts/fuzz.sh).
        .executableTarget(
            name: "LocalClusterBenchmark",
            dependencies: ["LocalCluster", "HTTPServing", "AgentGateAPI", "KubeCore", .product(name: "NIOHTTP1", package: "swift-nio")],
            path: "Benchmarks/LocalClusterBenchmark"
        ),
        .executableTarget(name: "MaskingBenchmark", dependencies: ["Masking", "KubeCore"], path: "Benchmarks/MaskingBenchmark"),
        .executableTarget(
            name: "OperatorBenchmark",
            dependencies: ["LocalCluster", "KubeClient", "AgentGateAPI", "KubeCore"],
            path: "Benchmarks/OperatorBenchmark"
        ),
        // Gateway throughput, added latency and CPU per request against nginx (needs nginx and wrk).
        .executableTarget(
            name: "GatewayBenchmark",
            dependencies: ["Gateway", "HTTPServing", "SessionStore", "AgentGateAPI", "KubeClient", "Sandbox",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOHTTP1", package: "swift-nio")],
            path: "Benchmarks/GatewayBenchmark"
        ),
    ],
    swiftLanguageModes: [.v5]
)
