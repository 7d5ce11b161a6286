#!/usr/bin/env bash
# The previous release's `dbinit`, for the compatibility tests (an older image rolled back to
# must still read a history table the new one wrote, and the other way round): built once from
# git at $DBINIT_PREVIOUS_RELEASE (default b00239a, the last release before 64-bit versions) in
# a temporary worktree, and cached outside the repo. Prints the binary's path. A no-op when it
# is cached. The first time, its build shares this tree's build directory (cargo's build-dir),
# so the crates both trees use at the same version and features are compiled once: about a
# minute after `make build` instead of 5 on 2 cores.
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
# The binary lands in $cache/target (never in this tree's target/debug, where the tests find
# today's dbinit); the intermediate files go where this tree's build keeps its own.
build_dir=${CARGO_TARGET_DIR:-$here/target}
(cd "$work/src" && CARGO_TARGET_DIR="$cache/target" CARGO_BUILD_BUILD_DIR="$build_dir" \
  nice cargo build -q --bin dbinit >&2)
cp "$cache/target/debug/dbinit" "$bin.tmp"
mv "$bin.tmp" "$bin"
rm -rf "$cache/target"
echo "$bin"
