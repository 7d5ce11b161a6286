#!/usr/bin/env bash
# The previous release's `dbinit`, for the compatibility tests (an older image rolled back to
# must still read a history table the new one wrote, and the other way round): built once from
# git at $DBINIT_PREVIOUS_RELEASE (default b00239a, the last release before 64-bit versions) in
# a temporary worktree, and cached outside the repo. Prints the binary's path. A no-op when it
# is cached; about 5 minutes on 2 cores the first time (a debug build of the whole tree).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rev=${DBINIT_PREVIOUS_RELEASE:-b00239a}
cache=${DBINIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dbinit}/previous-release
bin="$cache/dbinit-$rev"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$cache"
# CI may clone shallowly: fetch the commit when it is missing.
if ! git -C "$here" cat-file -e "$rev^{commit}" 2>/dev/null; then
  git -C "$here" fetch -q --depth=1 origin "$rev" >&2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/dbinit-$rev.XXXXXX")
cleanup() {
  git -C "$here" worktree remove --force "$work/src" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
git -C "$here" worktree add -q --detach "$work/src" "$rev" >&2
echo "previous-release: building dbinit at $rev (once; cached in $cache)" >&2
# Its own target dir, never this tree's: the two trees' dbinit-core share a path and a name,
# so cargo gives both the same build-script directory, and the old tree's generated code
# would replace this tree's (seen with a shared build-dir: `embedded::DIRS` not found).
(cd "$work/src" && CARGO_TARGET_DIR="$cache/target" nice cargo build -q --bin dbinit >&2)
cp "$cache/target/debug/dbinit" "$bin.tmp"
mv "$bin.tmp" "$bin"
rm -rf "$cache/target"
echo "$bin"
