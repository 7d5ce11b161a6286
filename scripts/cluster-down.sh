#!/usr/bin/env bash
# `make cluster-down`: stop everything `make cluster-up` started, by recorded PID (never by
# name), kill and delete the CRI containers first, drop the node's mount namespace (with every
# mount the node made) and unmount what is left below the state dir, remove the pods' cgroups,
# delete the network namespace and the state, then
# prove that nothing is left (node/check-clean.sh). DBINIT_KEEP_STATE=1 keeps $DBINIT_NODE_DIR
# (etcd data, images) so that the next cluster-up reuses it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=node/lib.sh
. "$here/node/lib.sh"
LOG_TAG=cluster-down
[ "$(id -u)" -eq 0 ] || die "cluster-down needs root"

stop kube-proxy
stop kubelet
# Every CRI container and sandbox goes while containerd still runs; their shims exit with them.
if running containerd; then
  tasks=$(ctr_k8s tasks ls -q 2>/dev/null)
  for t in $tasks; do ctr_k8s tasks kill -s KILL "$t" >/dev/null 2>&1; done
  for _ in $(seq 1 20); do
    [ -z "$(ctr_k8s tasks ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING"')" ] && break
    sleep 0.25
  done
  for t in $tasks; do ctr_k8s tasks delete -f "$t" >/dev/null 2>&1; done
  for c in $(ctr_k8s containers ls -q 2>/dev/null); do ctr_k8s containers delete "$c" >/dev/null 2>&1; done
  [ -n "$tasks" ] && log "killed $(echo "$tasks" | wc -w) CRI tasks"
fi
stop kube-scheduler
stop kube-controller-manager
stop apiserver-forward
stop kube-apiserver
stop etcd
stop containerd

# Shims of our containerd that outlived it, and anything else left in our namespaces (e.g. a
# server a test started there and did not stop): the namespaces are going away with them.
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

# The node's mount namespace goes with its last process and its handle; then whatever is left
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
if [ "${DBINIT_KEEP_STATE:-0}" = 1 ]; then
  log "kept state in $N (DBINIT_KEEP_STATE=1)"
  exit 0
fi
rm -rf "$N"
"$here/node/check-clean.sh"
