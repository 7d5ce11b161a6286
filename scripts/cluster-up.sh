#!/usr/bin/env bash
# `make cluster-up`: a real one-node Kubernetes 1.20 cluster on this machine, entirely inside a
# network namespace it creates ($DBINIT_NETNS, default dbinit-n1): etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kube-proxy, containerd + runc and the CNI
# bridge, from Debian packages and the cached source build (scripts/k8s-build.sh). The node's
# address ($DBINIT_NODE_IP, default 10.213.0.2) sits on a veth pair whose both ends are in the
# namespace; nothing is connected to the host or the outside. The node also has its own mount
# namespace (the kubelet's fixed paths bound below the state dir). The apiserver is forwarded
# to the host's 127.0.0.1 so that one KUBECONFIG works on the host and in the namespace.
# State, certificates, logs and PIDs live in $DBINIT_NODE_DIR (default /tmp/dbinit-node);
# `$DBINIT_NODE_DIR/env` is sourceable. Idempotent: a second run starts only what is missing.
# Must run as root. `make cluster-down` undoes all of it. See shared/recipes/one-node-cluster.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=node/lib.sh
. "$here/node/lib.sh"
LOG_TAG=cluster-up
[ "$(id -u)" -eq 0 ] || die "cluster-up needs root (network namespace, mounts, cgroups, iptables)"

# ---- packages ------------------------------------------------------------------------------
apt_install containerd runc containernetworking-plugins etcd-server openssl iptables conntrack \
  iproute2 util-linux curl python3 buildah busybox-static gcc libc6-dev golang-go
# kubectl: the machine's own if it has one (any recent client talks to 1.20), else Debian's.
command -v kubectl >/dev/null || apt_install kubernetes-client

# ---- Kubernetes binaries: one cached build shared with `make envtest` ------------------------
BIN=${DBINIT_K8S_BIN_DIR:-$("$here/k8s-build.sh")}
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing (scripts/k8s-build.sh builds it)"
done

mkdir -p "$N" "$PIDS" "$LOGS"
chmod 755 "$N"

# ---- the network namespace -------------------------------------------------------------------
# Only a namespace this state dir made is used (and later deleted).
if [ -e "/run/netns/$NS" ]; then
  [ -f "$N/netns" ] && [ "$(cat "$N/netns")" = "$NS" ] ||
    die "network namespace $NS exists but was not made by $N; choose another DBINIT_NETNS or remove it (ip netns del $NS)"
else
  ip netns add "$NS"
  echo "$NS" >"$N/netns"
  ip -n "$NS" link set lo up
  # No dummy module here: a veth pair with both ends inside, the node address on one end, and a
  # default route through it (components want one; it leads nowhere).
  ip -n "$NS" link add nodeif0 type veth peer name nodeif1
  ip -n "$NS" addr add "$NODE_IP/24" dev nodeif0
  ip -n "$NS" link set nodeif0 up
  ip -n "$NS" link set nodeif1 up
  ip -n "$NS" route add default via "$NODE_GW" dev nodeif0 onlink
  log "network namespace $NS: node address $NODE_IP"
fi

# ---- the mount namespace -----------------------------------------------------------------------
# A namespace handle must sit on a private mount, hence the self-bind of $N/mnt-ns. The new
# namespace is a slave of the host's: host mounts show up inside, none of the node's leak out.
if [ "$(stat -f -c %T "$MNT" 2>/dev/null)" != nsfs ]; then
  mkdir -p "$N/mnt-ns"
  mountpoint -q "$N/mnt-ns" || mount --bind "$N/mnt-ns" "$N/mnt-ns"
  mount --make-private "$N/mnt-ns"
  touch "$MNT"
  unshare --mount="$MNT" --propagation slave true
  for p in $PRIVATE_PATHS; do
    if [ ! -d "$p" ]; then mkdir -p "$p" && echo "$p" >>"$N/host-dirs-made"; fi
    mkdir -p "$N/host$p"
    nsenter --mount="$MNT" mount --bind "$N/host$p" "$p"
  done
  log "mount namespace $MNT: $PRIVATE_PATHS bound below $N/host"
fi

# ---- images for the node: pause (sandbox) and a busybox test box -----------------------------
read -r pause_tar testbox_tar < <("$here/node/aux-images.sh")

# ---- PKI and configuration -----------------------------------------------------------------------
# The apiserver listens on the same port inside the namespace as its forwarder on the host's
# loopback, so https://127.0.0.1:$port is the apiserver from both sides.
if [ -f "$N/apiserver-port" ]; then port=$(cat "$N/apiserver-port"); else port=$(free_port 16443); echo "$port" >"$N/apiserver-port"; fi
NODE_NAME=$NODE_NAME NODE_IP=$NODE_IP SVC_IP=$SVC_IP CNI_GW=$CNI_GW \
  "$here/node/certs.sh" "$N/pki" "https://127.0.0.1:$port"
P=$N/pki
subst() { sed -e "s|@N@|$N|g" -e "s|@NS@|$NS|g" -e "s|@NODE_IP@|$NODE_IP|g" -e "s|@NODE_NAME@|$NODE_NAME|g" \
  -e "s|@CNI_SUBNET@|$CNI_SUBNET|g" -e "s|@CNI_GW@|$CNI_GW|g" -e "s|@CNI_NAME@|dbinit-$NS|g" \
  -e "s|@PAUSE_IMAGE@|$PAUSE_IMAGE|g" "$1"; }
# write_config TEMPLATE FILE: only when the content changes; kube-proxy exits as soon as its
# config file is written to, even with the same bytes.
write_config() {
  subst "$1" >"$2.new"
  if cmp -s "$2.new" "$2"; then rm -f "$2.new"; else mv "$2.new" "$2"; fi
}
mkdir -p "$N/containerd" "$N/cni/net.d" "$N/kubelet"
write_config "$here/node/containerd.toml" "$N/containerd/config.toml"
write_config "$here/node/cni-bridge.conflist" "$N/cni/net.d/10-bridge.conflist"
write_config "$here/node/kubelet-config.yaml" "$N/kubelet/config.yaml"
write_config "$here/node/kube-proxy-config.yaml" "$N/kube-proxy.yaml"
write_config <(printf 'nameserver %s\noptions timeout:1 attempts:1\n' "$NODE_IP") "$N/resolv.conf"
write_config "$P/admin.kubeconfig" "$N/kubeconfig"

# ---- etcd and the control plane ------------------------------------------------------------
start etcd etcd --name "$NODE_NAME" --data-dir "$N/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster "$NODE_NAME=http://127.0.0.1:2380" --listen-metrics-urls http://127.0.0.1:2381
wait_for etcd 60 in_ns curl -fsS http://127.0.0.1:2379/health

start kube-apiserver "$BIN/kube-apiserver" \
  --etcd-servers=http://127.0.0.1:2379 \
  --advertise-address="$NODE_IP" --bind-address=0.0.0.0 --secure-port="$port" --insecure-port=0 \
  --service-cluster-ip-range="$SVC_CIDR" --allow-privileged=true \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --client-ca-file="$P/ca.crt" --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
  --kubelet-client-certificate="$P/apiserver-kubelet-client.crt" --kubelet-client-key="$P/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP,Hostname \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --api-audiences=https://kubernetes.default.svc.cluster.local \
  --feature-gates=TTLAfterFinished=true
start_host apiserver-forward python3 "$here/node/netns-forward.py" "$port" "/run/netns/$NS" 127.0.0.1
wait_for kube-apiserver 120 kc get --raw /readyz

start kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig="$P/controller-manager.kubeconfig" --authentication-kubeconfig="$P/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$P/controller-manager.kubeconfig" \
  --controllers='*' --use-service-account-credentials=true --leader-elect=false --port=0 \
  --bind-address=127.0.0.1 \
  --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
  --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
  --service-cluster-ip-range="$SVC_CIDR" --feature-gates=TTLAfterFinished=true
start kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig="$P/scheduler.kubeconfig" --authentication-kubeconfig="$P/scheduler.kubeconfig" \
  --authorization-kubeconfig="$P/scheduler.kubeconfig" --leader-elect=false --port=0 --bind-address=127.0.0.1

# ---- containerd and the node's images ------------------------------------------------------------
start containerd containerd --config "$N/containerd/config.toml"
wait_for containerd 30 ctr -a "$SOCK" version
for tar in $pause_tar $testbox_tar; do ctr_k8s images import "$tar" >/dev/null; done

# ---- kubelet ------------------------------------------------------------------------------------------
# Pods go below their own cgroup root (one per hierarchy), which must exist before the kubelet.
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  mkdir -p "/sys/fs/cgroup/$NS"                      # cgroup v2
else
  for h in /sys/fs/cgroup/*/; do
    [ -L "${h%/}" ] || mkdir -p "$h$NS" 2>/dev/null || true
  done
  # a new v1 cpuset starts with no CPUs and no memory nodes: inherit the parent's
  for f in cpus mems; do
    c=/sys/fs/cgroup/cpuset/$NS/cpuset.$f
    [ -f "$c" ] && [ -z "$(cat "$c")" ] && cat "/sys/fs/cgroup/cpuset/cpuset.$f" >"$c"
  done
fi
start kubelet "$BIN/kubelet" --config="$N/kubelet/config.yaml" \
  --kubeconfig="$P/kubelet.kubeconfig" --root-dir="$N/kubelet/root" --cert-dir="$N/kubelet/pki" \
  --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
  --container-runtime=remote --container-runtime-endpoint="unix://$SOCK" \
  --pod-infra-container-image="$PAUSE_IMAGE" --v=1

# ---- kube-proxy (iptables, inside the namespace): Service ClusterIPs ------------------------------
start kube-proxy "$BIN/kube-proxy" --config="$N/kube-proxy.yaml"

wait_for "node $NODE_NAME Ready" 180 kc wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s
wait_for "default ServiceAccount" 60 kc -n default get serviceaccount default

cat >"$N/env.new" <<ENV
# Written by scripts/cluster-up.sh; \`. $N/env\` to use the one-node cluster.
export KUBECONFIG=$N/kubeconfig
export DBINIT_NODE_DIR=$N
export DBINIT_NETNS=$NS
export DBINIT_NODE_IP=$NODE_IP
export DBINIT_NODE_NAME=$NODE_NAME
export DBINIT_CONTAINERD_SOCK=$SOCK
export DBINIT_APISERVER_PORT=$port
export DBINIT_CNI_GW=$CNI_GW
export DBINIT_SVC_CIDR=$SVC_CIDR
export DBINIT_PAUSE_IMAGE=$PAUSE_IMAGE
export DBINIT_TESTBOX_IMAGE=$TESTBOX_IMAGE
ENV
if cmp -s "$N/env.new" "$N/env"; then rm -f "$N/env.new"; else mv "$N/env.new" "$N/env"; fi
log "cluster up in $(($(date +%s) - t_start))s (state $N, namespace $NS, node $NODE_IP)"
echo "export KUBECONFIG=$N/kubeconfig"
