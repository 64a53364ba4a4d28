#!/usr/bin/env bash
# The whole image-based upgrade on the local environment (`make dev-up` first), as the
# user procedure runs it: Prep with the demo seed, Upgrade (the environment reboots the
# simulated node by itself when the operator asks), wait for UpgradeCompleted, finalize with
# Idle. Prints what changed: the booted stateroot and deployments, ClusterVersion.
set -euo pipefail
cd "$(dirname "$0")/.."
export KUBECONFIG=$PWD/.dev/kubeconfig
[[ -f .dev/seed-image ]] || { echo "demo-upgrade: run 'make dev-up' first" >&2; exit 1; }
read -r IMAGE VERSION < .dev/seed-image
SYSROOT=.dev/node/sysroot
cv() { kubectl get clusterversion version -o jsonpath='{.status.desired.version} (clusterID {.spec.clusterID})'; }
booted() { sed -n 's/.*"stateroot":"\([^"]*\)".*/\1/p' .dev/node/lca-sim/node.json; }
wait_for() { # <condition> <timeout>: the API server is down while the node reboots
  local deadline=$((SECONDS + $2))
  until kubectl get ibu upgrade -o jsonpath="{.status.conditions[?(@.type==\"$1\")].status}" 2>/dev/null | grep -q True; do
    (( SECONDS < deadline )) || { echo "demo-upgrade: no $1 within $2 s" >&2; kubectl get ibu upgrade -o yaml >&2 || true; exit 1; }
    sleep 1
  done
}
start=$SECONDS
echo "--- before: booted stateroot $(booted), ClusterVersion $(cv)"
ostree admin status --sysroot=$SYSROOT
kubectl patch ibu upgrade --type=merge \
  -p "{\"spec\":{\"seedImageRef\":{\"image\":\"$IMAGE\",\"version\":\"$VERSION\"},\"stage\":\"Prep\"}}"
wait_for PrepCompleted 300
echo "--- Prep completed after $((SECONDS - start)) s"
kubectl patch ibu upgrade --type=merge -p '{"spec":{"stage":"Upgrade"}}'
wait_for UpgradeCompleted 600
echo "--- Upgrade completed after $((SECONDS - start)) s"
kubectl get ibu upgrade
echo "--- after: booted stateroot $(booted), ClusterVersion $(cv)"
ostree admin status --sysroot=$SYSROOT
kubectl patch ibu upgrade --type=merge -p '{"spec":{"stage":"Idle"}}'
wait_for Idle 300
echo "--- finalized after $((SECONDS - start)) s: the old stateroot is gone"
ostree admin status --sysroot=$SYSROOT
kubectl get ibu upgrade
