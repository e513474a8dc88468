#!/usr/bin/env bash
# Builds AgentGate's container image into an OCI layout, with no container engine and no
# registry: the same image as ./Containerfile, from the same steps.
#
#   bash scripts/image.sh [--out DIR] [--tag TAG] [--binary FILE]
#
# 1. `swift build -c release --product agentgate --static-swift-stdlib` with its own scratch
#    path, .build-release, so the debug build in .build is left alone (--binary FILE: package
#    FILE instead, built before).
# 2. The runtime root filesystem, in DIR/../bundle/rootfs: `scripts/image.sh rootfs BINARY ROOTFS`, the
#    step the Containerfile runs too. It holds the stripped binary at /usr/local/bin/agentgate;
#    exactly the shared libraries `ldd` lists for it (glibc, libstdc++, libgcc_s, zlib, the
#    dynamic loader); the CA bundle; /etc/passwd, /etc/group (user and group nonroot, 65532)
#    and /etc/nsswitch.conf; /tmp (1777) and the empty working directory /var/lib/agentgate.
#    No shell, no package manager; every file is owned by root.
# 3. One layer and the image configuration (user 65532:65532, entrypoint
#    /usr/local/bin/agentgate, PATH=/usr/local/bin, working directory /var/lib/agentgate),
#    written with umoci into the OCI layout DIR (default .build-image/oci) as TAG (default: the
#    version the binary prints, e.g. 0.1.0-dev).
# 4. Prints the image's size: the compressed layer as pushed, and the unpacked root filesystem.
#
# Missing tools (umoci, binutils' strip, ca-certificates) are installed with apt-get.
set -euo pipefail

# The runtime's layout; the Containerfile repeats USER, ENV, WORKDIR and ENTRYPOINT.
readonly BINARY_PATH=/usr/local/bin/agentgate
readonly RUN_AS=65532:65532
readonly WORKDIR=/var/lib/agentgate
readonly PATH_ENV=/usr/local/bin

die() { echo "image.sh: $*" >&2; exit 1; }

apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "image.sh: installing $* with apt-get" >&2
  if [ -z "${IMAGE_SH_APT_UPDATED:-}" ]; then
    $sudo apt-get update -qq
    export IMAGE_SH_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# rootfs BINARY DIR: the runtime root filesystem for BINARY, in the empty or new directory DIR.
assemble_rootfs() {
  local binary=$1 rootfs=$2
  [ -x "$binary" ] || die "rootfs: $binary is not an executable file"
  if [ -e "$rootfs" ] && [ -n "$(ls -A "$rootfs")" ]; then die "rootfs: $rootfs is not empty"; fi
  command -v ldd >/dev/null || die "rootfs: ldd is missing (package libc-bin)"
  command -v strip >/dev/null || apt_install binutils
  [ -f /etc/ssl/certs/ca-certificates.crt ] || apt_install ca-certificates

  mkdir -p "$rootfs"
  umask 022
  install -d "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs" "$rootfs$WORKDIR"
  install -d -m 1777 "$rootfs/tmp"
  # Symbols go: a crash still prints Swift's fatal-error message, and the image is smaller.
  strip --strip-all -o "$rootfs$BINARY_PATH" "$binary"
  chmod 0755 "$rootfs$BINARY_PATH"

  # Exactly what the dynamic loader maps for this binary, each at the path ldd prints (the
  # loader's default search path), the file itself rather than its symbolic link.
  local libraries
  libraries=$(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
  [ -n "$libraries" ] || die "rootfs: ldd lists no shared library for $binary; is it a dynamic executable?"
  if ldd "$binary" | grep -q "not found"; then die "rootfs: ldd cannot resolve a library of $binary: $(ldd "$binary" | grep 'not found')"; fi
  local library
  for library in $libraries; do
    install -d "$rootfs$(dirname "$library")"
    cp -L "$library" "$rootfs$library"
    chmod 0755 "$rootfs$library"
  done

  install -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
  # glibc reads /etc/hosts before DNS only when told to.
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group" "$rootfs/etc/nsswitch.conf"
  chown -R 0:0 "$rootfs" 2>/dev/null || true
}

if [ "${1:-}" = rootfs ]; then
  [ $# = 3 ] || die "usage: scripts/image.sh rootfs BINARY DIR"
  assemble_rootfs "$2" "$3"
  exit 0
fi

cd "$(dirname "$0")/.."
out=.build-image/oci
tag=""
binary=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --tag) tag=${2:?--tag needs a tag}; shift 2 ;;
    --binary) binary=${2:?--binary needs a file}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

command -v umoci >/dev/null || apt_install umoci
command -v python3 >/dev/null || apt_install python3

started=$(date +%s)
if [ -z "$binary" ]; then
  command -v swift >/dev/null || die "swift is not installed (need Swift 6.1 or later)"
  scratch=.build-release
  echo "image.sh: swift build -c release --product agentgate --static-swift-stdlib --scratch-path $scratch" >&2
  swift build -c release --product agentgate --static-swift-stdlib --scratch-path "$scratch"
  binary=$scratch/release/agentgate
fi
[ -x "$binary" ] || die "--binary $binary is not an executable file"
built=$(date +%s)
version=$("$binary" version)
tag=${tag:-$version}

# The root filesystem is assembled in the bundle of the new, empty image and repacked as its
# one layer (`umoci insert` would name the layer's root "/", which not every runtime takes).
bundle=$(dirname "$out")/bundle
rootfs=$bundle/rootfs
rm -rf "$bundle" "$out"
umoci init --layout "$out"
umoci new --image "$out:$tag"
umoci unpack --image "$out:$tag" "$bundle" >/dev/null
assemble_rootfs "$binary" "$rootfs"
umoci repack --image "$out:$tag" --history.created_by "scripts/image.sh rootfs $binary (agentgate $version)" "$bundle"
umoci config --image "$out:$tag" \
  --config.user "$RUN_AS" --config.entrypoint "$BINARY_PATH" --config.env "PATH=$PATH_ENV" \
  --config.workingdir "$WORKDIR" \
  --history.created_by "scripts/image.sh config (USER $RUN_AS, ENTRYPOINT $BINARY_PATH)"
umoci gc --layout "$out"

# Sizes from the manifest (what a registry stores) and from the root filesystem itself.
python3 - "$out" "$tag" "$rootfs" <<'PY'
import json, os, sys
layout, tag, rootfs = sys.argv[1:]
index = json.load(open(os.path.join(layout, "index.json")))
descriptor = next(m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
def blob(d): return os.path.join(layout, "blobs", *d["digest"].split(":", 1))
manifest = json.load(open(blob(descriptor)))
layers = sum(layer["size"] for layer in manifest["layers"])
unpacked = 0
for directory, _, files in os.walk(rootfs):
    for name in files:
        path = os.path.join(directory, name)
        if not os.path.islink(path): unpacked += os.path.getsize(path)
mib = lambda n: n / 1048576
print(f"image.sh: {layout}:{tag} ({descriptor['digest']})")
print(f"image.sh: size: {layers} bytes compressed ({mib(layers):.1f} MiB, {len(manifest['layers'])} layer), "
      f"{unpacked} bytes unpacked ({mib(unpacked):.1f} MiB)")
PY
echo "image.sh: built in $((built - started)) s, image assembled in $(($(date +%s) - built)) s" >&2
