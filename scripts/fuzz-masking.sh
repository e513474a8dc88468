#!/usr/bin/env bash
# Fuzzes the masking engine with libFuzzer for N seconds (default 300).
#
#   scripts/fuzz-masking.sh [SECONDS] [WORKDIR]
#
# Fuzz/MaskingFuzz.swift stays out of the normal build. This script lays out a throw-away
# package in WORKDIR (default .build/fuzz-masking) whose targets are symlinks to Sources/KubeCore,
# Sources/Masking and the fuzz file, and builds it with `swiftc -sanitize=fuzzer,address
# -parse-as-library` on every Swift module (libFuzzer supplies `main`). swift-crypto is left out
# of that package: Masking compiles its keyed hash under `#if canImport(Crypto)` and uses a
# non-cryptographic stand-in in the fuzz build, which does not change what is masked.
# Crashes and invariant violations are written to WORKDIR/artifacts; the corpus persists in
# WORKDIR/corpus between runs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${1:-300}
WORK=${2:-$ROOT/.build/fuzz-masking}
mkdir -p "$WORK/Sources/MaskingFuzz" "$WORK/corpus" "$WORK/artifacts"
ln -sfn "$ROOT/Sources/KubeCore" "$WORK/Sources/KubeCore"
ln -sfn "$ROOT/Sources/Masking" "$WORK/Sources/Masking"
ln -sfn "$ROOT/Fuzz/MaskingFuzz.swift" "$WORK/Sources/MaskingFuzz/MaskingFuzz.swift"
YAMS=$(grep -o 'https://github.com/jpsim/Yams.git", from: "[^"]*"' "$ROOT/Package.swift" | sed 's/.*from: "//; s/"//')
cat > "$WORK/Package.swift" <<PKG
// swift-tools-version:6.1
import PackageDescription
let package = Package(
    name: "masking-fuzz",
    dependencies: [.package(url: "https://github.com/jpsim/Yams.git", from: "$YAMS")],
    targets: [
        .target(name: "KubeCore", dependencies: [.product(name: "Yams", package: "Yams")]),
        .target(name: "Masking", dependencies: ["KubeCore"]),
        .target(name: "MaskingFuzz", dependencies: ["Masking", "KubeCore"]),
    ],
    swiftLanguageModes: [.v5]
)
PKG
cd "$WORK"
# The modules are built as libraries (an executable target would bring its own `main`, which
# clashes with libFuzzer's), then linked by swiftc with the fuzzer runtime.
swift build -c release -j "${JOBS:-2}" --target MaskingFuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -g
OBJECTS=$(find .build/release/ -name '*.o' \( -path '*/CYaml.build/*' -o -path '*/Yams.build/*' \
    -o -path '*/KubeCore.build/*' -o -path '*/Masking.build/*' -o -path '*/MaskingFuzz.build/*' \))
swiftc -sanitize=fuzzer,address -g $OBJECTS -o .build/release/MaskingFuzz
# Seeds: one byte per mode, then a few real-looking documents.
printf '\x00{"kind":"Secret","data":{"a":"YWJj"}}' > corpus/seed-json
printf '\x01\x05\x07\x03abcdefghijklmnop' > corpus/seed-planted
printf '\x02\x10log line password=hunter22 Bearer abcdefghijk\n' > corpus/seed-text
exec ./.build/release/MaskingFuzz corpus -max_total_time="$DURATION" -max_len=16384 \
    -artifact_prefix=artifacts/ -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
