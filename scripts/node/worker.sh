# Sourced by scripts/cluster-up.sh and scripts/cluster-down.sh after node/lib.sh: what every
# node has — its network and mount namespaces, containerd, kubelet and kube-proxy — and how it
# is taken apart again. Each function acts on the node the globals name: node 1, or node 2
# after `select_node2`.

# node_netns: make the network namespace $NS (recorded in $N/netns) with lo up; NETNS_MADE=1
# when it was made now, 0 when this state dir made it before. Dies when a namespace of that name
# belongs to someone else: only a namespace this state dir made is used (and later deleted).
node_netns() {
  NETNS_MADE=0
  if [ -e "/run/netns/$NS" ]; then
    [ -f "$N/netns" ] && [ "$(cat "$N/netns")" = "$NS" ] ||
      die "network namespace $NS exists but was not made by $N; choose another DBINIT_NETNS or remove it (ip netns del $NS)"
    return 0
  fi
  NETNS_MADE=1
  ip netns add "$NS"
  echo "$NS" >"$N/netns"
  ip -n "$NS" link set lo up
  # Routing between the nodes and their pod subnets (the CNI bridge plugin would set it at the
  # first pod; the second node's link needs it before).
  nsenter --net="/run/netns/$NS" sysctl -qw net.ipv4.ip_forward=1
}

# node_mountns: the node's own mount namespace. A namespace handle must sit on a private mount,
# hence the self-bind of $N/mnt-ns. The new namespace is a slave of the host's: host mounts show
# up inside, none of the node's leak out. The kubelet's fixed paths are bound below $N/host.
node_mountns() {
  [ "$(stat -f -c %T "$MNT" 2>/dev/null)" = nsfs ] && return 0
  mkdir -p "$N/mnt-ns"
  mountpoint -q "$N/mnt-ns" || mount --bind "$N/mnt-ns" "$N/mnt-ns"
  mount --make-private "$N/mnt-ns"
  touch "$MNT"
  unshare --mount="$MNT" --propagation slave true
  local p
  for p in $PRIVATE_PATHS; do
    if [ ! -d "$p" ]; then mkdir -p "$p" && echo "$p" >>"$N/host-dirs-made"; fi
    mkdir -p "$N/host$p"
    nsenter --mount="$MNT" mount --bind "$N/host$p" "$p"
  done
  log "mount namespace $MNT: $PRIVATE_PATHS bound below $N/host"
}

subst() {
  sed -e "s|@N@|$N|g" -e "s|@NS@|$NS|g" -e "s|@NODE_IP@|$NODE_IP|g" -e "s|@NODE_NAME@|$NODE_NAME|g" \
    -e "s|@CNI_SUBNET@|$CNI_SUBNET|g" -e "s|@CNI_GW@|$CNI_GW|g" -e "s|@CNI_NAME@|dbinit-$NS|g" \
    -e "s|@PAUSE_IMAGE@|$PAUSE_IMAGE|g" "$1"
}
# write_config TEMPLATE FILE: only when the content changes; kube-proxy exits as soon as its
# config file is written to, even with the same bytes.
write_config() {
  subst "$1" >"$2.new"
  if cmp -s "$2.new" "$2"; then rm -f "$2.new"; else mv "$2.new" "$2"; fi
}

# node_configs: containerd, CNI, kubelet and kube-proxy configuration below $N. Pods resolve
# names at node 1's address (nothing answers there but the e2e tests' DNS).
node_configs() {
  mkdir -p "$N/containerd" "$N/cni/net.d" "$N/kubelet"
  write_config "$here/node/containerd.toml" "$N/containerd/config.toml"
  write_config "$here/node/cni-bridge.conflist" "$N/cni/net.d/10-bridge.conflist"
  write_config "$here/node/kubelet-config.yaml" "$N/kubelet/config.yaml"
  write_config "$here/node/kube-proxy-config.yaml" "$N/kube-proxy.yaml"
  write_config <(printf 'nameserver %s\noptions timeout:1 attempts:1\n' "$NODE1_IP") "$N/resolv.conf"
}

# node_start BIN IMAGE_TAR...: containerd (and the images), the pods' cgroup root, the kubelet
# and kube-proxy, with the kubeconfigs of $N/pki.
node_start() {
  local bin=$1 tar h f c
  shift
  start containerd containerd --config "$N/containerd/config.toml"
  wait_for "containerd ($NS)" 30 ctr -a "$SOCK" version
  for tar in "$@"; do ctr_k8s images import "$tar" >/dev/null; done
  # Pods go below their own cgroup root (one per hierarchy), which must exist before the kubelet.
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    mkdir -p "/sys/fs/cgroup/$NS" # cgroup v2
  else
    for h in /sys/fs/cgroup/*/; do
      [ -L "${h%/}" ] || mkdir -p "$h$NS" 2>/dev/null || true
    done
    # a new v1 cpuset starts with no CPUs and no memory nodes: inherit the parent's
    for f in cpus mems; do
      c=/sys/fs/cgroup/cpuset/$NS/cpuset.$f
      if [ -f "$c" ] && [ -z "$(cat "$c")" ]; then cat "/sys/fs/cgroup/cpuset/cpuset.$f" >"$c"; fi
    done
  fi
  start kubelet "$bin/kubelet" --config="$N/kubelet/config.yaml" \
    --kubeconfig="$N/pki/kubelet.kubeconfig" --root-dir="$N/kubelet/root" --cert-dir="$N/kubelet/pki" \
    --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
    --container-runtime=remote --container-runtime-endpoint="unix://$SOCK" \
    --pod-infra-container-image="$PAUSE_IMAGE" --v=1
  # kube-proxy (iptables, inside the namespace): Service ClusterIPs.
  start kube-proxy "$bin/kube-proxy" --config="$N/kube-proxy.yaml"
}

# node_stop_pods: stop kube-proxy and the kubelet, then kill and delete every CRI container and
# sandbox while containerd still runs (their shims exit with them).
node_stop_pods() {
  local tasks t c
  stop kube-proxy
  stop kubelet
  running containerd || return 0
  tasks=$(ctr_k8s tasks ls -q 2>/dev/null)
  for t in $tasks; do ctr_k8s tasks kill -s KILL "$t" >/dev/null 2>&1; done
  for _ in $(seq 1 20); do
    [ -z "$(ctr_k8s tasks ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING"')" ] && break
    sleep 0.25
  done
  for t in $tasks; do ctr_k8s tasks delete -f "$t" >/dev/null 2>&1; done
  for c in $(ctr_k8s containers ls -q 2>/dev/null); do ctr_k8s containers delete "$c" >/dev/null 2>&1; done
  [ -n "$tasks" ] && log "killed $(echo "$tasks" | wc -w) CRI tasks ($NS)"
  return 0
}

# node_remove: stop containerd, then everything left in the node's namespaces (shims that
# outlived containerd, a server a test started there), drop the mount namespace with every mount
# the node made, the pods' cgroups, the host mount points cluster-up made, and the network
# namespace.
node_remove() {
  local netns_ino mntns_ino d p cmd in_ns mounts m root
  stop containerd
  netns_ino=$(stat -L -c %i "/run/netns/$NS" 2>/dev/null || true)
  mntns_ino=$(stat -L -c %i "$MNT" 2>/dev/null || true)
  [ "$(stat -f -c %T "$MNT" 2>/dev/null)" = nsfs ] || mntns_ino=""
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    cmd=$(cat "$d/cmdline" 2>/dev/null | tr '\0' ' ')
    [ -n "$cmd" ] || continue
    in_ns=0
    [ -n "$netns_ino" ] && [ "$(stat -L -c %i "$d/ns/net" 2>/dev/null)" = "$netns_ino" ] && in_ns=1
    [ -n "$mntns_ino" ] && [ "$(stat -L -c %i "$d/ns/mnt" 2>/dev/null)" = "$mntns_ino" ] && in_ns=1
    case "$cmd" in *"-address $SOCK "*) in_ns=1 ;; esac
    if [ "$in_ns" = 1 ]; then
      log "stopping leftover pid $p: ${cmd:0:120}"
      kill "$p" 2>/dev/null
      for _ in $(seq 1 20); do [ -d "$d" ] || break; sleep 0.25; done
      kill -9 "$p" 2>/dev/null
    fi
  done
  # The mount namespace goes with its last process and its handle; then whatever is left
  # mounted below the state dir on the host (the handle's private bind), deepest first.
  [ "$(stat -f -c %T "$MNT" 2>/dev/null)" = nsfs ] && umount "$MNT"
  for _ in 1 2 3 4 5; do
    mounts=$(awk -v n="$N/" 'index($2, n) == 1 { print $2 }' /proc/self/mounts | sort -r)
    [ -z "$mounts" ] && break
    for m in $mounts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
  done
  # The pods' cgroups (below the node's own cgroup root), deepest first.
  for root in /sys/fs/cgroup/$NS /sys/fs/cgroup/*/$NS; do
    [ -d "$root" ] && find "$root" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  # Mount points cluster-up had to create on the host (empty: the node wrote below $N/host).
  if [ -f "$N/host-dirs-made" ]; then
    tac "$N/host-dirs-made" | while read -r d; do rmdir "$d" 2>/dev/null; done
  fi
  if [ -e "/run/netns/$NS" ] && [ -f "$N/netns" ] && [ "$(cat "$N/netns")" = "$NS" ]; then
    ip netns del "$NS" && log "deleted network namespace $NS"
  fi
  return 0
}
