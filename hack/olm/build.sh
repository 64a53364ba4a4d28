#!/usr/bin/env bash
# hack/olm/build.sh: builds lca-olm (hack/olm: the OLM bundle generator and validator) and prints
# the binary's path.
#
# Built once per state of its sources and pins into
# ${LCA_CACHE_DIR:-$HOME/.cache/lca-rs}/olm/<hash of go.mod, go.sum, the sources, go version>/,
# like hack/control-plane.sh builds kube-apiserver: an edit of hack/olm builds anew, anything
# else reuses the binary, whichever clone asks.
set -euo pipefail
SRC="$(cd "$(dirname "$0")" && pwd)"

command -v go >/dev/null || { echo "olm: go is required to build hack/olm" >&2; exit 1; }
key="$(cd "$SRC" && { cat go.mod go.sum ./*.go icon.svg; go version; } | sha256sum | cut -c1-16)"
CACHE="${LCA_CACHE_DIR:-$HOME/.cache/lca-rs}/olm/$key"
BIN="$CACHE/lca-olm"
if [[ -x "$BIN" ]]; then echo "$BIN"; exit 0; fi

mkdir -p "$CACHE"
# One builder at a time: make's verify-bundle and test.sh may both ask at once.
exec 9>"$CACHE.lock"
flock 9
if [[ -x "$BIN" ]]; then echo "$BIN"; exit 0; fi

echo "olm: building lca-olm (once per change of hack/olm; about 2-4 min on a cold 2-core machine)" >&2
# -mod=readonly rather than control-plane.sh's -mod=mod: here go.mod and go.sum are committed
# and are the pin, so a build must fail rather than rewrite them. GOTOOLCHAIN=local: the
# machine's Go, never a toolchain download.
export GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 GOTOOLCHAIN=local
go build -C "$SRC" -trimpath -ldflags "-s -w" -o "$BIN.tmp" .
mv "$BIN.tmp" "$BIN"
echo "$BIN"
