//! The fault campaign over the upgrade flows (issue #16): the failpoints of pre-pivot, the
//! seed's `lca-cli post-pivot`, the operator's post-pivot, a manual Rollback and finalize,
//! each hit once with a SIGKILL of its process and once with an injected error, on a cluster
//! with OADP configured (Velero is the test peer). The operator runs supervised (restarted as
//! the kubelet restarts its pod); a killed `lca-cli post-pivot` is started again by its
//! unit's `Restart=on-failure`, as systemd would.
//!
//! The operator's retryable steps take every point of a flow in one cycle: with the points
//! alternating between the two modes, a killed step resumes after the restart and a failed
//! one is retried, so the upgrade completes; the next cycle swaps the modes. Errors that end
//! a flow take a cycle each: a post-pivot error rolls the node back by itself with
//! `Rollback due to postpivot failure: failpoint post-pivot/<step>: injected` (at `recert`
//! the rollback itself, shared with the init monitor, fails once and is killed once on its
//! way), and a Rollback step's error fails the Rollback for good. Throughout, a [`Watch`] checks that no
//! stateroot is ever deployed twice and that every saved `ibu.json` parses; at the end of a
//! cycle no Backup or Restore was processed twice, no temporary file is left in the new
//! stateroot, every armed point fired exactly once, and the node is on the one stateroot it
//! should be, with the other removed.
//!
//! CI runs one mixed cycle ending in finalize (with some of the post-pivot steps) and the
//! post-pivot error at `recert`; `LCA_FAULT_CAMPAIGN=full` (hack/fault-campaign.sh) runs
//! both mixed cycles, every post-pivot step and every Rollback step. The tables go to
//! `target/fault-campaign-upgrade-*.md` (docs/reliability.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject};
use lca_api::Stage;
use lca_core::upgrade_plan::{PostPivot, PrePivot, Rollback};
use lca_e2e::campaign::{self, Mode, Watch, arm, fired, injected};
use lca_e2e::prep::{Baseline, Env, SEED_VERSION, listing, start_prep, wait_prep_completed};
use lca_e2e::upgrade::{self, reboot_rationale, stateroots};
use lca_e2e::{condition, has};
use lca_testkit::oadpenv;
use lca_testkit::velero::VeleroPeer;

const T: Duration = Duration::from_secs(240);
const ORIGINAL: &str = "rhcos";

/// `lca-cli post-pivot`'s steps (its `STEPS`; a binary crate, so listed here: that every
/// armed point fired checks the names).
const CLI_POST_PIVOT: [&str; 13] = [
    "ssh-key",
    "pull-secret",
    "network",
    "validate-networks",
    "ca-bundle",
    "recert",
    "chrony-ssh-host-keys",
    "kubelet",
    "delete-mirror-config",
    "apply-cluster-configuration",
    "registry-override",
    "cluster-identity",
    "lvm",
];
/// The post-pivot kills of the CI cycle: before the network, around recert and the kubelet,
/// and the last step.
const CLI_CI: [&str; 4] = ["network", "recert", "kubelet", "lvm"];
fn new_stateroot() -> String {
    format!("rhcos_{SEED_VERSION}")
}

/// `flow`'s `steps`, the modes alternating: even positions killed when `parity` is 0.
fn alternate<T: AsRef<str>>(flow: &str, steps: &[T], parity: usize) -> Vec<(String, Mode)> {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mode = if (i + parity).is_multiple_of(2) {
                Mode::Kill
            } else {
                Mode::Error
            };
            (format!("{flow}/{}", s.as_ref()), mode)
        })
        .collect()
}

fn all<T: AsRef<str>>(flow: &str, steps: &[T], mode: Mode) -> Vec<(String, Mode)> {
    steps
        .iter()
        .map(|s| (format!("{flow}/{}", s.as_ref()), mode))
        .collect()
}

/// The finalize errors that end in the message: those after the last kill (a kill restarts
/// the clean-up from its first step, and each point fires once).
fn finalize_errors(points: &[(String, Mode)]) -> Vec<String> {
    let mut errors = Vec::new();
    for (p, mode) in points {
        match mode {
            Mode::Kill => errors.clear(),
            Mode::Error => errors.push(injected(p)),
        }
    }
    errors
}

async fn supervised(e: &mut Env) {
    if let Some(op) = e.c.operator.take() {
        op.kill();
    }
    e.c.start_operator_supervised();
}

/// Each Backup and Restore the Velero peer processed, by name, processed once.
fn processed_once(peer: &VeleroPeer, kind: &str, at_least: usize) {
    let names: Vec<String> = peer
        .events()
        .into_iter()
        .filter(|ev| ev.kind == kind)
        .map(|ev| ev.name)
        .collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(names.len(), unique.len(), "a {kind} processed twice: {names:?}");
    assert!(names.len() >= at_least, "{kind}s: {names:?}");
}

async fn backups_left(e: &Env) -> usize {
    let api: Api<DynamicObject> = lca_testkit::openshift::BACKUP.api(&e.c.client, oadpenv::OADP_NS);
    api.list(&Default::default()).await.unwrap().items.len()
}

fn no_half_written(root: &Path, stateroot: &str, what: &str) {
    let var = root.join(format!("sysroot/ostree/deploy/{stateroot}/var"));
    let left = campaign::half_written(&var);
    assert!(left.is_empty(), "{what}: half-written files {left:?}");
}

fn assert_all_fired(root: &Path, armed: &[(String, Mode)], what: &str) {
    let mut got = fired(root);
    got.sort();
    let mut want: Vec<String> = armed.iter().map(|(p, _)| p.clone()).collect();
    want.sort();
    assert_eq!(got, want, "{what}: every armed point fired once");
}

/// Upgrade with every operator point armed (modes alternating by `parity`), `cli` post-pivot
/// steps killed, then finalize on the new stateroot or, with `roll_back`, a manual Rollback
/// with each of its steps killed and finalize on the original.
async fn mixed_cycle(parity: usize, cli: &[&str], roll_back: bool) -> Vec<Vec<String>> {
    let mut e = upgrade::env(SEED_VERSION, &[]).await;
    let store = tempfile::tempdir().unwrap();
    let peer = VeleroPeer::start(e.c.client.clone(), store.path().to_path_buf());
    oadpenv::install(&e.c.client).await.unwrap();
    supervised(&mut e).await;
    let root = e.c.node_root().to_path_buf();
    let baseline = Baseline::of(&root);
    let start = Instant::now();
    start_prep(&e, SEED_VERSION, &oadpenv::spec_lines());
    wait_prep_completed(&e).await;

    let pre = alternate("prepivot", &campaign::steps::<PrePivot>(), parity);
    let post = alternate("postpivot", &campaign::steps::<PostPivot>(), parity);
    let cli_points = all("post-pivot", cli, Mode::Kill);
    let rollback = if roll_back {
        all("rollback", &campaign::steps::<Rollback>(), Mode::Kill)
    } else {
        vec![]
    };
    let fin = alternate("finalize", &campaign::CLEANUP_STEPS, parity);
    let armed: Vec<(String, Mode)> = [&pre, &post, &cli_points, &rollback, &fin]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    arm(&root, &armed);
    let watch = Watch::start(&root);
    let what = format!("mixed cycle {parity}");

    assert!(e.c.patch_stage("Upgrade").0);
    upgrade::wait_reboot_request(&e.c, T).await;
    assert_eq!(reboot_rationale(&e.c).as_deref(), Some("upgrade"));
    let log = e.c.operator.as_ref().unwrap().log();
    for (p, mode) in &pre {
        if *mode == Mode::Error {
            assert!(log.contains(&injected(p)), "{what}: {p} retried\n{log}");
        }
    }
    no_half_written(&root, &new_stateroot(), &what);

    std::fs::write(
        root.join(lca_testkit::upgradeenv::UNIT_MAX_RUNS),
        (cli.len() + 1).to_string(),
    )
    .unwrap();
    let oneshots = upgrade::reboot_into(&mut e.c, None, false).await;
    assert_eq!(
        oneshots,
        [(
            "installation-configuration.service".to_string(),
            cli.len() as u32 + 1,
            true
        )],
        "{what}: post-pivot restarted after each kill\n{}",
        upgrade::unit_logs(&e.c)
    );
    e.c.start_operator_supervised();
    upgrade::wait_upgrade_completed(&e.c).await;
    let log = e.c.operator.as_ref().unwrap().log();
    for (p, mode) in &post {
        if *mode == Mode::Error {
            assert!(log.contains(&injected(p)), "{what}: {p} retried\n{log}");
        }
    }
    processed_once(&peer, "Backup", 2);
    processed_once(&peer, "Restore", 2);
    no_half_written(&root, &new_stateroot(), &what);

    let end = if roll_back {
        assert!(e.c.patch_stage("Rollback").0);
        upgrade::wait_rollback_request(&e.c, T).await;
        upgrade::reboot_into(&mut e.c, None, false).await;
        e.c.start_operator_supervised();
        upgrade::wait_rollback_completed(&e.c).await;
        ORIGINAL.to_string()
    } else {
        new_stateroot()
    };
    let finalized = campaign::to_idle(&e.c, &finalize_errors(&fin), T).await;
    let samples = watch.finish(&what);
    assert_all_fired(&root, &armed, &what);
    assert_eq!(
        stateroots(&e.c),
        std::slice::from_ref(&end),
        "{what}: one stateroot left"
    );
    assert_eq!(
        listing(&root.join("sysroot/ostree/deploy")),
        std::collections::BTreeSet::from([end.clone()]),
        "{what}: no orphan stateroot"
    );
    if roll_back {
        baseline.assert_again(&root, &what);
    }
    assert_eq!(backups_left(&e).await, 0, "{what}: no Backup left");
    campaign::disarm(&root);
    println!(
        "{what}: {} points, {samples} samples, {:.0} s",
        armed.len(),
        start.elapsed().as_secs_f64()
    );

    let flow_outcome = |p: &str, mode: Mode| -> String {
        let flow = p.split('/').next().unwrap();
        match (flow, mode) {
            ("finalize", Mode::Kill) => format!("operator restarted; {finalized}"),
            ("finalize", Mode::Error) => finalized.clone(),
            ("rollback", _) => "restarted; Rollback completed".into(),
            ("post-pivot", _) => "unit restarted; Upgrade completed".into(),
            (_, Mode::Kill) => "operator restarted; Upgrade completed".into(),
            (_, Mode::Error) => "retried; Upgrade completed".into(),
        }
    };
    armed
        .iter()
        .map(|(p, mode)| {
            vec![
                format!("`{p}`"),
                mode.name().into(),
                flow_outcome(p, *mode),
                format!("cycle {parity}"),
            ]
        })
        .collect()
}

/// The Upgrade until the node asked to reboot into the new stateroot.
async fn to_pivot(e: &Env) {
    start_prep(e, SEED_VERSION, "");
    wait_prep_completed(e).await;
    assert!(e.c.patch_stage("Upgrade").0);
    upgrade::wait_reboot_request(&e.c, T).await;
}

/// An error at post-pivot `step`: post-pivot rolls back by itself, the original cluster
/// shows the exact message, and the abort leaves the node as before Prep. With
/// `rollback_faults` the rollback itself (the path the init monitor shares) first fails
/// after saving the CR, then dies after `set-default`: the unit's restarts carry it on.
async fn post_pivot_error(step: &str, rollback_faults: bool) -> Vec<Vec<String>> {
    let mut e = upgrade::env(SEED_VERSION, &[]).await;
    let root = e.c.node_root().to_path_buf();
    let baseline = Baseline::of(&root);
    let start = Instant::now();
    to_pivot(&e).await;
    let point = format!("post-pivot/{step}");
    let mut armed = vec![(point.clone(), Mode::Error)];
    if rollback_faults {
        armed.push(("auto-rollback/SaveCr".into(), Mode::Error));
        armed.push(("auto-rollback/SetDefault".into(), Mode::Kill));
    }
    arm(&root, &armed);
    // The failed run, the one the set-default kill ends, the one that asks for the reboot.
    std::fs::write(root.join(lca_testkit::upgradeenv::UNIT_MAX_RUNS), "4").unwrap();
    let watch = Watch::start(&root);
    upgrade::reboot_into(&mut e.c, None, true).await;
    upgrade::wait_rollback_request(&e.c, T).await;
    assert_eq!(
        stateroots(&e.c)[0],
        ORIGINAL,
        "{point}: the original is the default"
    );
    upgrade::reboot(&mut e.c).await;
    let want = format!("Rollback due to postpivot failure: {}", injected(&point));
    let ibu =
        e.c.wait_ibu("the restored failed upgrade", T, |i| {
            has(i, "UpgradeCompleted", "False")
        })
        .await;
    assert_eq!(
        condition(&ibu, "UpgradeInProgress"),
        Some(("False".into(), "Failed".into(), want.clone()))
    );
    assert_eq!(ibu.status.as_ref().unwrap().valid_next_stages, vec![Stage::Idle]);
    assert_eq!(upgrade::booted(&e.c), ORIGINAL);
    assert!(e.c.patch_stage("Idle").0);
    e.c.wait_ibu("Idle after abort", T, |i| has(i, "Idle", "True"))
        .await;
    watch.finish(&point);
    let names: Vec<String> = armed.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(fired(&root), names);
    baseline.assert_again(&root, &point);
    campaign::disarm(&root);
    let secs = start.elapsed().as_secs_f64();
    println!("{point} error: {want} ({secs:.0} s)");
    let mut rows = vec![vec![
        format!("`{point}`"),
        "error".into(),
        format!("rolled back: {want}; abort restores the node"),
        format!("{secs:.0} s"),
    ]];
    for (p, mode) in &armed[1..] {
        rows.push(vec![
            format!("`{p}`"),
            mode.name().into(),
            format!("during the rollback after `{point}`: the unit's next run carries the rollback on"),
            format!("{secs:.0} s"),
        ]);
    }
    rows
}

/// An error at Rollback `step` after a completed upgrade: the Rollback fails for good with
/// the error, no stage is offered, and deleting the CR gives a fresh one.
async fn rollback_error(step: &str) -> Vec<String> {
    let mut e = upgrade::env(SEED_VERSION, &[]).await;
    let root = e.c.node_root().to_path_buf();
    let start = Instant::now();
    to_pivot(&e).await;
    upgrade::reboot(&mut e.c).await;
    upgrade::wait_upgrade_completed(&e.c).await;
    let point = format!("rollback/{step}");
    arm(&root, &[(point.clone(), Mode::Error)]);
    let watch = Watch::start(&root);
    assert!(e.c.patch_stage("Rollback").0);
    let (ibu, message) = upgrade::wait_rollback_failed(&e.c).await;
    assert!(message.contains(&injected(&point)), "{point}: {message}");
    let uid = ibu.metadata.uid.clone();
    e.c.ibus()
        .delete("upgrade", &DeleteParams::default())
        .await
        .unwrap();
    e.c.wait_ibu("a fresh IBU", T, |i| {
        i.metadata.uid != uid && has(i, "Idle", "True")
    })
    .await;
    watch.finish(&point);
    assert_eq!(fired(&root), std::slice::from_ref(&point));
    assert!(stateroots(&e.c).contains(&ORIGINAL.to_string()));
    campaign::disarm(&root);
    vec![
        format!("`{point}`"),
        "error".into(),
        format!("Rollback failed: {message}; a new CR after delete"),
        format!("{:.0} s", start.elapsed().as_secs_f64()),
    ]
}

const HEADER: [&str; 4] = ["failpoint", "mode", "outcome", "run"];

#[tokio::test(flavor = "multi_thread")]
async fn every_operator_upgrade_point_killed_or_failed_converges() {
    let mut rows = mixed_cycle(
        0,
        if campaign::full() {
            &CLI_POST_PIVOT
        } else {
            &CLI_CI
        },
        false,
    )
    .await;
    if campaign::full() {
        rows.extend(mixed_cycle(1, &CLI_POST_PIVOT, true).await);
    }
    let table = campaign::table(&HEADER, &rows);
    println!("{table}");
    std::fs::write(campaign::report_path("fault-campaign-upgrade.md"), table).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_pivot_or_rollback_error_ends_as_it_must() {
    let mut rows = Vec::new();
    let steps: &[&str] = if campaign::full() {
        &CLI_POST_PIVOT
    } else {
        &["recert"]
    };
    for step in steps {
        rows.extend(post_pivot_error(step, *step == "recert").await);
    }
    if campaign::full() {
        for step in campaign::steps::<Rollback>() {
            rows.push(rollback_error(&step).await);
        }
    }
    let table = campaign::table(&HEADER, &rows);
    println!("{table}");
    std::fs::write(campaign::report_path("fault-campaign-upgrade-errors.md"), table).unwrap();
}
