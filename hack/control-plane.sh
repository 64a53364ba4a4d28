#!/usr/bin/env bash
# Provides etcd and kube-apiserver for tests and the local environment.
#
# Prints the directory holding both binaries (the envtest convention: KUBEBUILDER_ASSETS).
# - If KUBEBUILDER_ASSETS names a directory with both binaries, that directory is used.
# - Otherwise both are built once from Go modules into a cache outside the repo
#   (${LCA_CACHE_DIR:-$HOME/.cache/lca-rs}/control-plane/<versions>) and reused afterwards.
set -euo pipefail
# shellcheck source=lib/k8s-build.sh
source "$(dirname "$0")/lib/k8s-build.sh"

K8S_VERSION="${LCA_K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${LCA_ETCD_VERSION:-v3.6.16}"

if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "${KUBEBUILDER_ASSETS}/etcd" && -x "${KUBEBUILDER_ASSETS}/kube-apiserver" ]]; then
  echo "${KUBEBUILDER_ASSETS}"
  exit 0
fi

CACHE="${LCA_CACHE_DIR:-$HOME/.cache/lca-rs}/control-plane/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}"
if [[ -x "$CACHE/etcd" && -x "$CACHE/kube-apiserver" ]]; then
  echo "$CACHE"
  exit 0
fi

command -v go >/dev/null || { echo "control-plane: go is required to build etcd and kube-apiserver" >&2; exit 1; }
mkdir -p "$CACHE"
# One builder at a time: parallel test binaries may all ask at once.
exec 9>"$CACHE.lock"
flock 9
if [[ -x "$CACHE/etcd" && -x "$CACHE/kube-apiserver" ]]; then echo "$CACHE"; exit 0; fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export GOFLAGS=-mod=mod CGO_ENABLED=0

echo "control-plane: building kube-apiserver ${K8S_VERSION} (first run only, several minutes)" >&2
mkdir -p "$WORK/apiserver"
(cd "$WORK/apiserver" && k8s_build "$K8S_VERSION" kube-apiserver "$CACHE/kube-apiserver.tmp")

echo "control-plane: building etcd ${ETCD_VERSION}" >&2
mkdir -p "$WORK/etcd"
(
  cd "$WORK/etcd"
  go mod init lca-rs.local/etcd >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >/dev/null 2>&1
  cat > tools.go <<'GO'
//go:build tools
package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  go mod tidy >/dev/null 2>&1 || true
  go build -trimpath -ldflags "-s -w" -o "$CACHE/etcd.tmp" go.etcd.io/etcd/server/v3
)

mv "$CACHE/kube-apiserver.tmp" "$CACHE/kube-apiserver"
mv "$CACHE/etcd.tmp" "$CACHE/etcd"
echo "$CACHE"
