#!/usr/bin/env bash
# `make cluster-check`: the cluster's basic checks (2-4 on each node when two are up), each
# PASS or FAIL with its time, in a throwaway namespace (removed at the end). Exit 1 when any
# check fails.
#   1. a Job from the dbinit image (`dbinit --version`) -> Complete
#   2. a pod on the CNI bridge reaches a TCP server in the node's namespace, via the node
#      address and via the bridge gateway; with a second node up, a pod there reaches it via
#      node 1's address (across the link)
#   3. the pod's ServiceAccount token authenticates to the apiserver through the `kubernetes`
#      Service's ClusterIP (kube-proxy) -> 200; on the second node too when it is up
#   4. a name from hostAliases (/etc/hosts) resolves in the dbinit image (static glibc):
#      `dbinit wait-deps` reaches a real PostgreSQL started in the node's namespace by that name
#      (from each node)
#   5. a name that is nowhere fails to resolve at once (no DNS timeout)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=node/lib.sh
. "$here/node/lib.sh"
LOG_TAG=cluster-check
[ -f "$N/env" ] || die "no cluster at $N: run make cluster-up"
. "$N/env"
image=${IMAGE:-docker.io/library/dbinit:dev}
case "$image" in */*) ;; *) image=docker.io/library/$image ;; esac
ns=dbinit-check
fails=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
# phase POD: wait (at most 90 s) until POD has finished; print its phase.
phase() {
  local p=""
  for _ in $(seq 1 180); do
    p=$(kc -n $ns get pod "$1" -o jsonpath='{.status.phase}' 2>/dev/null)
    case "$p" in Succeeded | Failed) break ;; esac
    sleep 0.5
  done
  echo "$p"
}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
cleanup() {
  kc delete namespace $ns --wait=false >/dev/null 2>&1
  stop check-httpd
  [ -n "$pgbin" ] && [ -f "$N/check-pg/data/postmaster.pid" ] &&
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$N/check-pg/data" -m immediate stop >/dev/null 2>&1
  rm -rf "$N/check-pg" "$N/check-www"
}
trap cleanup EXIT
# The whole list first, then the match: `ctr | grep -q` under pipefail fails when grep stops
# reading at its match and ctr dies of SIGPIPE writing the next line.
images=$(ctr_k8s images ls -q) || die "cannot list the node's images (containerd)"
grep -qxF "$image" <<<"$images" || die "$image is not on the node: run make image-load"
if [ "${DBINIT_NODES:-1}" = 2 ]; then
  images=$(ctr -a "$DBINIT_CONTAINERD2_SOCK" -n k8s.io images ls -q) || die "cannot list the second node's images"
  grep -qxF "$image" <<<"$images" || die "$image is not on the second node: run make image-load"
fi
kc delete namespace $ns --wait=true --timeout=60s >/dev/null 2>&1
kc create namespace $ns >/dev/null
wait_for "ServiceAccount in $ns" 30 kc -n $ns get serviceaccount default
sec="securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}"

echo "== 1. Job from $image"
t=$(now)
kc -n $ns apply -f - >/dev/null <<Y
apiVersion: batch/v1
kind: Job
metadata: {name: version}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: dbinit, image: "$image", imagePullPolicy: Never, args: ["--version"], $sec}
Y
if kc -n $ns wait --for=condition=complete job/version --timeout=90s >/dev/null; then
  out=$(kc -n $ns logs job/version 2>&1)
  pass "Job Complete in $(since "$t"): ${out%%$'\n'*}"
else
  fail "Job not Complete: $(kc -n $ns describe job version | tail -3)"
fi

# Checks 2 and 3 run on every node: a pod bound to it by nodeName.
nodes=$DBINIT_NODE_NAME
[ "${DBINIT_NODES:-1}" = 2 ] && nodes="$nodes $DBINIT_NODE2_NAME"
echo "== 2. pod network -> TCP server in the node's namespace"
mkdir -p "$N/check-www" && echo "hello-from-the-node" >"$N/check-www/index.html"
start check-httpd python3 -m http.server 18080 --bind 0.0.0.0 --directory "$N/check-www"
wait_for "http server at $NODE_IP:18080" 20 in_ns curl -fsS "http://$NODE_IP:18080/"
i=0
for node in $nodes; do
  i=$((i + 1))
  # Node 1's pods also reach the server through their bridge gateway; node 2's only cross the link.
  hosts=$NODE_IP
  [ "$i" = 1 ] && hosts="$NODE_IP $DBINIT_CNI_GW"
  t=$(now)
  kc -n $ns apply -f - >/dev/null <<Y
apiVersion: v1
kind: Pod
metadata: {name: net-$i}
spec:
  restartPolicy: Never
  nodeName: $node
  containers:
  - name: net
    image: $TESTBOX_IMAGE
    imagePullPolicy: Never
    command: ["/bin/sh", "-c", "for h in $hosts; do printf 'GET / HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | nc -w 5 \$h 18080 | tail -n 1; done"]
Y
  ph=$(phase net-$i)
  out=$(kc -n $ns logs net-$i 2>&1)
  if [ "$ph" = Succeeded ] && [ "$(grep -c hello-from-the-node <<<"$out")" = "$(wc -w <<<"$hosts")" ]; then
    pass "pod $(kc -n $ns get pod net-$i -o jsonpath='{.status.podIP}') on $node reached $(echo $hosts | sed 's/ / and /'):18080 ($(since "$t"))"
  else
    fail "pod network on $node: phase=$ph output: $out"
  fi
done

echo "== 3. ServiceAccount token -> apiserver via the kubernetes Service"
kc -n $ns create rolebinding default-view --clusterrole=view --serviceaccount=$ns:default >/dev/null
svc=$(kc get svc kubernetes -o jsonpath='{.spec.clusterIP}')
i=0
for node in $nodes; do
  i=$((i + 1))
  t=$(now)
  kc -n $ns apply -f - >/dev/null <<Y
apiVersion: v1
kind: Pod
metadata: {name: sa-$i}
spec:
  restartPolicy: Never
  nodeName: $node
  containers:
  - {name: sa, image: $TESTBOX_IMAGE, imagePullPolicy: Never, command: ["/bin/incluster"]}
Y
  ph=$(phase sa-$i)
  out=$(kc -n $ns logs sa-$i 2>&1)
  out=${out%%$'\n'*}
  if [ "$ph" = Succeeded ] && grep -qF "https://$svc:443/api/v1/namespaces/$ns/pods -> 200" <<<"$out"; then
    pass "on $node: $out ($(since "$t"))"
  else
    fail "ServiceAccount token on $node: phase=$ph: $out"
  fi
done

echo "== 4. hostAliases name -> PostgreSQL in the node's namespace, from the dbinit image"
if [ -z "$pgbin" ]; then
  fail "no PostgreSQL server binaries (make deps)"
else
  mkdir -p "$N/check-pg" && chown postgres "$N/check-pg"
  runuser -u postgres -- "$pgbin/initdb" -D "$N/check-pg/data" -U postgres --auth=trust -N >/dev/null
  printf "listen_addresses = '%s'\nport = 15432\nunix_socket_directories = '%s'\n" "$NODE_IP" "$N/check-pg" \
    >>"$N/check-pg/data/postgresql.conf"
  echo "host all all 0.0.0.0/0 trust" >>"$N/check-pg/data/pg_hba.conf"
  in_ns runuser -u postgres -- "$pgbin/pg_ctl" -D "$N/check-pg/data" -l "$N/check-pg/log" -w start >/dev/null
  i=0
  for node in $nodes; do
    i=$((i + 1))
    t=$(now)
    kc -n $ns apply -f - >/dev/null <<Y
apiVersion: v1
kind: Pod
metadata: {name: dns-$i}
spec:
  restartPolicy: Never
  nodeName: $node
  automountServiceAccountToken: false
  hostAliases: [{ip: "$NODE_IP", hostnames: [postgres-by-alias.test]}]
  containers:
  - name: dbinit
    image: "$image"
    imagePullPolicy: Never
    args: [wait-deps]
    env:
    - {name: POSTGRES_HOST, value: postgres-by-alias.test}
    - {name: POSTGRES_PORT, value: "15432"}
    - {name: POSTGRES_USER, value: postgres}
    - {name: POSTGRES_PASSWORD, value: unused-with-trust}
    - {name: DBINIT_TIMEOUT, value: 20s}
    $sec
Y
    ph=$(phase dns-$i)
    out=$(kc -n $ns logs dns-$i 2>&1 | tail -3)
    if [ "$ph" = Succeeded ]; then
      pass "on $node: dbinit wait-deps resolved postgres-by-alias.test from /etc/hosts and connected ($(since "$t"))"
    else
      fail "hostAliases lookup on $node: phase=$ph: $out"
    fi
  done
fi

echo "== 5. an unknown name fails at once"
t=$(now)
kc -n $ns apply -f - >/dev/null <<Y
apiVersion: v1
kind: Pod
metadata: {name: nxname}
spec:
  restartPolicy: Never
  containers:
  - name: nx
    image: $TESTBOX_IMAGE
    imagePullPolicy: Never
    command: ["/bin/sh", "-c", "cat /etc/resolv.conf; a=\$(cut -d' ' -f1 /proc/uptime); nslookup no-such-name.invalid >/dev/null 2>&1 && echo resolved; b=\$(cut -d' ' -f1 /proc/uptime); echo \$a \$b | awk '{ printf \"lookup_ms=%d\\\\n\", (\$2 - \$1) * 1000 }'"]
Y
ph=$(phase nxname)
out=$(kc -n $ns logs nxname 2>&1)
ms=$(echo "$out" | sed -n 's/^lookup_ms=//p')
if [ "$ph" = Succeeded ] && ! grep -q '^resolved' <<<"$out" && [ -n "$ms" ] && [ "$ms" -lt 2000 ]; then
  pass "no-such-name.invalid failed in ${ms} ms (resolv.conf: $(echo "$out" | grep nameserver))"
else
  fail "unknown-name lookup: phase=$ph: $out"
fi

[ "$fails" = 0 ] && log "all checks passed" || log "$fails check(s) failed"
exit $((fails > 0))
