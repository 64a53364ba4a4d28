# lca-rs developer entry points. Every target installs what it needs (idempotently).
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: all build test lint fmt manifests verify-manifests deps control-plane dev-up dev-down bench image

all: build

deps:
	@bash hack/install-deps.sh

control-plane:
	@bash hack/control-plane.sh >/dev/null

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

## Everything CI runs: install, lint, CRD drift, unit + integration + e2e tests.
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
