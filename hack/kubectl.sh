#!/usr/bin/env bash
# hack/kubectl.sh: provides the kubectl the operator image carries (as /usr/bin/kubectl and
# /usr/bin/oc) for the must-gather scripts. Prints the binary's path.
#
# Built once from Go modules, like hack/control-plane.sh builds kube-apiserver and at the same
# Kubernetes version, into ${LCA_CACHE_DIR:-$HOME/.cache/lca-rs}/kubectl/<version>/. Not the
# machine's /usr/bin/kubectl: on the development machines that is google-cloud-sdk's version
# dispatcher, which execs sibling kubectl.1.NN binaries and exists only on that machine image;
# Debian bookworm's kubernetes-client is 1.20.
set -euo pipefail
# shellcheck source=lib/k8s-build.sh
source "$(dirname "$0")/lib/k8s-build.sh"

K8S_VERSION="${LCA_K8S_VERSION:-v1.34.4}"
CACHE="${LCA_CACHE_DIR:-$HOME/.cache/lca-rs}/kubectl/${K8S_VERSION}"
if [[ -x "$CACHE/kubectl" ]]; then
  echo "$CACHE/kubectl"
  exit 0
fi

command -v go >/dev/null || { echo "kubectl.sh: go is required to build kubectl" >&2; exit 1; }
mkdir -p "$CACHE"
exec 9>"$CACHE.lock"
flock 9
if [[ -x "$CACHE/kubectl" ]]; then echo "$CACHE/kubectl"; exit 0; fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# k8s_build links it statically: the must-gather pod may run it from another image's root.

echo "kubectl.sh: building kubectl ${K8S_VERSION} (first run only, a few minutes)" >&2
(cd "$WORK" && k8s_build "$K8S_VERSION" kubectl "$CACHE/kubectl.tmp")
mv "$CACHE/kubectl.tmp" "$CACHE/kubectl"
echo "$CACHE/kubectl"
