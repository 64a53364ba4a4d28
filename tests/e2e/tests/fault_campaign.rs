//! The fault campaign over Prep and abort (issue #16): every failpoint of the operator's Prep
//! steps, of each `lca-cli stateroot-setup` step, of precache and of the abort clean-up, once
//! with a SIGKILL of the process there and once with an injected error. The operator runs
//! supervised (restarted as the kubelet restarts its pod); a killed task fails its Job, as
//! upstream's Jobs have no retries. For each point the run asserts the outcome (the operator's
//! flow completes after a kill; a task's fails as a failed Job; an injected error fails with
//! its exact message), that the point did
//! fire, that the original stateroot is the default once the flow has ended, and that an
//! abort afterwards leaves the node as a fresh Prep finds it. The table of points × modes ×
//! outcome is printed and written to `target/fault-campaign-prep.md` (docs/reliability.md).
//!
//! A Prep cycle takes about 30 s here, so CI runs three cases: the operator killed at
//! `prep/Validated`, the task killed at `stateroot-setup/deploy` (the one that reorders boot
//! entries) and an error at `abort/Stateroots`; `LCA_FAULT_CAMPAIGN=full`
//! (`hack/fault-campaign.sh`) runs every step. `crates/lca-cli/tests/stateroot_setup.rs`
//! kills the task itself after each of several steps in CI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use lca_e2e::campaign::{self, Mode, arm, fired, injected};
use lca_e2e::prep::{
    Baseline, Env, SEED_VERSION, env_with_seed, listing, prep_failure, start_prep, wait_prep_completed,
};
use lca_e2e::{condition, has};

const T: Duration = Duration::from_secs(120);
const ORIGINAL: &str = "rhcos";

struct Row {
    point: String,
    mode: Mode,
    outcome: String,
    new_default_seen: bool,
    secs: f64,
}

fn default_stateroot(root: &Path) -> String {
    lca_testkit::reboot::default_deployment(root)
        .map(|d| d.stateroot)
        .unwrap_or_default()
}

/// Wait for Prep to end, sampling the default deployment; returns the IBU's Prep outcome
/// and whether the new stateroot was ever the default meanwhile.
async fn prep_outcome(e: &Env, root: &Path) -> (Result<(), String>, bool) {
    let start = Instant::now();
    let mut new_default_seen = false;
    loop {
        new_default_seen |= default_stateroot(root) != ORIGINAL;
        let ibu = e.c.ibus().get("upgrade").await.unwrap();
        if has(&ibu, "PrepCompleted", "True") {
            return (Ok(()), new_default_seen);
        }
        if let Some(msg) = prep_failure(&ibu) {
            return (Err(msg), new_default_seen);
        }
        assert!(
            start.elapsed() < T,
            "Prep never ended: {:?}\n{}",
            condition(&ibu, "PrepInProgress"),
            e.c.operator_log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The exact Prep failure an injected error at `point` must give.
fn expected_prep_failure(point: &str, msg: &str) -> bool {
    let injected = injected(point);
    match point.split_once('/') {
        Some(("prep", "Validated")) => msg == format!("failed to launch stateroot setup: {injected}"),
        Some(("prep", "CryptoBackup")) => msg == format!("failed to back up kubeconfig crypto: {injected}"),
        Some(("stateroot-setup", step)) => {
            msg.starts_with("stateroot setup job failed to complete. ")
                && msg.ends_with(&format!(". Failed in step {step}: {injected}"))
        }
        Some(("precache", _)) => msg.starts_with("precache job failed to complete. "),
        _ => false,
    }
}

/// The exact Prep failure of a task SIGKILLed at `point`: its Job failed, in no failed step.
fn expected_kill_failure(point: &str, msg: &str) -> bool {
    let job = |prefix: &str, name: &str| {
        msg.starts_with(&format!("{prefix} job failed to complete. "))
            && msg.contains(name)
            && !msg.contains("Failed in step")
    };
    match point.split_once('/') {
        Some(("stateroot-setup", _)) => job("stateroot setup", "lca-prep-stateroot-setup"),
        Some(("precache", _)) => job("precache", "lca-prep-precache"),
        _ => false,
    }
}

/// Abort and wait for Idle; an injected error at `point` must fail it exactly and converge
/// once the user says the manual clean-up is done.
async fn abort(e: &Env, point: Option<&str>) -> String {
    let errors: Vec<String> = point.map(injected).into_iter().collect();
    campaign::to_idle(&e.c, &errors, T).await
}

fn table(rows: &[Row]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format!("`{}`", r.point),
                r.mode.name().into(),
                r.outcome.clone(),
                if r.new_default_seen { "yes" } else { "no" }.into(),
                format!("{:.1}", r.secs),
            ]
        })
        .collect();
    let header = [
        "failpoint",
        "mode",
        "outcome",
        "new stateroot default while Prep ran",
        "seconds",
    ];
    campaign::table(&header, &rows)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_prep_and_abort_failpoint_killed_or_failed_converges() {
    let mut e = env_with_seed(SEED_VERSION, false).await;
    let root = e.c.node_root().to_path_buf();
    e.c.operator.take().expect("operator").kill();
    e.c.start_operator_supervised();
    let clean = Baseline::of(&root);

    // A clean Prep names the stateroot-setup steps (its markers), so the campaign follows
    // the steps as they are.
    start_prep(&e, SEED_VERSION, "");
    wait_prep_completed(&e).await;
    let markers = root.join("var/lib/lca/workspace/stateroot-setup");
    let mut setup_steps: Vec<String> = listing(&markers)
        .into_iter()
        .filter_map(|f| f.strip_suffix(".done").map(String::from))
        .collect();
    setup_steps.sort();
    assert!(setup_steps.len() >= 10, "{setup_steps:?}");
    abort(&e, None).await;
    clean.assert_again(&root, "after the clean Prep");

    let full = campaign::full();
    let mut points: Vec<String> = vec!["prep/Validated".into()];
    points.extend(
        setup_steps
            .iter()
            .filter(|s| full || s.as_str() == "deploy")
            .map(|s| format!("stateroot-setup/{s}")),
    );
    points.extend(["prep/CryptoBackup".into(), "precache/Pulled".into()]);
    let abort_points: Vec<String> = campaign::CLEANUP_STEPS
        .iter()
        .filter(|s| full || **s == "Stateroots")
        .map(|s| format!("abort/{s}"))
        .collect();
    let mut rows = Vec::new();
    for point in points.iter().chain(&abort_points) {
        for mode in [Mode::Kill, Mode::Error] {
            let ci_case = matches!(
                (point.as_str(), mode),
                ("prep/Validated" | "stateroot-setup/deploy", Mode::Kill) | ("abort/Stateroots", Mode::Error)
            );
            if !full && !ci_case {
                continue;
            }
            let what = format!("{point} {}", mode.name());
            let start = Instant::now();
            let in_abort = point.starts_with("abort/");
            if !in_abort {
                arm(&root, &[(point.clone(), mode)]);
            }
            start_prep(&e, SEED_VERSION, "");
            let (prep, new_default_seen) = prep_outcome(&e, &root).await;
            let default_after = default_stateroot(&root);
            // A killed task fails its Job (backoffLimit 0, as upstream's); the operator's
            // own steps resume after its restart.
            let task = point.starts_with("stateroot-setup/") || point.starts_with("precache/");
            let mut outcome = match (&prep, mode, in_abort) {
                (Ok(()), Mode::Kill, _) if !task => "Prep completed".to_string(),
                (Ok(()), _, true) => "Prep completed".to_string(),
                (Err(msg), Mode::Error, false) if expected_prep_failure(point, msg) => {
                    format!("Prep failed: {msg}")
                }
                (Err(msg), Mode::Kill, false) if task && expected_kill_failure(point, msg) => {
                    format!("Prep failed: {msg}")
                }
                _ => panic!(
                    "{what}: unexpected Prep outcome {prep:?}\n{}",
                    e.c.operator_log_tail(60)
                ),
            };
            assert_eq!(default_after, ORIGINAL, "{what}: default after Prep ({outcome})");
            if in_abort {
                arm(&root, &[(point.clone(), mode)]);
            }
            let aborted = abort(&e, (mode == Mode::Error).then_some(point.as_str())).await;
            assert_eq!(
                fired(&root),
                std::slice::from_ref(point),
                "{what}: the point fired once"
            );
            campaign::disarm(&root);
            clean.assert_again(&root, &what);
            if in_abort {
                outcome = format!("abort: {aborted}");
            }
            // The stateroot-setup message names the job; keep the table short.
            let outcome = outcome.replace(" Perform cleanup manually", "");
            println!("{what}: {outcome} ({:.1} s)", start.elapsed().as_secs_f64());
            rows.push(Row {
                point: point.clone(),
                mode,
                outcome,
                new_default_seen,
                secs: start.elapsed().as_secs_f64(),
            });
        }
    }
    let table = table(&rows);
    println!("{table}");
    std::fs::write(campaign::report_path("fault-campaign-prep.md"), &table).unwrap();
}
