#!/usr/bin/env bash
# Endurance (issue #16): LCA_ENDURANCE_CYCLES Prep -> abort cycles in a row (default 200),
# LCA_UPGRADE_CYCLES whole upgrade -> finalize cycles (default 20) and
# LCA_CHURN_OBJECTS unrelated ConfigMaps and Events churning while the operator idles
# (default 5000), with the operator's RSS, open files and CPU time printed per cycle. CI runs
# the churn with 300 objects and skips the cycles (ignored: the fault campaign's cycles stand in).
set -euo pipefail
cd "$(dirname "$0")/.."
export LCA_ENDURANCE_CYCLES="${LCA_ENDURANCE_CYCLES:-200}"
export LCA_CHURN_OBJECTS="${LCA_CHURN_OBJECTS:-5000}"
export LCA_UPGRADE_CYCLES="${LCA_UPGRADE_CYCLES:-20}"
cargo test -p lca-e2e --test endurance -- --include-ignored --nocapture --test-threads=1
