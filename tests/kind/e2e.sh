#!/usr/bin/env bash
# End to end on a kind cluster (needs Docker, kind and kubectl; `make kind-test`):
# PostgreSQL + Redis, the migration Job, its status ConfigMap, then the application whose
# init container runs `dbinit wait`.
set -euo pipefail
cd "$(dirname "$0")/../.."
ctx=${KIND_CONTEXT:-kind-dbinit}
k() { kubectl --context "$ctx" "$@"; }

k apply -f deploy/secret.example.yaml -f deploy/postgres.yaml -f deploy/redis.yaml -f deploy/rbac.yaml
k rollout status deployment/postgres --timeout=180s
k rollout status deployment/redis --timeout=120s

k delete job dbinit-migrate --ignore-not-found
k apply -f deploy/job.yaml
if ! k wait --for=condition=complete job/dbinit-migrate --timeout=300s; then
  k logs job/dbinit-migrate || true
  exit 1
fi
phase=$(k get configmap dbinit-status -o jsonpath='{.data.phase}')
version=$(k get configmap dbinit-status -o jsonpath='{.data.appliedVersion}')
echo "status ConfigMap: phase=$phase appliedVersion=$version"
[ "$phase" = Succeeded ] || { k get configmap dbinit-status -o yaml; exit 1; }

k apply -f deploy/app-deployment.yaml
k rollout status deployment/agentic-deals --timeout=180s
pod=$(k get pods -l app.kubernetes.io/name=agentic-deals -o jsonpath='{.items[0].metadata.name}')
reason=$(k get pod "$pod" -o jsonpath='{.status.initContainerStatuses[0].state.terminated.reason}')
message=$(k get pod "$pod" -o jsonpath='{.status.initContainerStatuses[0].state.terminated.message}')
echo "init container: $reason: $message"
[ "$reason" = Completed ]
echo "kind end-to-end: ok"
