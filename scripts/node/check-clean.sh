#!/usr/bin/env bash
# After `make cluster-down`: prove nothing of the node is left. Fails (exit 1), naming each
# leftover, if a process still names the state dir or sits in the node's network namespace,
# a mount remains below the state dir or for the namespace, the namespace or its cgroups
# still exist, or the state dir does.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
LOG_TAG=check-clean
left=0
leftover() { log "LEFT BEHIND: $*"; left=1; }
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  [ "$p" = $$ ] && continue
  cmd=$(cat "$d/cmdline" 2>/dev/null | tr '\0' ' ')
  [ -n "$cmd" ] || continue
  case "$cmd" in
    *"$here/check-clean.sh"*) ;;
    *"$N/"* | *"/run/netns/$NS "*) leftover "process $p: ${cmd:0:160}" ;;
    *) marked "$p" && leftover "process $p: ${cmd:0:160}" ;;
  esac
done
for m in $(awk -v n="$N" -v ns="/run/netns/$NS" '$2 == n || index($2, n "/") == 1 || $2 == ns { print $2 }' /proc/self/mounts); do
  leftover "mount $m"
done
[ -e "/run/netns/$NS" ] && leftover "network namespace $NS"
for c in /sys/fs/cgroup/$NS /sys/fs/cgroup/*/$NS; do [ -d "$c" ] && leftover "cgroup $c"; done
[ -e "$N" ] && leftover "state dir $N"
if [ "$left" = 0 ]; then log "clean: no process, mount, cgroup or state of $N and no namespace $NS left"; fi
exit "$left"
