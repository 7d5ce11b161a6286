#!/usr/bin/env bash
# End to end on a kind cluster (needs Docker, kind, kubectl and helm; `make kind-test`):
# PostgreSQL + Redis, the chart (its pre-install hook Job migrates), the status ConfigMap,
# then the example application whose init container runs `dbinit wait`.
set -euo pipefail
cd "$(dirname "$0")/../.."
ctx=${KIND_CONTEXT:-kind-dbinit}
k() { kubectl --context "$ctx" "$@"; }

k apply -f deploy/secret.example.yaml -f deploy/postgres.yaml -f deploy/redis.yaml
k rollout status deployment/postgres --timeout=180s
k rollout status deployment/redis --timeout=120s

# --wait: Helm waits for the hook Job, then for the example Deployment's rollout.
helm --kube-context "$ctx" upgrade --install deals helm/dbinit \
  --set exampleApp.enabled=true --set exampleApp.replicas=2 --wait --timeout 5m

phase=$(k get configmap dbinit-status -o jsonpath='{.data.phase}')
version=$(k get configmap dbinit-status -o jsonpath='{.data.appliedVersion}')
echo "status ConfigMap: phase=$phase appliedVersion=$version"
[ "$phase" = Succeeded ] || { k get configmap dbinit-status -o yaml; exit 1; }

pod=$(k get pods -l app.kubernetes.io/component=app -o jsonpath='{.items[0].metadata.name}')
reason=$(k get pod "$pod" -o jsonpath='{.status.initContainerStatuses[0].state.terminated.reason}')
message=$(k get pod "$pod" -o jsonpath='{.status.initContainerStatuses[0].state.terminated.message}')
echo "init container: $reason: $message"
[ "$reason" = Completed ]
echo "kind end-to-end: ok"
