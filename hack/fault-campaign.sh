#!/usr/bin/env bash
# The whole fault campaign (issue #16): every failpoint of Prep, each stateroot-setup step,
# precache and the abort clean-up, killed and failed; then the component faults. CI runs the
# same tests with fewer stateroot-setup steps. The table lands in target/fault-campaign-prep.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export LCA_FAULT_CAMPAIGN=full
cargo test -p lca-e2e --test fault_campaign --test component_faults -- --nocapture --test-threads=1
echo "table: target/fault-campaign-prep.md"
