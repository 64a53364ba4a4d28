//! The ImageBasedUpgrade stage machine end to end on a real API server, driven as users do
//! (`kubectl patch`) and as the hub does (a full IBU applied with `spec.stage` set), with the
//! stage work replaced by the scripted test peer. Asserts the exact conditions, messages,
//! validNextStages, printer columns, history and events.

use std::time::Duration;

use lca_api::consts::messages as m;
use lca_api::{ImageBasedUpgrade, Stage};
use lca_e2e::{Cluster, condition, has};

const T: Duration = Duration::from_secs(40);
const SEED: &str = "seedImageRef:\n    version: 4.17.0\n    image: quay.io/example/seed:4.17.0\n    pullSecretRef:\n      name: seed-pull-secret";

fn idle(ibu: &ImageBasedUpgrade) -> bool {
    has(ibu, "Idle", "True")
}

fn next(ibu: &ImageBasedUpgrade) -> Vec<Stage> {
    ibu.status
        .as_ref()
        .map(|s| s.valid_next_stages.clone())
        .unwrap_or_default()
}

fn cond(ibu: &ImageBasedUpgrade, t: &str) -> (String, String, String) {
    condition(ibu, t).unwrap_or_else(|| panic!("no {t} condition: {:?}", ibu.status))
}

fn owned(s: (&str, &str, &str)) -> (String, String, String) {
    (s.0.into(), s.1.into(), s.2.into())
}

/// Apply the IBU the way the hub (TALM's ManifestWork) does: the whole object, stage set.
fn apply_ibu(c: &Cluster, stage: &str) -> (bool, String) {
    let yaml = format!(
        "apiVersion: lca.openshift.io/v1\nkind: ImageBasedUpgrade\nmetadata:\n  name: upgrade\nspec:\n  stage: {stage}\n  {SEED}\n  autoRollbackOnFailure: {{}}\n"
    );
    let (ok, _, err) = c.kubectl_apply(&yaml);
    (ok, err)
}

async fn prepped(c: &Cluster) -> ImageBasedUpgrade {
    c.wait_ibu("Idle", T, idle).await;
    c.script("prep", "succeed");
    let (ok, err) = apply_ibu(c, "Prep");
    assert!(ok, "hub-style apply with stage Prep: {err}");
    c.wait_ibu("PrepCompleted", T, |i| has(i, "PrepCompleted", "True"))
        .await
}

#[tokio::test]
async fn prep_upgrade_finalize_full_cycle() {
    let c = Cluster::with_test_peer().await;
    let ibu = prepped(&c).await;
    assert_eq!(
        cond(&ibu, "PrepCompleted"),
        owned(("True", "Completed", m::PREP_STAGE_COMPLETED))
    );
    assert_eq!(
        cond(&ibu, "PrepInProgress"),
        owned(("False", "Completed", m::PREP_COMPLETED))
    );
    assert_eq!(cond(&ibu, "Idle"), owned(("False", "InProgress", m::IN_PROGRESS)));
    assert_eq!(next(&ibu), vec![Stage::Idle, Stage::Upgrade]);
    let history = &ibu.status.as_ref().expect("status").history;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].stage, Some(Stage::Prep));
    assert!(history[0].start_time.is_some() && history[0].completion_time.is_some());

    let (ok, _, err) = c.kubectl(&[
        "patch",
        "ibu",
        "upgrade",
        "--type=merge",
        "-p",
        r#"{"spec":{"seedImageRef":{"version":"4.18.0"}}}"#,
    ]);
    assert!(!ok, "seedImageRef is immutable while in progress");
    assert!(
        err.contains("can not change spec.seedImageRef while ibu is in progress"),
        "{err}"
    );

    let (ok, err) = c.patch_stage("Upgrade");
    assert!(ok, "{err}");
    let ibu = c
        .wait_ibu("UpgradeInProgress", T, |i| has(i, "UpgradeInProgress", "True"))
        .await;
    assert_eq!(
        cond(&ibu, "UpgradeInProgress"),
        owned(("True", "InProgress", m::IN_PROGRESS))
    );
    assert_eq!(next(&ibu), vec![Stage::Idle], "before the pivot, only abort");
    let (ok, _, out) = c.kubectl(&["get", "ibu", "upgrade", "--no-headers"]);
    assert!(ok);
    let _ = out;

    c.boot("rhcos_4.17.0");
    c.script("upgrade", "succeed");
    let ibu = c
        .wait_ibu("UpgradeCompleted", T, |i| has(i, "UpgradeCompleted", "True"))
        .await;
    assert_eq!(
        cond(&ibu, "UpgradeCompleted"),
        owned(("True", "Completed", m::UPGRADE_COMPLETED))
    );
    assert_eq!(
        cond(&ibu, "UpgradeInProgress"),
        owned(("False", "Completed", m::UPGRADE_COMPLETED))
    );
    assert_eq!(next(&ibu), vec![Stage::Idle, Stage::Rollback]);
    let (_, out, _) = c.kubectl(&["get", "ibu", "upgrade", "--no-headers"]);
    let cols: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(cols[2..5], ["Upgrade", "Completed", "Upgrade"], "{out}");

    c.script("finalize", "wait node not ready");
    let (ok, err) = c.patch_stage("Idle");
    assert!(ok, "{err}");
    let ibu = c
        .wait_ibu("finalize waiting", T, |i| {
            condition(i, "Idle").is_some_and(|c| c.2.starts_with("Waiting for system"))
        })
        .await;
    assert_eq!(
        cond(&ibu, "Idle"),
        owned((
            "False",
            "Finalizing",
            "Waiting for system to stabilize before finalize (idle) stage can continue: node not ready"
        ))
    );
    assert!(next(&ibu).is_empty());
    c.script("finalize", "succeed");
    let ibu = c
        .wait_ibu("Idle after finalize", Duration::from_secs(60), idle)
        .await;
    let status = ibu.status.expect("status");
    assert_eq!(
        status.conditions.len(),
        1,
        "a new cycle keeps no stale condition: {:?}",
        status.conditions
    );
    assert_eq!(status.valid_next_stages, vec![Stage::Prep]);
    assert!(status.history.is_empty());
    assert!(c.peer_calls().iter().any(|l| l == "finalize"));

    let (ok, out, _) = c.kubectl(&["get", "events", "-A", "-o", "jsonpath={.items[*].reason}"]);
    assert!(ok);
    for reason in ["StageTransition", "StageCompleted", "Idle"] {
        assert!(
            out.split_whitespace().any(|r| r == reason),
            "event {reason} in {out}"
        );
    }
}

#[tokio::test]
async fn abort_during_prep_and_after_failed_prep() {
    let c = Cluster::with_test_peer().await;
    c.wait_ibu("Idle", T, idle).await;
    c.script("prep", "stall");
    let (ok, err) = apply_ibu(&c, "Prep");
    assert!(ok, "{err}");
    let ibu = c
        .wait_ibu("PrepInProgress", T, |i| has(i, "PrepInProgress", "True"))
        .await;
    assert_eq!(next(&ibu), vec![Stage::Idle]);
    let (ok, err) = c.patch_stage("Upgrade");
    assert!(!ok, "Upgrade before Prep completed is refused");
    assert!(err.contains(m::STAGE_TRANSITION_NOT_PERMITTED), "{err}");

    let (ok, err) = c.patch_stage("Idle");
    assert!(ok, "{err}");
    let ibu = c.wait_ibu("Idle after abort", T, idle).await;
    assert_eq!(ibu.status.as_ref().expect("status").conditions.len(), 1);
    assert!(c.peer_calls().iter().any(|l| l == "abort"));

    c.script("prep", "fail seed image not found");
    let (ok, err) = c.patch_stage("Prep");
    assert!(ok, "{err}");
    let ibu = c
        .wait_ibu("PrepCompleted False", T, |i| has(i, "PrepCompleted", "False"))
        .await;
    assert_eq!(
        cond(&ibu, "PrepCompleted"),
        owned(("False", "Failed", "Prep failed: seed image not found"))
    );
    assert_eq!(
        cond(&ibu, "PrepInProgress"),
        owned(("False", "Failed", "seed image not found"))
    );
    assert_eq!(next(&ibu), vec![Stage::Idle]);
    let calls = c.peer_calls().iter().filter(|l| *l == "prep").count();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        c.peer_calls().iter().filter(|l| *l == "prep").count(),
        calls,
        "a failed Prep is not retried"
    );

    let (ok, err) = c.patch_stage("Idle");
    assert!(ok, "{err}");
    c.wait_ibu("Idle after failed prep", T, idle).await;

    // What a person sees with `kubectl describe`: an event per transition and failure.
    let want = [
        ("StageTransition", "Prep accepted"),
        ("StageTransition", "Idle (Abort) accepted"),
        ("StageFailed", "Prep failed: seed image not found"),
    ];
    let start = std::time::Instant::now();
    let described = loop {
        let (ok, out, err) = c.kubectl(&["describe", "ibu", "upgrade"]);
        assert!(ok, "{err}");
        let seen =
            |(reason, note): &(&str, &str)| out.lines().any(|l| l.contains(reason) && l.contains(note));
        if want.iter().all(seen) || start.elapsed() > T {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (reason, note) in want {
        assert!(
            described.lines().any(|l| l.contains(reason) && l.contains(note)),
            "{reason}: {note} in:\n{described}"
        );
    }
}

#[tokio::test]
async fn upgrade_rollback_then_finalize() {
    let c = Cluster::with_test_peer().await;
    prepped(&c).await;
    c.script("upgrade", "stall");
    assert!(c.patch_stage("Upgrade").0);
    c.wait_ibu("UpgradeInProgress", T, |i| has(i, "UpgradeInProgress", "True"))
        .await;
    c.boot("rhcos_4.17.0");
    let ibu = c
        .wait_ibu("rollback offered after pivot", T, |i| {
            next(i) == vec![Stage::Rollback]
        })
        .await;
    assert!(has(&ibu, "UpgradeInProgress", "True"));
    let (ok, err) = c.patch_stage("Idle");
    assert!(!ok, "after the pivot, Idle is not allowed while upgrading");
    assert!(err.contains(m::STAGE_TRANSITION_NOT_PERMITTED), "{err}");

    c.script("rollback", "stall");
    assert!(c.patch_stage("Rollback").0);
    let ibu = c
        .wait_ibu("RollbackInProgress", T, |i| has(i, "RollbackInProgress", "True"))
        .await;
    assert_eq!(
        cond(&ibu, "UpgradeCompleted"),
        owned(("False", "Failed", m::ROLLBACK_REQUESTED))
    );
    assert_eq!(
        cond(&ibu, "UpgradeInProgress"),
        owned(("False", "Failed", m::ROLLBACK_REQUESTED))
    );
    assert!(next(&ibu).is_empty(), "no transition while rolling back");

    // Booted back into the original stateroot: the rollback is complete (the stalled script
    // only holds while the node is still on the new one).
    c.boot("rhcos");
    let ibu = c
        .wait_ibu("RollbackCompleted", T, |i| has(i, "RollbackCompleted", "True"))
        .await;
    assert_eq!(
        cond(&ibu, "RollbackCompleted"),
        owned(("True", "Completed", m::ROLLBACK_COMPLETED))
    );
    assert_eq!(next(&ibu), vec![Stage::Idle]);
    assert!(c.patch_stage("Idle").0);
    let ibu = c.wait_ibu("Idle after rollback", T, idle).await;
    assert_eq!(ibu.status.expect("status").conditions.len(), 1);
    assert!(
        c.peer_calls().iter().any(|l| l == "finalize"),
        "Idle after a rollback is a finalize"
    );
}

#[tokio::test]
async fn abort_failed_then_manual_cleanup_done() {
    let c = Cluster::with_test_peer().await;
    prepped(&c).await;
    c.script("abort", "fail failed to remove stateroot rhcos_4.17.0");
    assert!(c.patch_stage("Idle").0);
    let ibu = c
        .wait_ibu("AbortFailed", T, |i| {
            condition(i, "Idle").is_some_and(|c| c.1 == "AbortFailed")
        })
        .await;
    assert_eq!(
        cond(&ibu, "Idle").2,
        format!(
            "failed to remove stateroot rhcos_4.17.0 {}",
            m::MANUAL_CLEANUP_SUFFIX
        )
    );
    assert!(next(&ibu).is_empty());

    c.script("abort", "succeed");
    let (ok, _, err) = c.kubectl(&[
        "annotate",
        "ibu",
        "upgrade",
        "lca.openshift.io/manual-cleanup-done=",
    ]);
    assert!(ok, "{err}");
    let ibu = c.wait_ibu("Idle after manual cleanup", T, idle).await;
    let ibu = c
        .wait_ibu("annotation removed", T, |i| {
            !i.metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("lca.openshift.io/manual-cleanup-done"))
        })
        .await
        .status
        .map(|_| ibu)
        .expect("status");
    assert_eq!(ibu.status.expect("status").conditions.len(), 1);
}

#[tokio::test]
async fn deleting_an_in_flight_ibu_restores_it_and_an_idle_one_is_recreated_fresh() {
    let mut c = Cluster::with_test_peer().await;
    let before = prepped(&c).await;
    let (ok, _, err) = c.kubectl(&["delete", "ibu", "upgrade", "--wait=true"]);
    assert!(ok, "{err}");
    let ibu = c
        .wait_ibu("restored", T, |i| {
            i.metadata.uid != before.metadata.uid && has(i, "PrepCompleted", "True")
        })
        .await;
    assert_eq!(ibu.spec, before.spec, "the spec survives a deletion");
    assert_eq!(next(&ibu), vec![Stage::Idle, Stage::Upgrade]);
    // The file is removed right after the restored status is written.
    let saved_file = c.node_root().join("var/lib/lca/ibu.json");
    for _ in 0..100 {
        if !saved_file.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !saved_file.exists(),
        "the saved copy is consumed; operator log:\n{}",
        std::fs::read_to_string(c.operator_log_path()).unwrap_or_default()
    );

    // Restart with a saved copy on disk, as after a reboot: the operator restores it.
    c.operator.take().expect("operator").kill();
    let mut saved = ibu.clone();
    saved.metadata.resource_version = Some("1".into());
    std::fs::write(
        c.node_root().join("var/lib/lca/ibu.json"),
        serde_json::to_vec(&saved).expect("json"),
    )
    .expect("save");
    let (ok, _, err) = c.kubectl(&["delete", "ibu", "upgrade", "--wait=true"]);
    assert!(ok, "{err}");
    c.start_operator_with(&["--stage-work=test-peer"]);
    let restored = c
        .wait_ibu("restored at start-up", T, |i| has(i, "PrepCompleted", "True"))
        .await;
    assert_eq!(restored.spec, ibu.spec);

    assert!(c.patch_stage("Idle").0);
    let idle_ibu = c.wait_ibu("Idle", T, idle).await;
    let (ok, _, err) = c.kubectl(&["delete", "ibu", "upgrade", "--wait=true"]);
    assert!(ok, "{err}");
    let fresh = c
        .wait_ibu("fresh IBU", T, |i| {
            i.metadata.uid != idle_ibu.metadata.uid && idle(i)
        })
        .await;
    assert_eq!(fresh.spec.stage, Some(Stage::Idle));
    assert!(
        fresh.spec.seed_image_ref.image.is_empty(),
        "deleting an idle IBU is a real delete"
    );
}

#[tokio::test]
async fn a_request_that_bypassed_the_gate_is_rejected_by_the_operator() {
    let mut c = Cluster::start().await;
    // Without an operator, an IBU created without status passes CEL with any stage.
    let (ok, err) = apply_ibu(&c, "Upgrade");
    assert!(ok, "{err}");
    c.start_operator_with(&["--stage-work=test-peer"]);
    let ibu = c
        .wait_ibu("InvalidTransition", T, |i| {
            condition(i, "UpgradeInProgress").is_some()
        })
        .await;
    assert_eq!(
        cond(&ibu, "UpgradeInProgress"),
        owned(("False", "InvalidTransition", m::PREVIOUS_STAGE_NOT_SUCCEEDED))
    );
    assert_eq!(next(&ibu), vec![Stage::Idle]);
    let (_, out, _) = c.kubectl(&["get", "ibu", "upgrade", "--no-headers"]);
    assert!(
        out.contains("InvalidTransition") && out.contains(m::PREVIOUS_STAGE_NOT_SUCCEEDED),
        "{out}"
    );

    assert!(c.patch_stage("Idle").0);
    let ibu = c.wait_ibu("Idle", T, idle).await;
    assert_eq!(
        ibu.status.expect("status").conditions.len(),
        1,
        "the rejection is cleared"
    );
}
