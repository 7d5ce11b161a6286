#!/usr/bin/env bash
# Build (once, cached) the Kubernetes 1.20.2 binaries from Debian's `kubernetes` source package:
# kube-apiserver for the envtest tier, plus kube-controller-manager, kube-scheduler, kubelet and
# kube-proxy for the one-node cluster (`make cluster-up`). One build serves both. Prints the
# cache directory on stdout. ~8-12 min and ~3 GB of RAM the first time on 2 cores; a no-op after.
# See shared/recipes/kube-apiserver.md and one-node-cluster.md.
set -euo pipefail

cache=${DBINIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dbinit}
# "-r3": all five binaries, built with reflect2 1.0.2 / json-iterator 1.1.12 (see below).
dir=$cache/kubernetes-1.20.2-r3
bins="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

complete() { for b in $bins; do [ -x "$dir/$b" ] || return 1; done; }
if complete; then echo "$dir"; exit 0; fi

apt_install() {
  local need=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
  if [ ${#need[@]} -gt 0 ]; then
    echo "k8s-build: installing ${need[*]}" >&2
    $sudo apt-get update -qq >&2
    $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  fi
}

# One build at a time, even when `make envtest` and `make cluster-up` race.
mkdir -p "$cache"
exec 9>"$cache/.k8s-build.lock"
flock 9
if complete; then echo "$dir"; exit 0; fi

echo "k8s-build: building Kubernetes 1.20.2 ($bins) from Debian's source package into $dir (once; ~10 min)" >&2
apt_install golang-go rsync dpkg-dev ca-certificates make \
  golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev
# Source packages come from the same Debian archive as the machine's binary packages.
if [ -f /etc/apt/sources.list.d/debian.sources ] && ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/; then
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
    $sudo tee /etc/apt/sources.list.d/debian-src.sources >/dev/null
  $sudo apt-get update -qq >&2
elif [ -f /etc/apt/sources.list ] && ! grep -qs '^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null; then
  sed -n 's/^deb /deb-src /p' /etc/apt/sources.list | $sudo tee /etc/apt/sources.list.d/debian-src.list >/dev/null
  $sudo apt-get update -qq >&2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/dbinit-k8s-build-XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get source --download-only kubernetes >&2
tar xzf kubernetes_*.orig.tar.gz
cd kubernetes-1.20.2
# Kubernetes 1.20 vendors reflect2 1.0.1, which breaks under Go >= 1.18 (the only Go Debian
# bookworm has): decoding some objects panics with a nil pointer in reflect2.Type2. Upstream
# fixed it by moving to reflect2 1.0.2 + json-iterator 1.1.12; Debian packages both sources.
for mod in github.com/modern-go/reflect2 github.com/json-iterator/go; do
  rm -rf "vendor/$mod"
  mkdir -p "vendor/$mod"
  cp -r "/usr/share/gocode/src/$mod/." "vendor/$mod/"
  find "vendor/$mod" -name '*_test.go' -delete
  rm -rf "vendor/$mod/.git" "vendor/$mod/debian"
done
export GOPATH=$PWD/.go CGO_ENABLED=0 GOCACHE=$work/gocache
mkdir -p .go/src/k8s.io && ln -sfn ../../.. .go/src/k8s.io/kubernetes
# kubelet builds and runs fine without cgo.
what=""; for b in $bins; do what="$what cmd/$b"; done
HOME=$work/home nice -n 10 make WHAT="${what# }" >&2
mkdir -p "$dir.tmp"
for b in $bins; do cp "_output/local/bin/linux/amd64/$b" "$dir.tmp/$b"; done
rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "$dir"
