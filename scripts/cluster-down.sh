#!/usr/bin/env bash
# `make cluster-down`: stop everything `make cluster-up` started, by recorded PID (never by
# name): the second node first when there is one, then node 1. On each node the CRI containers
# are killed and deleted first; then its mount namespace goes (with every mount the node made),
# what is left mounted below its state dir, the pods' cgroups and its network namespace (node
# 2's takes the link with it). Then the state goes, and node/check-clean.sh proves that nothing
# of either node is left. DBINIT_KEEP_STATE=1 keeps $DBINIT_NODE_DIR (etcd data, images) so that
# the next cluster-up reuses it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=node/lib.sh
. "$here/node/lib.sh"
# shellcheck source=node/worker.sh
. "$here/node/worker.sh"
LOG_TAG=cluster-down
[ "$(id -u)" -eq 0 ] || die "cluster-down needs root"

if [ -d "$N2" ]; then
  (
    select_node2
    node_stop_pods
    node_remove
  )
fi

node_stop_pods
stop kube-scheduler
stop kube-controller-manager
stop apiserver-forward
stop kube-apiserver
stop etcd
node_remove

if [ "${DBINIT_KEEP_STATE:-0}" = 1 ]; then
  log "kept state in $N (DBINIT_KEEP_STATE=1)"
  exit 0
fi
rm -rf "$N"
"$here/node/check-clean.sh"
