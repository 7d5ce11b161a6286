#!/usr/bin/env bash
# After `make cluster-down`: prove nothing of either node is left. Fails (exit 1), naming each
# leftover, if a process still names the state dir or sits in a node's network namespace (node
# 1's or the second node's), a mount remains below the state dir or for a namespace, a
# namespace (the link between the nodes lives and dies with them) or a node's cgroups still
# exist, or the state dir does.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
LOG_TAG=check-clean
left=0
leftover() { log "LEFT BEHIND: $*"; left=1; }
ns_ino=""
for ns in "$NS" "$NS2"; do
  [ -e "/run/netns/$ns" ] && ns_ino="$ns_ino $(stat -L -c %i "/run/netns/$ns" 2>/dev/null)"
done
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  [ "$p" = $$ ] && continue
  cmd=$(cat "$d/cmdline" 2>/dev/null | tr '\0' ' ')
  [ -n "$cmd" ] || continue
  case "$cmd" in
    *"$here/check-clean.sh"*) continue ;;
    *"$N/"* | *"/run/netns/$NS "* | *"/run/netns/$NS2 "*) leftover "process $p: ${cmd:0:160}"; continue ;;
  esac
  if marked "$p"; then leftover "process $p: ${cmd:0:160}"; continue; fi
  env=$(tr '\0' '\n' 2>/dev/null <"$d/environ") || env=""
  if grep -qxF "DBINIT_NODE_OWNER=$N2" <<<"$env"; then leftover "process $p: ${cmd:0:160}"; continue; fi
  ino=$(stat -L -c %i "$d/ns/net" 2>/dev/null) || continue
  case " $ns_ino " in *" $ino "*) [ -n "$ino" ] && leftover "process $p in a node's network namespace: ${cmd:0:160}" ;; esac
done
for m in $(awk -v n="$N" -v ns="/run/netns/$NS" -v ns2="/run/netns/$NS2" \
  '$2 == n || index($2, n "/") == 1 || $2 == ns || $2 == ns2 { print $2 }' /proc/self/mounts); do
  leftover "mount $m"
done
for ns in "$NS" "$NS2"; do
  [ -e "/run/netns/$ns" ] && leftover "network namespace $ns"
  for c in /sys/fs/cgroup/$ns /sys/fs/cgroup/*/$ns; do [ -d "$c" ] && leftover "cgroup $c"; done
done
[ -e "$N" ] && leftover "state dir $N"
if [ "$left" = 0 ]; then
  log "clean: no process, mount, cgroup or state of $N and no namespace $NS or $NS2 left"
fi
exit "$left"
