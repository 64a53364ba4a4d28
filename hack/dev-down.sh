#!/usr/bin/env bash
# Stops everything hack/dev-up.sh started and removes .dev/. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=.dev
if [[ -f $DEV/lca-dev.pid ]]; then
  pid=$(cat $DEV/lca-dev.pid)
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
fi
rm -rf "$DEV"
echo "dev-down: stopped"
