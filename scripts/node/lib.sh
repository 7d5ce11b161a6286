# Sourced by scripts/cluster-*.sh and scripts/image*.sh: the one-node cluster's settings and the
# helpers that start, find and stop its processes. Every process is started inside the node's
# network namespace with `nsenter --net` (not `ip netns exec`, which also unshares the mount
# namespace and remounts /sys, so kubelet, containerd and runc would lose cgroups and each
# other's mounts) and recorded by PID; nothing is ever found or stopped by name.

N=${DBINIT_NODE_DIR:-/tmp/dbinit-node}              # all state: pki, etcd, containerd, kubelet, logs, pids
NS=${DBINIT_NETNS:-dbinit-n1}                       # the network namespace the whole node lives in
NODE_IP=${DBINIT_NODE_IP:-10.213.0.2}               # the node's address, on a veth end inside $NS
NODE_GW=${NODE_IP%.*}.1                             # only for a default route; nothing answers there
NODE_NAME=${DBINIT_NODE_NAME:-dbinit-node}
SVC_CIDR=${DBINIT_SVC_CIDR:-10.0.0.0/24}
SVC_IP=${SVC_CIDR%.*}.1                             # the `kubernetes` Service's ClusterIP
CNI_SUBNET=${DBINIT_CNI_SUBNET:-10.88.0.0/16}
CNI_GW=${CNI_SUBNET%.*}.1                           # the bridge (cni0) address
CACHE=${DBINIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dbinit}
# The pod sandbox image: built here from pause.c and imported under this name (never pulled).
PAUSE_IMAGE=${DBINIT_PAUSE_IMAGE:-registry.k8s.io/pause:3.9}
TESTBOX_IMAGE=localhost/dbinit-testbox:1
SOCK=$N/containerd.sock
# The node's own mount namespace (a handle bind-mounted here): the kubelet's fixed host paths
# (/var/log/pods, /var/lib/kubelet, ...) are bound to directories below $N inside it, so that
# this node and any other kubelet on the machine never see (and garbage-collect) each other's
# files, and every mount the node makes (tmpfs, overlay, sandbox netns) stays inside it.
MNT=$N/mnt-ns/mnt
# Host paths the kubelet, containerd and libcni use whatever their flags say, and what they are
# bound to inside the node's mount namespace.
PRIVATE_PATHS="/var/log/pods /var/log/containers /var/lib/kubelet /var/lib/cni"
NSX="nsenter --net=/run/netns/$NS --mount=$MNT"
PIDS=$N/pids
LOGS=$N/logs
export DEBIAN_FRONTEND=noninteractive

# The second node (`make cluster-up NODES=2`): a worker (containerd, kubelet, kube-proxy) in
# its own network and mount namespaces, joined to node 1's namespace by a veth pair. Every name
# derives from node 1's settings, so two clusters with different DBINIT_NODE_DIR/DBINIT_NETNS
# never share one: state in $N/node2, namespace dbinit-n1 -> dbinit-n2 (else NAME-2), node
# address and link subnet one /24 above node 1's (10.213.0.2 -> 10.213.1.2, node 1's end of the
# link 10.213.1.1), pod subnet one /16 above (10.88.0.0/16 -> 10.89.0.0/16), cgroup root /$NS2.
N2=$N/node2
case "$NS" in *1) NS2_DEFAULT=${NS%1}2 ;; *) NS2_DEFAULT=$NS-2 ;; esac
NS2=${DBINIT_NETNS2:-$NS2_DEFAULT}
IFS=. read -r _a _b _c _d <<<"$NODE_IP"
NODE2_IP=${DBINIT_NODE2_IP:-$_a.$_b.$((_c + 1)).2}
IFS=. read -r _a _b _c _d <<<"${CNI_SUBNET%/*}"
CNI2_SUBNET=${DBINIT_CNI2_SUBNET:-$_a.$((_b + 1)).$_c.$_d/${CNI_SUBNET#*/}}
unset _a _b _c _d
LINK1_IP=${NODE2_IP%.*}.1                           # node 1's end of the link, in $NS
NODE2_NAME=${DBINIT_NODE2_NAME:-$NODE_NAME-2}
NODE1_IP=$NODE_IP
N1=$N
NS1=$NS

# select_node2: from here on, N, NS, NODE_IP, ... and the helpers below act on the second
# node (its state dir, namespaces, containerd and pid files). Node 1's values stay in N1,
# NODE1_IP.
select_node2() {
  N=$N2 NS=$NS2 NODE_IP=$NODE2_IP NODE_NAME=$NODE2_NAME CNI_SUBNET=$CNI2_SUBNET
  NODE_GW=$LINK1_IP CNI_GW=${CNI_SUBNET%.*}.1
  SOCK=$N/containerd.sock MNT=$N/mnt-ns/mnt PIDS=$N/pids LOGS=$N/logs
  NSX="nsenter --net=/run/netns/$NS --mount=$MNT"
}

t_start=${t_start:-$(date +%s)}
log() { echo "[${LOG_TAG:-node} +$(($(date +%s) - t_start))s] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# marked PID: PID's environment holds DBINIT_NODE_OWNER=$N. Read whole, then matched: a
# `… | grep -q` would fail under pipefail when grep stops early and the writer dies of SIGPIPE.
marked() {
  local env
  env=$(tr '\0' '\n' 2>/dev/null <"/proc/$1/environ") || return 1
  grep -qxF "DBINIT_NODE_OWNER=$N" <<<"$env"
}

# ours PID: true when PID is alive and is a process we started (start/start_host mark each with
# DBINIT_NODE_OWNER=$N in its environment) or one whose command line names our state dir, so a
# recycled PID of some unrelated process is never taken for ours.
ours() {
  [ -n "$1" ] && [ -r "/proc/$1/cmdline" ] || return 1
  marked "$1" && return 0
  case "$(cat "/proc/$1/cmdline" 2>/dev/null | tr '\0' ' ')" in *"$N/"* | *"/run/netns/$NS "*) return 0 ;; *) return 1 ;; esac
}

# running NAME: the recorded process NAME is alive.
running() { [ -f "$PIDS/$1.pid" ] && ours "$(cat "$PIDS/$1.pid")"; }

# start NAME CMD...: run CMD in the netns in the background (log $LOGS/NAME.log, PID in
# $PIDS/NAME.pid) unless it already runs.
# start_host NAME CMD...: the same, in the host's namespace.
start() { _start "$1" $NSX "${@:2}"; }
start_host() { _start "$@"; }
_start() {
  local name=$1; shift
  if running "$name"; then log "$name already running (pid $(cat "$PIDS/$name.pid"))"; return 0; fi
  # nohup, env and nsenter all exec: $! is the process itself.
  nohup env DBINIT_NODE_OWNER="$N" "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
  log "started $name (pid $!)"
}

# stop NAME: TERM, then KILL after 10 s, the recorded process NAME; forget it.
stop() {
  local f=$PIDS/$1.pid p
  [ -f "$f" ] || return 0
  p=$(cat "$f")
  if ours "$p"; then
    kill "$p" 2>/dev/null || true
    for _ in $(seq 1 40); do ours "$p" || break; sleep 0.25; done
    if ours "$p"; then kill -9 "$p" 2>/dev/null || true; sleep 0.2; fi
    log "stopped $1 (pid $p)"
  fi
  rm -f "$f"
}

# wait_for DESC SECONDS CMD...: poll CMD once a second, at most SECONDS times.
wait_for() {
  local desc=$1 t=$2; shift 2
  for _ in $(seq 1 "$t"); do
    if "$@" >/dev/null 2>&1; then log "$desc: ok"; return 0; fi
    sleep 1
  done
  log "TIMEOUT after ${t}s waiting for $desc"
  return 1
}

# in_ns CMD...: run CMD in the node's network and mount namespaces.
in_ns() { $NSX "$@"; }

# kc ARGS...: kubectl as cluster admin (on either node: the cluster is node 1's).
kc() { KUBECONFIG=$N1/kubeconfig kubectl "$@"; }

# ctr_k8s ARGS...: ctr on the node's containerd, in the CRI namespace.
ctr_k8s() { ctr -a "$SOCK" -n k8s.io "$@"; }

# free_port: a TCP port nothing listens on at the host's 127.0.0.1 right now.
free_port() {
  python3 -c 'import socket,sys
for p in (int(sys.argv[1]),0):
    s=socket.socket()
    try: s.bind(("127.0.0.1",p)); print(s.getsockname()[1]); break
    except OSError: pass
    finally: s.close()' "$1"
}

# apt_install PKG...: install the missing ones.
apt_install() {
  local need=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  [ ${#need[@]} -eq 0 ] && return 0
  log "apt-get install ${need[*]}"
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
}

# buildah with its own vfs store under the cache dir: no daemon, no registry, no RUN steps.
buildah_() { buildah --root "$CACHE/buildah/root" --runroot "$CACHE/buildah/run" --storage-driver vfs "$@"; }
