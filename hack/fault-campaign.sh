#!/usr/bin/env bash
# The whole fault campaign (issue #16): every failpoint of Prep, each stateroot-setup step,
# precache and the abort clean-up, killed and failed; every point of pre-pivot, post-pivot
# (operator and lca-cli), Rollback and finalize in both modes; then the component faults.
# CI runs the same tests with fewer cases. The tables land in target/fault-campaign-*.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export LCA_FAULT_CAMPAIGN=full
cargo test -p lca-e2e --test fault_campaign --test fault_campaign_upgrade --test component_faults \
    --test component_faults_more \
    -- --nocapture --test-threads=1
cargo test -p lca-cli --test create_campaign -- --nocapture
echo "tables: target/fault-campaign-*.md"
