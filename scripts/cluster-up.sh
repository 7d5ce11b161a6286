#!/usr/bin/env bash
# `make cluster-up [NODES=2]`: a real Kubernetes 1.20 cluster on this machine, entirely inside a
# network namespace it creates ($DBINIT_NETNS, default dbinit-n1): etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kube-proxy, containerd + runc and the CNI
# bridge, from Debian packages and the cached source build (scripts/k8s-build.sh). The node's
# address ($DBINIT_NODE_IP, default 10.213.0.2) sits on a veth pair whose both ends are in the
# namespace; nothing is connected to the host or the outside. The node also has its own mount
# namespace (the kubelet's fixed paths bound below the state dir). The apiserver is forwarded
# to the host's 127.0.0.1 so that one KUBECONFIG works on the host and in the namespace.
# NODES=2 adds a second node (containerd, kubelet, kube-proxy) in a network and mount namespace
# of its own ($DBINIT_NETNS with its last 1 made 2: dbinit-n2; state in $DBINIT_NODE_DIR/node2),
# joined to the first by a veth pair on a /24 of its own (node 1 10.213.1.1, node 2 10.213.1.2,
# its node address) with its own pod subnet (10.89.0.0/16); names derive as node/lib.sh says.
# State, certificates, logs and PIDs live in $DBINIT_NODE_DIR (default /tmp/dbinit-node);
# `$DBINIT_NODE_DIR/env` is sourceable. Idempotent: a second run starts only what is missing.
# Must run as root. `make cluster-down` undoes all of it. See shared/recipes/one-node-cluster.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=node/lib.sh
. "$here/node/lib.sh"
# shellcheck source=node/worker.sh
. "$here/node/worker.sh"
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
node_netns
if [ "$NETNS_MADE" = 1 ]; then
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
node_mountns

# ---- images for the node: pause (sandbox) and a busybox test box -----------------------------
read -r pause_tar testbox_tar < <("$here/node/aux-images.sh")

# ---- PKI and configuration -----------------------------------------------------------------------
# The apiserver listens on the same port inside the namespace as its forwarder on the host's
# loopback, so https://127.0.0.1:$port is the apiserver from both sides.
if [ -f "$N/apiserver-port" ]; then port=$(cat "$N/apiserver-port"); else port=$(free_port 16443); echo "$port" >"$N/apiserver-port"; fi
NODE_NAME=$NODE_NAME NODE_IP=$NODE_IP SVC_IP=$SVC_IP CNI_GW=$CNI_GW \
  "$here/node/certs.sh" "$N/pki" "https://127.0.0.1:$port"
P=$N/pki
node_configs
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

# ---- containerd, the kubelet and kube-proxy -----------------------------------------------------
node_start "$BIN" $pause_tar $testbox_tar

wait_for "node $NODE_NAME Ready" 180 kc wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s
wait_for "default ServiceAccount" 60 kc -n default get serviceaccount default

# ---- the second node (NODES=2) -------------------------------------------------------------------
# A second node, once brought up, stays part of the cluster (and comes back with every later
# cluster-up, whatever NODES says) until cluster-down removes both.
nodes=${NODES:-1}
case "$nodes" in 1 | 2) ;; *) die "NODES=$nodes: 1 or 2 nodes" ;; esac
[ -f "$N2/netns" ] && nodes=2
if [ "$nodes" = 2 ]; then
  (
    select_node2
    mkdir -p "$N" "$PIDS" "$LOGS"
    chmod 755 "$N"
    node_netns
    # The link: a veth pair, one end in each node's namespace, on a /24 of its own. Node 2's end
    # carries its node address and its default route; node 1 routes node 2's pod subnet there.
    # (Node 1's namespace going away takes the pair with it: made again here.)
    if ! ip -n "$NS" link show link-node1 >/dev/null 2>&1; then
      ip -n "$NS1" link add link-node2 type veth peer name link-node1 netns "$NS"
      ip -n "$NS1" addr add "$LINK1_IP/24" dev link-node2
      ip -n "$NS" addr add "$NODE_IP/24" dev link-node1
      ip -n "$NS1" link set link-node2 up
      ip -n "$NS" link set link-node1 up
      ip -n "$NS" route add default via "$LINK1_IP" dev link-node1
      log "link $NS1 ($LINK1_IP) <-> $NS ($NODE_IP)"
    fi
    ip -n "$NS1" route replace "$CNI_SUBNET" via "$NODE_IP" dev link-node2
    node_mountns
    NODE_NAME=$NODE_NAME "$here/node/certs.sh" "$N/pki" "https://$NODE1_IP:$port" "$N1/pki"
    node_configs
    node_start "$BIN" $pause_tar $testbox_tar
    wait_for "node $NODE_NAME Ready" 180 kc wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s
  )
fi

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
export DBINIT_CNI_SUBNET=$CNI_SUBNET
export DBINIT_SVC_CIDR=$SVC_CIDR
export DBINIT_PAUSE_IMAGE=$PAUSE_IMAGE
export DBINIT_TESTBOX_IMAGE=$TESTBOX_IMAGE
export DBINIT_NODES=$nodes
ENV
if [ "$nodes" = 2 ]; then
  cat >>"$N/env.new" <<ENV
export DBINIT_NODE2_DIR=$N2
export DBINIT_NETNS2=$NS2
export DBINIT_NODE2_IP=$NODE2_IP
export DBINIT_NODE2_NAME=$NODE2_NAME
export DBINIT_CONTAINERD2_SOCK=$N2/containerd.sock
export DBINIT_CNI2_SUBNET=$CNI2_SUBNET
export DBINIT_NODE2_LINK=link-node1
ENV
fi
if cmp -s "$N/env.new" "$N/env"; then rm -f "$N/env.new"; else mv "$N/env.new" "$N/env"; fi
log "cluster up in $(($(date +%s) - t_start))s (state $N, namespace $NS, node $NODE_IP$([ "$nodes" = 2 ] && echo "; second node $NODE2_IP in $NS2"))"
echo "export KUBECONFIG=$N/kubeconfig"
