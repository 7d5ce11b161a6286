#!/usr/bin/env bash
# `make envtest`: a real kube-apiserver for the tests, built once from Debian's `kubernetes`
# source package (1.20.2, vendored) and cached outside the repo; plus etcd-server and openssl.
# Prints the apiserver's path on stdout. About 10 minutes and 3 GB of RAM the first time on
# 2 cores; a no-op afterwards. See shared/recipes/kube-apiserver.md.
set -euo pipefail

cache=${DBINIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dbinit}
# "-r2": built with reflect2 1.0.2 / json-iterator 1.1.12 (see below); older cached builds
# without them panic on some requests and are not reused.
bin=$cache/kube-apiserver-1.20.2-r2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

apt_install() {
  local need=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
  if [ ${#need[@]} -gt 0 ]; then
    echo "envtest: installing ${need[*]}" >&2
    $sudo apt-get update -qq >&2
    $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  fi
}

apt_install etcd-server openssl
# kubectl for server-side dry runs: Debian's, unless the machine already has one.
command -v kubectl >/dev/null || apt_install kubernetes-client
# Debian starts the packaged etcd; the tests run their own on free ports.
$sudo systemctl stop etcd 2>/dev/null || $sudo service etcd stop 2>/dev/null || true

# The real Helm engine for the chart tests: PyPI's helm-sdkpy ships Helm 4 as a library. It
# declares Python >= 3.12 but works on Debian bookworm's 3.11.
if [ ! -x "$cache/helm-venv/bin/python" ] || ! "$cache/helm-venv/bin/python" -c 'import helm_sdkpy' 2>/dev/null; then
  apt_install python3-venv
  python3 -m venv "$cache/helm-venv"
  "$cache/helm-venv/bin/pip" install -q --ignore-requires-python helm-sdkpy==0.1.32 >&2
fi

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

echo "envtest: building kube-apiserver 1.20.2 from Debian's source package into $cache (once; ~10 min)" >&2
apt_install golang-go rsync dpkg-dev ca-certificates \
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

work=$(mktemp -d "${TMPDIR:-/tmp}/dbinit-envtest-XXXXXX")
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
HOME=$work/home make WHAT=cmd/kube-apiserver >&2
mkdir -p "$cache"
cp _output/local/bin/linux/amd64/kube-apiserver "$bin.tmp"
mv "$bin.tmp" "$bin"
echo "$bin"
