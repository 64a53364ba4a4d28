#!/usr/bin/env bash
# Starts the embedded local environment: a loopback control plane (etcd + kube-apiserver)
# with the lca.openshift.io CRDs, a simulated SNO node directory and the operator, all in
# the background. Writes .dev/kubeconfig. Idempotent: a running environment is left as is.
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=.dev

if [[ -f $DEV/lca-dev.pid ]] && kill -0 "$(cat $DEV/lca-dev.pid)" 2>/dev/null && [[ -f $DEV/ready ]]; then
  echo "dev-up: already running (KUBECONFIG=$DEV/kubeconfig)"
  exit 0
fi
rm -rf "$DEV"; mkdir -p "$DEV"

bash hack/install-deps.sh
bash hack/control-plane.sh >/dev/null
# The test build (the feature set of lca-testkit's assets::TEST_FEATURES), as the tests run it.
cargo build --quiet -p lca-testkit --bin lca-dev -p lca-operator -p lca-cli --bins \
  --features lca-operator/test-hooks,lca-cli/test-hooks

setsid target/debug/lca-dev "$PWD/$DEV" >"$DEV/lca-dev.log" 2>&1 < /dev/null &
echo $! > "$DEV/lca-dev.pid"
for _ in $(seq 1 600); do
  [[ -f $DEV/ready ]] && break
  if ! kill -0 "$(cat $DEV/lca-dev.pid)" 2>/dev/null; then
    echo "dev-up: the local environment failed to start:" >&2; cat "$DEV/lca-dev.log" >&2; exit 1
  fi
  sleep 0.1
done
[[ -f $DEV/ready ]] || { echo "dev-up: timed out; see $DEV/lca-dev.log" >&2; exit 1; }
# The operator creates the IBU right after start; wait until it reports Idle.
for _ in $(seq 1 300); do
  kubectl --kubeconfig "$DEV/kubeconfig" get ibu upgrade -o jsonpath='{.status.conditions[?(@.type=="Idle")].status}' 2>/dev/null | grep -q True && break
  sleep 0.1
done
echo "dev-up: ready. Try: KUBECONFIG=$DEV/kubeconfig kubectl get ibu"
