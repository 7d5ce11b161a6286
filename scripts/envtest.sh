#!/usr/bin/env bash
# `make envtest`: a real kube-apiserver for the tests, from the one Kubernetes 1.20.2 build that
# scripts/k8s-build.sh makes once (Debian's `kubernetes` source package, cached outside the
# repo) and shares with `make cluster-up`; plus etcd-server, openssl, kubectl and the Helm
# engine. Prints the apiserver's path on stdout. About 10 minutes and 3 GB of RAM the first
# time on 2 cores; a no-op afterwards. See shared/recipes/kube-apiserver.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

cache=${DBINIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dbinit}
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
# Debian starts the packaged etcd on :2379; the tests run their own on free ports, but stop the
# packaged one so it does not hold its ports and data. Only that one: never `service etcd stop`,
# whose init script (no pidfile without systemd) kills EVERY etcd on the machine, a running
# cluster's and other tests' included.
if [ -d /run/systemd/system ]; then
  $sudo systemctl stop etcd 2>/dev/null || true
elif [ -f /run/etcd.pid ]; then
  $sudo start-stop-daemon --stop --quiet --pidfile /run/etcd.pid --exec /usr/bin/etcd --retry 10 || true
fi

# The real Helm engine for the chart tests: PyPI's helm-sdkpy ships Helm 4 as a library. It
# declares Python >= 3.12 but works on Debian bookworm's 3.11.
if [ ! -x "$cache/helm-venv/bin/python" ] || ! "$cache/helm-venv/bin/python" -c 'import helm_sdkpy' 2>/dev/null; then
  apt_install python3-venv
  python3 -m venv "$cache/helm-venv"
  "$cache/helm-venv/bin/pip" install -q --ignore-requires-python helm-sdkpy==0.1.32 >&2
fi

dir=$("$here/k8s-build.sh")
# tests/harness/kube_api.rs looks for the apiserver under its older cache name; keep that
# name working as a link into the shared build.
ln -sfn "$dir/kube-apiserver" "$cache/kube-apiserver-1.20.2-r2"
echo "$dir/kube-apiserver"
