# lca-rs developer entry points. Every target installs what it needs (idempotently).
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: all build test lint fmt manifests verify-manifests deps control-plane dev-up dev-down bench image verify-image

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

.PHONY: bundle verify-bundle
## The OLM bundle (bundle/, bundle.Dockerfile) from config/ and the workspace version, by
## hack/olm (built once into ~/.cache/lca-rs); IMG=<ref> overrides config/manager's image.
bundle:
	@IMG="$(IMG)" bash hack/olm/bundle.sh generate

## Fail when bundle/ differs from what config/ generates or does not validate; then show that
## both checks do fail on a changed CRD and on broken bundles (hack/olm/test.sh).
verify-bundle:
	@IMG="$(IMG)" bash hack/olm/bundle.sh verify
	@bash hack/olm/test.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p lca-operator -p lca-cli -p lca-hostops --features lca-operator/test-hooks,lca-cli/test-hooks --all-targets -- -D warnings

## Everything CI runs: install, the fuzz smoke started in the background, lint, CRD and
## bundle drift, unit + integration + e2e tests (the committed fuzz corpus replayed on
## stable among them), the failpoint unit test, then
## the operator image built (dev profile: the packaging, not the optimiser) and
## checked. lca-operator's unit tests run without `test-hooks` (the
## production refusal of the test peer); the binaries the e2e tests spawn are built with it by
## lca-testkit (`assets::workspace_binary`); the image's binaries never are.
test: deps control-plane
	@bash hack/fuzz.sh smoke-start
	$(MAKE) --no-print-directory lint verify-manifests verify-bundle
	$(CARGO) test --workspace --no-fail-fast
	$(CARGO) test -p lca-hostops --features failpoints --lib failpoint
	@IMAGE_PROFILE=dev bash hack/verify-image.sh
	@bash hack/fuzz.sh smoke-wait

## The embedded local environment (control plane + simulated node + operator).
dev-up:
	@bash hack/dev-up.sh

dev-down:
	@bash hack/dev-down.sh

## A short libFuzzer run of every fuzz target (nightly, cargo-fuzz; about 5 min cold). `make
## test` runs it in the background at nice 19 and waits for it at the end.
fuzz-smoke:
	@bash hack/fuzz.sh smoke

bench:
	@bash hack/bench-operator

## The operator image as an OCI layout in target/image/oci (no container engine needed;
## IMAGE_PUSH=<ref> also pushes it with skopeo).
image:
	@bash hack/build-image.sh

## Build the image, then check its layout, files and that its binaries run in its own root.
verify-image:
	@bash hack/verify-image.sh
