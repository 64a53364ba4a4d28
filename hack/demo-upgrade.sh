#!/usr/bin/env bash
# The whole image-based upgrade on the local environment (`make dev-up` first), as the
# user procedure runs it: Prep with the demo seed, Upgrade (the environment reboots the
# simulated node by itself when the operator asks), wait for UpgradeCompleted, finalize with
# Idle. Prints what changed: the booted stateroot and deployments, ClusterVersion.
#
#   --rollback          after the upgrade completed, roll back by hand (Rollback, then Idle
#                       to finalize the rollback), as in the user procedure's §15.3.3
#   --fail-post-pivot   make the node's host post-pivot fail (the simulated node's hostnamectl
#                       fails): the node rolls back by itself, the original cluster shows why,
#                       and Idle aborts the upgrade
#   --oadp              an application and the hub's klusterlet objects (.dev/oadp/: a DPA,
#                       the objects, the seed document's Backup/Restore ConfigMap) are backed
#                       up before the pivot and restored after it by Velero (the local
#                       environment's test peer); shows them before, right after the reboot,
#                       and after the upgrade
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=upgrade
case "${1:-}" in
  "") ;;
  --rollback) MODE=rollback ;;
  --fail-post-pivot) MODE=fail ;;
  --oadp) MODE=oadp ;;
  *) echo "usage: $0 [--rollback | --fail-post-pivot | --oadp]" >&2; exit 2 ;;
esac
export KUBECONFIG=$PWD/.dev/kubeconfig
[[ -f .dev/seed-image ]] || { echo "demo-upgrade: run 'make dev-up' first" >&2; exit 1; }
read -r IMAGE VERSION < .dev/seed-image
SYSROOT=.dev/node/sysroot
FAIL_FLAG=.dev/node/lca-sim/fail/hostnamectl
cv() { kubectl get clusterversion version -o jsonpath='{.status.desired.version} (clusterID {.spec.clusterID})'; }
booted() { sed -n 's/.*"stateroot": *"\([^"]*\)".*/\1/p' .dev/node/lca-sim/node.json; }
cond() { kubectl get ibu upgrade -o jsonpath="{.status.conditions[?(@.type==\"$1\")].$2}" 2>/dev/null; }
wait_for() { # <condition> <timeout> [status]: the API server is down while the node reboots
  local deadline=$((SECONDS + $2)) want=${3:-True}
  until [[ "$(cond "$1" status || true)" == "$want" ]]; do
    (( SECONDS < deadline )) || { echo "demo-upgrade: no $1=$want within $2 s" >&2; kubectl get ibu upgrade -o yaml >&2 || true; exit 1; }
    sleep 1
  done
}
show() { echo "--- $1: booted stateroot $(booted), ClusterVersion $(cv)"; ostree admin status --sysroot=$SYSROOT; }
apps() { kubectl get deployments,configmaps,secrets,persistentvolumeclaims -n test -o name 2>/dev/null | tr '\n' ' ';
         kubectl get clusterrole open-cluster-management:klusterlet-work:ibu-role -o name 2>/dev/null || echo "(no ibu-role ClusterRole)"; }
start=$SECONDS
show before
OADP=
if [[ $MODE == oadp ]]; then
  kubectl apply -f .dev/oadp/1-dpa.yaml -f .dev/oadp/2-apps.yaml -f .dev/oadp/3-oadp-cm.yaml
  OADP=',"oadpContent":[{"name":"oadp-cm","namespace":"openshift-adp"}]'
  echo "--- the application before the upgrade: $(apps)"
fi
kubectl patch ibu upgrade --type=merge \
  -p "{\"spec\":{\"seedImageRef\":{\"image\":\"$IMAGE\",\"version\":\"$VERSION\"},\"stage\":\"Prep\"$OADP}}"
wait_for PrepCompleted 300
echo "--- Prep completed after $((SECONDS - start)) s"
if [[ $MODE == fail ]]; then
  mkdir -p "$(dirname $FAIL_FLAG)" && touch $FAIL_FLAG
  trap 'rm -f $FAIL_FLAG' EXIT
  echo "--- the node's hostnamectl will fail: post-pivot fails after the reboot"
fi
kubectl patch ibu upgrade --type=merge -p '{"spec":{"stage":"Upgrade"}}'
if [[ $MODE == fail ]]; then
  wait_for UpgradeCompleted 600 False
  echo "--- back on the original stateroot after $((SECONDS - start)) s; the upgrade failed with:"
  echo "    $(cond UpgradeInProgress message)"
  show "after the automatic rollback"
  kubectl patch ibu upgrade --type=merge -p '{"spec":{"stage":"Idle"}}'
  wait_for Idle 300
  echo "--- aborted after $((SECONDS - start)) s: the new stateroot is gone"
  show "after the abort"
  kubectl get ibu upgrade
  exit 0
fi
if [[ $MODE == oadp ]]; then
  until [[ "$(booted)" != rhcos ]]; do sleep 1; done
  until kubectl get --raw /readyz >/dev/null 2>&1; do sleep 1; done
  echo "--- rebooted into the seed's cluster after $((SECONDS - start)) s: $(apps)"
  kubectl get backups.velero.io -n openshift-adp
fi
wait_for UpgradeCompleted 600
echo "--- Upgrade completed after $((SECONDS - start)) s"
[[ $MODE == oadp ]] && { echo "--- the application after the upgrade: $(apps)"; kubectl get restores.velero.io -n openshift-adp; }
kubectl get ibu upgrade
show after
if [[ $MODE == rollback ]]; then
  kubectl patch ibu upgrade --type=merge -p '{"spec":{"stage":"Rollback"}}'
  wait_for RollbackCompleted 600
  echo "--- Rollback completed after $((SECONDS - start)) s"
  kubectl get ibu upgrade
  show "after the rollback"
fi
kubectl patch ibu upgrade --type=merge -p '{"spec":{"stage":"Idle"}}'
wait_for Idle 300
echo "--- finalized after $((SECONDS - start)) s: the stateroot not booted is gone"
[[ $MODE == oadp ]] && echo "--- Backups left after finalize: $(kubectl get backups.velero.io -n openshift-adp -o name | wc -l)"
show "after finalize"
kubectl get ibu upgrade
