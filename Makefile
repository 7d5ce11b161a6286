# dbinit: the verbs people type. `make` lists them.
SHELL := /bin/bash
CARGO ?= cargo

.DEFAULT_GOAL := help
.PHONY: help deps envtest build release test lint fmt demo bench image kind-up kind-load kind-deploy kind-test kind-down clean

help: ## List the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

deps: ## Install PostgreSQL, psql and redis-server with apt-get when missing
	@scripts/deps.sh

envtest: ## Build (once, cached) the kube-apiserver the tests use; install etcd-server
	@scripts/envtest.sh >/dev/null

build: ## Debug build of every crate and binary
	$(CARGO) build --workspace --bins

release: ## Stripped release binaries, with their sizes
	$(CARGO) build --release --workspace --bins
	@ls -l target/release/dbinit target/release/dbinit-job | awk '{printf "%-12s %6.2f MB\n", $$9, $$5/1048576}'

test: deps envtest build ## Every test: unit tests and integration tests against real servers
	$(CARGO) test --workspace --no-fail-fast

lint: ## rustfmt check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

demo: deps ## Run dbinit against a throwaway local PostgreSQL + Redis it starts itself
	$(CARGO) build --release --bin dbinit
	@scripts/demo.sh

bench: deps ## Time dbinit against refinery_cli, sqlx-cli, dbmate, Alembic and psql (not part of test)
	$(CARGO) build --release --workspace --bins
	@peers=$$(scripts/bench-peers.sh) && python3 tests/bench/bench.py --peers "$$peers" $(BENCH_ARGS)

IMAGE ?= dbinit:dev
KIND_CLUSTER ?= dbinit

image: ## Container image with both binaries (needs Docker)
	docker build -t $(IMAGE) .

kind-up: ## Create a kind cluster (needs Docker and kind)
	kind create cluster --config deploy/kind-config.yaml --name $(KIND_CLUSTER)

kind-load: image ## Load the image into the kind cluster
	kind load docker-image $(IMAGE) --name $(KIND_CLUSTER)

kind-deploy: kind-load ## Deploy PostgreSQL, Redis, RBAC, the migration Job and the example app
	kubectl --context kind-$(KIND_CLUSTER) apply -f deploy/secret.example.yaml -f deploy/postgres.yaml -f deploy/redis.yaml -f deploy/rbac.yaml
	kubectl --context kind-$(KIND_CLUSTER) apply -f deploy/job.yaml -f deploy/app-deployment.yaml

kind-test: kind-load ## End-to-end test on the kind cluster
	KIND_CONTEXT=kind-$(KIND_CLUSTER) tests/kind/e2e.sh

kind-down: ## Delete the kind cluster
	kind delete cluster --name $(KIND_CLUSTER)

clean: ## Remove build output
	$(CARGO) clean
