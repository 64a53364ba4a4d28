#!/usr/bin/env bash
# The user procedure on the local environment (`make dev-up` first): point the IBU at the
# demo seed and move it to Prep, wait for PrepCompleted, show the result.
set -euo pipefail
cd "$(dirname "$0")/.."
export KUBECONFIG=$PWD/.dev/kubeconfig
[[ -f .dev/seed-image ]] || { echo "demo-prep: run 'make dev-up' first" >&2; exit 1; }
read -r IMAGE VERSION < .dev/seed-image
kubectl get ibu
kubectl patch ibu upgrade --type=merge \
  -p "{\"spec\":{\"seedImageRef\":{\"image\":\"$IMAGE\",\"version\":\"$VERSION\"},\"stage\":\"Prep\"}}"
kubectl wait ibu upgrade --for=condition=PrepCompleted --timeout=5m
kubectl get ibu
echo "--- ostree deployments on the simulated node (the default is listed first) ---"
ostree admin status --sysroot=.dev/node/sysroot
echo "Abort with: KUBECONFIG=.dev/kubeconfig kubectl patch ibu upgrade --type=merge -p '{\"spec\":{\"stage\":\"Idle\"}}'"
