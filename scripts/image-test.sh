#!/usr/bin/env bash
# Runs AgentGate's container image as a cluster would, on this machine, with no container engine:
#
#   bash scripts/image.sh && bash scripts/image-test.sh [--image LAYOUT:TAG]
#
# (default: the image scripts/image.sh wrote, .build-image/oci and the version it was tagged with).
#
# 1. Unpacks the image with `umoci unpack`: its root filesystem, and the runtime configuration a
#    container engine derives from the image (user, entrypoint, environment, working directory),
#    which every process below is started with.
# 2. Checks the root filesystem: no shell, no package manager; one executable, the libraries it
#    loads, the CA bundle, /etc/passwd with user 65532.
# 3. Runs each process from that root, mounted read-only, as uid and gid 65532 on this host with no
#    capabilities and no_new_privs (setpriv, then bubblewrap with its own user, pid, ipc and uts
#    namespaces; the host's network, so loopback works), with the mounts config/ gives the pods:
#    an empty /tmp, the gateway's data volume at /var/lib/agentgate and TLS Secret at
#    /etc/agentgate/tls, a ServiceAccount token at /var/run/secrets/kubernetes.io/serviceaccount.
#    The mount points are created in the unpacked root first, as a container runtime does.
# 4. `agentgate version`; then the operator and the gateway, each with the command and arguments
#    of config/manager and config/gateway (addresses moved to 127.0.0.1), configured in-cluster
#    (KUBERNETES_SERVICE_HOST/PORT and its ServiceAccount's token, with config/rbac's rights),
#    against `agentgate dev` on 127.0.0.1: the embedded API server, the development OIDC issuer
#    and the demo scenario (AgentConnection demo/claude-ops). The sandbox runs its own operator
#    and gateway too (it has no switch to leave them out): the image's gateway listens on its own
#    ports, and the image's operator is given the sandbox's gateway URL, so the two operators
#    write the same connection Secret and status instead of undoing each other's.
# 5. An agent's `kubectl get` through the image's gateway is answered, and recorded: the image
#    gateway's admin API lists the exchange (`agentgate sessions`), the sandbox's gateway saw none,
#    and nothing was written to the image's root filesystem.
#
# Runs as root (it hands the volumes to uid 65532 and becomes it). Ports 127.0.0.1:BASE..BASE+8
# (IMAGE_TEST_PORT_BASE, default 27440). Installs umoci and bubblewrap with apt-get when
# missing; needs kubectl, curl and python3. Prints
# `image test: N passed, M failed` and exits non-zero, saying why, at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
started_at=$(date +%s)
work=$PWD/.build-image/test
pids=()

summary() { echo "image test: $passed passed, $failed failed ($(($(date +%s) - started_at)) s)"; }
fail() {
  failed=$((failed + 1))
  echo "image-test.sh: FAIL: $*" >&2
  local log
  for log in "${show_logs[@]:-}"; do
    [ -n "$log" ] && [ -f "$log" ] && { echo "--- last lines of $log:" >&2; tail -n 25 "$log" >&2; }
  done
  summary
  exit 1
}
pass() { passed=$((passed + 1)); echo "ok $passed - $*"; }
show_logs=()

cleanup() {
  local pid
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:-}"; do
    [ -n "$pid" ] || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

# wait_for SECONDS WHAT COMMAND...: retries COMMAND every 0.5 s; on time-out, fails with
# the last thing COMMAND said.
wait_for() {
  local seconds=$1 what=$2; shift 2
  local deadline=$(($(date +%s) + seconds)) said
  until said=$("$@" 2>&1); do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$what (waited ${seconds} s; last: $(tail -n 1 <<<"$said"))"
    sleep 0.5
  done
}

apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "image-test.sh: installing $* with apt-get" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

image=""
while [ $# -gt 0 ]; do
  case "$1" in
    --image) image=${2:?--image needs LAYOUT:TAG}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "image-test.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$image" ]; then
  [ -f .build-image/oci/index.json ] || fail "no image at .build-image/oci; build it first: bash scripts/image.sh"
  tag=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][-1]["annotations"]["org.opencontainers.image.ref.name"])' .build-image/oci/index.json)
  image=.build-image/oci:$tag
fi

# Root, to hand the volumes to uid 65532 and to become it (as a kubelet and runc do).
[ "$(id -u)" = 0 ] || fail "run as root: the test switches to uid 65532 with setpriv"
missing=()
command -v umoci >/dev/null || missing+=(umoci)
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v setpriv >/dev/null || missing+=(util-linux)
[ ${#missing[@]} = 0 ] || apt_install "${missing[@]}"
for tool in kubectl curl python3; do
  command -v "$tool" >/dev/null || fail "$tool is required and was not found"
done

base=${IMAGE_TEST_PORT_BASE:-27440}
api_port=$base sandbox_gateway_port=$((base + 1)) sandbox_admin_port=$((base + 2)) issuer_port=$((base + 3))
gateway_port=$((base + 4)) gateway_admin_port=$((base + 5)) gateway_metrics_port=$((base + 6))
operator_metrics_port=$((base + 7)) operator_health_port=$((base + 8))
for port in $(seq "$base" $((base + 8))); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "127.0.0.1:$port is in use; choose other ports with IMAGE_TEST_PORT_BASE"
  fi
done

# --- 1. Unpack ------------------------------------------------------------------------------
rm -rf "$work"
mkdir -p "$work"
umoci unpack --image "$image" "$work/bundle" >"$work/unpack.log" 2>&1 || { show_logs=("$work/unpack.log"); fail "umoci unpack --image $image"; }
rootfs=$work/bundle/rootfs
chmod 0755 "$work/bundle"  # umoci makes it 0700; uid 65532 has to reach the root inside
# The runtime configuration umoci derived from the image, one value per line.
python3 - "$work/bundle/config.json" >"$work/process" <<'PY'
import json, sys
process = json.load(open(sys.argv[1]))["process"]
print(process["user"]["uid"]); print(process["user"]["gid"]); print(process["cwd"])
print("\x1f".join(process["args"])); print("\x1f".join(process["env"]))
PY
{ read -r uid; read -r gid; read -r cwd; IFS=$'\x1f' read -r -a entrypoint; IFS=$'\x1f' read -r -a environment; } <"$work/process"
pass "unpacked $image: user $uid:$gid, entrypoint ${entrypoint[*]}, working directory $cwd, env ${environment[*]}"

# --- 2. The root filesystem -----------------------------------------------------------------
[ "$uid:$gid" = 65532:65532 ] || fail "the image runs as $uid:$gid, not 65532:65532"
grep -q '^nonroot:x:65532:65532:' "$rootfs/etc/passwd" || fail "/etc/passwd has no user nonroot with uid 65532"
[ -s "$rootfs/etc/ssl/certs/ca-certificates.crt" ] || fail "no CA bundle at /etc/ssl/certs/ca-certificates.crt"
for name in sh bash dash ash busybox apt apt-get dpkg rpm yum apk; do
  found=$(find "$rootfs" -name "$name" -print -quit)
  [ -z "$found" ] || fail "the image holds ${found#"$rootfs"}: no shell and no package manager allowed"
done
executables=$(cd "$rootfs" && find . -type f -perm -u+x ! -name '*.so*' -printf '/%P\n')
[ "$executables" = /usr/local/bin/agentgate ] || fail "the image's executables are [$executables], expected /usr/local/bin/agentgate only"
[ "${entrypoint[0]}" = /usr/local/bin/agentgate ] || fail "the entrypoint is ${entrypoint[*]}"
pass "root filesystem: one executable (/usr/local/bin/agentgate), $(cd "$rootfs" && find . -name '*.so*' | wc -l) libraries, CA bundle, user 65532; no shell, no package manager"

# The mount points a container runtime creates before it makes the root read-only.
mkdir -p "$rootfs/proc" "$rootfs/dev" "$rootfs/etc/agentgate/tls" "$rootfs/var/run/secrets/kubernetes.io/serviceaccount"
touch "$work/root-sealed"
sleep 1

# in_image [bwrap options...] -- ARGS...: runs ARGS in the image's root, read-only, as
# $uid:$gid with no capabilities, environment and working directory from the image.
in_image() {
  local options=()
  while [ "$1" != -- ]; do options+=("$1"); shift; done
  shift
  local env_options=() pair
  for pair in "${environment[@]}"; do env_options+=(--setenv "${pair%%=*}" "${pair#*=}"); done
  setpriv --reuid "$uid" --regid "$gid" --clear-groups \
    bwrap --ro-bind "$rootfs" / --proc /proc --dev /dev --tmpfs /tmp \
      --unshare-user --unshare-pid --unshare-ipc --unshare-uts --uid "$uid" --gid "$gid" \
      --die-with-parent --clearenv "${env_options[@]}" --chdir "$cwd" "${options[@]}" -- "$@"
}

# --- 3. agentgate version -------------------------------------------------------------------
version=$(in_image -- "${entrypoint[@]}" version 2>"$work/version.log") || { show_logs=("$work/version.log"); fail "the entrypoint's \`version\` failed"; }
[ -n "$version" ] || fail "\`agentgate version\` printed nothing"
# config/ runs `command: ["agentgate"]`: found through the image's PATH.
by_path=$(in_image -- agentgate version 2>>"$work/version.log") || { show_logs=("$work/version.log"); fail "\`agentgate version\` through PATH failed"; }
[ "$by_path" = "$version" ] || fail "\`agentgate version\` through PATH printed $by_path, the entrypoint $version"
pass "agentgate version in the image: $version (entrypoint, and \`agentgate\` through PATH as config/ runs it)"

# --- 4. The cluster: the sandbox on loopback ------------------------------------------------
host_agentgate=$rootfs/usr/local/bin/agentgate
dev=$work/dev
"$host_agentgate" dev --data-dir "$dev" --api-port "$api_port" --gateway-port "$sandbox_gateway_port" \
  --admin-port "$sandbox_admin_port" --issuer-port "$issuer_port" >"$work/sandbox.log" 2>&1 &
pids+=($!)
show_logs=("$work/sandbox.log")
wait_for 120 "the sandbox (agentgate dev) to start" grep -q "AgentGate sandbox is running" "$work/sandbox.log"
admin=(kubectl --kubeconfig "$dev/admin.kubeconfig")
"${admin[@]}" apply -k config/rbac >"$work/rbac.log" 2>&1 || { show_logs=("$work/rbac.log"); fail "kubectl apply -k config/rbac"; }
pass "local cluster on https://127.0.0.1:$api_port (agentgate dev, demo scenario) with config/rbac applied"

# In-cluster configuration for a ServiceAccount of config/rbac, as the kubelet mounts it, in
# $work/serviceaccount-ACCOUNT.
service_account_files() {
  local account=$1 dir=$work/serviceaccount-$1
  mkdir -p "$dir"
  "${admin[@]}" -n agentgate-system create token "$account" --duration 2h >"$dir/token" 2>"$work/token.log" \
    || { show_logs=("$work/token.log"); fail "kubectl create token $account"; }
  cp "$dev/ca.crt" "$dir/ca.crt"
  printf agentgate-system >"$dir/namespace"
  chmod 0755 "$dir"; chmod 0644 "$dir"/*
}
in_cluster=(--setenv KUBERNETES_SERVICE_HOST 127.0.0.1 --setenv KUBERNETES_SERVICE_PORT "$api_port")

# The operator: config/manager/deployment.yaml's arguments; the gateway URL is the sandbox's
# (see 4. above).
service_account_files agentgate-operator
operator_sa=$work/serviceaccount-agentgate-operator
in_image "${in_cluster[@]}" --ro-bind "$operator_sa" /var/run/secrets/kubernetes.io/serviceaccount -- \
  agentgate operator --leader-elect --gateway-namespace agentgate-system \
    --gateway-url "https://127.0.0.1:$sandbox_gateway_port" \
    --metrics-address "127.0.0.1:$operator_metrics_port" --health-address "127.0.0.1:$operator_health_port" \
  >"$work/operator.log" 2>&1 &
pids+=($!)
show_logs=("$work/operator.log")
wait_for 60 "the image's operator to answer /readyz on 127.0.0.1:$operator_health_port" \
  curl -fsS "http://127.0.0.1:$operator_health_port/readyz"
holder_is_set() { [ -n "$("${admin[@]}" -n agentgate-system get lease agentgate-operator -o 'jsonpath={.spec.holderIdentity}')" ]; }
wait_for 30 "the image's operator to hold Lease agentgate-system/agentgate-operator" holder_is_set
holder=$("${admin[@]}" -n agentgate-system get lease agentgate-operator -o 'jsonpath={.spec.holderIdentity}')
# A pass that ends well is counted as success, or requeue_after (the next credential rotation).
reconciled() {
  curl -fsS "http://127.0.0.1:$operator_metrics_port/metrics" \
    | grep -E '^controller_runtime_reconcile_total\{.*controller="agentconnection".*result="(success|requeue_after)".*\} [1-9]'
}
wait_for 30 "the image's operator to reconcile AgentConnection demo/claude-ops (controller_runtime_reconcile_total)" reconciled
errors=$(curl -fsS "http://127.0.0.1:$operator_metrics_port/metrics" \
  | sed -n 's/^controller_runtime_reconcile_errors_total{controller="agentconnection"} //p')
[ "$errors" = 0 ] || fail "the image's operator counted $errors failed reconciles of AgentConnections"
pass "operator from the image: in-cluster as ServiceAccount agentgate-operator, ready, leader ($holder), reconciled demo/claude-ops"

# The gateway: config/gateway/deployment.yaml's arguments and volumes (TLS from the sandbox CA).
service_account_files agentgate-gateway
gateway_sa=$work/serviceaccount-agentgate-gateway
tls=$work/gateway-tls
data=$work/gateway-data
mkdir -p "$tls" "$data"
cp "$dev/gateway-tls.crt" "$tls/tls.crt"
cp "$dev/gateway-tls.key" "$tls/tls.key"
chown -R "$uid:$gid" "$tls" "$data"
chmod 0750 "$data"
in_image "${in_cluster[@]}" --ro-bind "$gateway_sa" /var/run/secrets/kubernetes.io/serviceaccount \
  --ro-bind "$tls" /etc/agentgate/tls --bind "$data" /var/lib/agentgate -- \
  agentgate gateway --listen "127.0.0.1:$gateway_port" --admin-listen "127.0.0.1:$gateway_admin_port" \
    --metrics-address "127.0.0.1:$gateway_metrics_port" \
    --tls-cert /etc/agentgate/tls/tls.crt --tls-key /etc/agentgate/tls/tls.key \
    --data-dir /var/lib/agentgate --store sqlite:/var/lib/agentgate/sessions.db \
  >"$work/gateway.log" 2>&1 &
pids+=($!)
show_logs=("$work/gateway.log")
# Ready: the connection configuration is synced and the store answers.
wait_for 60 "the image's gateway to be ready (/readyz on 127.0.0.1:$gateway_metrics_port)" \
  curl -fsS "http://127.0.0.1:$gateway_metrics_port/readyz"
pass "gateway from the image: in-cluster as ServiceAccount agentgate-gateway, ready, HTTPS on 127.0.0.1:$gateway_port, SQLite store on its data volume"

# Both processes of the image: uid and gid 65532 on this host, no capabilities, no_new_privs.
image_pids=$(pgrep -u "$uid" -x agentgate || true)
[ "$(echo "$image_pids" | grep -c .)" = 2 ] || fail "expected the operator and the gateway as uid $uid, found pids [$image_pids]"
for pid in $image_pids; do
  status=$(cat "/proc/$pid/status")
  grep -Eq "^Uid:\s+$uid\s+$uid\s+$uid\s+$uid$" <<<"$status" || fail "pid $pid: $(grep ^Uid: <<<"$status")"
  grep -Eq "^Gid:\s+$gid\s+$gid\s+$gid\s+$gid$" <<<"$status" || fail "pid $pid: $(grep ^Gid: <<<"$status")"
  grep -Eq "^CapEff:\s+0+$" <<<"$status" || fail "pid $pid has capabilities: $(grep ^CapEff: <<<"$status")"
  grep -Eq "^NoNewPrivs:\s+1$" <<<"$status" || fail "pid $pid may gain privileges (NoNewPrivs is not 1)"
done
pass "operator and gateway run as uid/gid $uid:$gid on this host, CapEff 0, NoNewPrivs 1 (pids $(echo $image_pids))"

# --- 5. An agent through the image's gateway ------------------------------------------------
agent_token=$("$host_agentgate" dev token --data-dir "$dev" --connection demo/claude-ops)
"$host_agentgate" kubeconfig --data-dir "$dev" --connection demo/claude-ops \
  --server "https://127.0.0.1:$gateway_port/c/demo/claude-ops" --token "$agent_token" >"$work/agent.kubeconfig"
agent_get() { kubectl --kubeconfig "$work/agent.kubeconfig" get deployments -o name >"$work/agent.out" 2>"$work/agent.err"; }
show_logs=("$work/agent.err" "$work/gateway.log")
# kubectl is retried for a while: a connection the gateway does not serve yet answers 404.
wait_for 30 "kubectl get deployments through the image's gateway" agent_get
grep -qx deployment.apps/web "$work/agent.out" || fail "kubectl get deployments through the image's gateway answered [$(cat "$work/agent.out")], expected deployment.apps/web"
pass "agent's kubectl get deployments through https://127.0.0.1:$gateway_port/c/demo/claude-ops answered: $(tr '\n' ' ' <"$work/agent.out")"

admin_token_file=$data/admin-token
[ -s "$admin_token_file" ] || fail "the gateway wrote no admin token in its data directory /var/lib/agentgate"
sessions=(sessions list --admin-url "http://127.0.0.1:$gateway_admin_port" --token "$(cat "$admin_token_file")"
  --connection demo/claude-ops --verb list --resource deployments -o json)
"$host_agentgate" "${sessions[@]}" >"$work/sessions.json" 2>"$work/sessions.err" \
  || { show_logs=("$work/sessions.err"); fail "agentgate sessions list against the image gateway's admin API"; }
session=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); items = s.get("items", []); print(items[0]["id"] if items else "")' "$work/sessions.json")
[ -n "$session" ] || fail "the image's gateway recorded no session with a list of deployments: $(cat "$work/sessions.json")"
"$host_agentgate" sessions show --admin-url "http://127.0.0.1:$gateway_admin_port" --token "$(cat "$admin_token_file")" \
  "$session" -o json >"$work/session.json" 2>"$work/sessions.err" || { show_logs=("$work/sessions.err"); fail "agentgate sessions show $session"; }
python3 - "$work/session.json" <<'PY' || fail "session $session holds no answered, masked list of deployments: $(head -c 600 "$work/session.json")"
import json, sys
exchanges = json.load(open(sys.argv[1])).get("exchanges", [])
# The demo Deployment's API_TOKEN value is masked by the scenario's MaskingRule.
sys.exit(0 if any(e.get("verb") == "list" and e.get("resource") == "deployments" and e.get("statusCode") == 200
                  and "***MASKED***" in e.get("responseBody", "") for e in exchanges) else 1)
PY
[ -s "$data/sessions.db" ] || fail "no SQLite store at /var/lib/agentgate/sessions.db on the gateway's data volume"
pass "recorded by the image's gateway, masked: session $session (agentgate sessions list/show on its admin API), store /var/lib/agentgate/sessions.db"

sandbox_sessions=$("$host_agentgate" sessions list --data-dir "$dev" --connection demo/claude-ops -o name 2>&1) \
  || fail "agentgate sessions list against the sandbox's gateway: $sandbox_sessions"
[ -z "$sandbox_sessions" ] || fail "the sandbox's own gateway recorded sessions [$sandbox_sessions]; the agent's request must have gone through the image's gateway only"
pass "the sandbox's own gateway recorded nothing: the answer came from the image's gateway"

written=$(find "$rootfs" -newer "$work/root-sealed" -print | head -5)
[ -z "$written" ] || fail "files written in the image's root filesystem: $written"
pass "read-only root: nothing in the image's root filesystem changed"

summary
