# lca-rs developer entry points. Every target installs what it needs (idempotently).
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: all build test lint fmt manifests verify-manifests deps control-plane dev-up dev-down bench image

all: build

deps:
	@bash hack/install-deps.sh

control-plane:
	@bash hack/control-plane.sh >/dev/null

## Production binaries (no test hooks); the tests build their own with `test-hooks`.
build:
	$(CARGO) build --workspace --bins

## Regenerate config/crd from the Rust types.
manifests:
	$(CARGO) run --quiet -p lca-api --bin crdgen -- config/crd

## Fail when config/crd differs from what the types generate.
verify-manifests:
	$(CARGO) run --quiet -p lca-api --bin crdgen -- --check config/crd

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p lca-operator --features test-hooks --all-targets -- -D warnings

## Everything CI runs: install, lint, CRD drift, unit + integration + e2e tests. lca-operator's
## unit tests run without `test-hooks` (the production refusal of the test peer); the binaries
## the e2e tests spawn are built with it by lca-testkit (`assets::workspace_binary`).
test: deps control-plane lint verify-manifests
	$(CARGO) test --workspace --no-fail-fast

## The embedded local environment (control plane + simulated node + operator).
dev-up:
	@bash hack/dev-up.sh

dev-down:
	@bash hack/dev-down.sh

bench:
	@bash hack/bench-operator

image:
	podman build -t lca-rs:dev .
