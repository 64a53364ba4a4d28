#!/usr/bin/env bash
# Provides etcd and kube-apiserver for tests and the local environment.
#
# Prints the directory holding both binaries (the envtest convention: KUBEBUILDER_ASSETS).
# - If KUBEBUILDER_ASSETS names a directory with both binaries, that directory is used.
# - Otherwise both are built once from Go modules into a cache outside the repo
#   (${LCA_CACHE_DIR:-$HOME/.cache/lca-rs}/control-plane/<versions>) and reused afterwards.
set -euo pipefail

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
(
  cd "$WORK/apiserver"
  go mod init lca-rs.local/apiserver >/dev/null 2>&1
  modfile="$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  # k8s.io/kubernetes points its staging modules at ./staging; map each to its published v0.x tag.
  staging_version="v0.${K8S_VERSION#v1.}"
  {
    echo "require k8s.io/kubernetes ${K8S_VERSION}"
    grep -E '=> \./staging/src/' "$modfile" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } >> go.mod
  cat > tools.go <<'GO'
//go:build tools
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
  go mod tidy >/dev/null 2>&1 || true
  minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  vpkg=k8s.io/component-base/version
  go build -trimpath -ldflags "-s -w -X $vpkg.gitVersion=${K8S_VERSION} -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=${minor}" \
    -o "$CACHE/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
)

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
