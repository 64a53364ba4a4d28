//! Rollback end to end on the real control plane (spec §6.7, §7.1, §7.2): a failed upgrade
//! puts the node back on its original stateroot by itself — after a failed host post-pivot,
//! a config manifest the seed's cluster refuses, or an init monitor that ran out of time —
//! and the original cluster shows why, with an abort that leaves the node as it was before
//! Prep. The disable annotations hold; a manual Rollback completes and finalizes; a boot of
//! the old deployment nobody chose shows `Uncontrolled rollback`; a failed rollback is
//! recovered by deleting the CR.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, PostParams};
use lca_api::Stage;
use lca_api::consts::annotations as a;
use lca_e2e::prep::{Env, SEED_VERSION, start_prep, wait_prep_completed};
use lca_e2e::upgrade::{self, annotate, fail_tool, reboot_rationale, stateroots, unit_logs};
use lca_e2e::{condition, has};
use lca_testkit::openshift;

const T: Duration = Duration::from_secs(120);

/// An extra manifest the original cluster accepts (its dry run passes at Prep) and the seed's
/// cluster refuses: its kind is not served there.
const CERTIFICATE_MANIFEST: &str = "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: web\n  namespace: default\nspec:\n  secretName: web-tls\n";

fn new_stateroot() -> String {
    format!("rhcos_{SEED_VERSION}")
}

/// Prep (with `extra` spec lines) and Upgrade until the node is asked to reboot into the
/// new stateroot.
async fn to_pivot(e: &Env, extra: &str) {
    start_prep(e, SEED_VERSION, extra);
    wait_prep_completed(e).await;
    assert!(e.c.patch_stage("Upgrade").0);
    upgrade::wait_reboot_request(&e.c, T).await;
    assert_eq!(reboot_rationale(&e.c).as_deref(), Some("upgrade"));
}

/// A cluster with cert-manager's kind and an extra-manifests ConfigMap of one Certificate.
async fn refused_manifest_env() -> Env {
    let e = upgrade::env(SEED_VERSION, &[]).await;
    openshift::install_kinds(&e.c.cp, &[openshift::CERTIFICATE])
        .await
        .unwrap();
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "extra"}, "data": {"cert.yaml": CERTIFICATE_MANIFEST}}))
    .unwrap();
    Api::<ConfigMap>::namespaced(e.c.client.clone(), "default")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    e
}

const EXTRA: &str = "  extraManifests:\n  - name: extra\n    namespace: default\n";

/// Back on the original stateroot: the restored IBU shows the Upgrade failed with
/// `message` (or a message starting so, when `prefix`), and only an abort is offered.
async fn wait_failed_on_original(e: &Env, message: &str, prefix: bool) {
    let ibu =
        e.c.wait_ibu("the restored failed upgrade", T, |i| {
            has(i, "UpgradeCompleted", "False")
        })
        .await;
    let (status, reason, got) = condition(&ibu, "UpgradeInProgress").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Failed"));
    if prefix {
        assert!(got.starts_with(message), "{got}");
    } else {
        assert_eq!(got, message);
    }
    assert_eq!(ibu.status.as_ref().unwrap().valid_next_stages, vec![Stage::Idle]);
    assert_eq!(upgrade::booted(&e.c), "rhcos");
    assert_eq!(
        openshift::desired_version(&e.c.client).await.unwrap(),
        openshift::OCP_VERSION,
        "the original cluster is back"
    );
}

/// Abort from the original stateroot: the node ends as before Prep.
async fn abort_to_original(e: &Env) {
    assert!(e.c.patch_stage("Idle").0);
    let ibu =
        e.c.wait_ibu("Idle after abort", T, |i| has(i, "Idle", "True"))
            .await;
    assert_eq!(ibu.status.as_ref().unwrap().valid_next_stages, vec![Stage::Prep]);
    let root = e.c.node_root();
    assert_eq!(stateroots(&e.c), ["rhcos"]);
    assert!(!root.join("sysroot/ostree/deploy").join(new_stateroot()).exists());
    assert!(!root.join("var/lib/lca/workspace").exists());
    assert!(!root.join("var/lib/lca/ibu.json").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_host_post_pivot_rolls_back_by_itself_and_the_abort_restores_the_node() {
    let mut e = upgrade::env(SEED_VERSION, &[]).await;
    // The monitor is off: the rollback below is post-pivot's own.
    annotate(&e.c, a::AUTO_ROLLBACK_INIT_MONITOR, "Disabled");
    to_pivot(&e, "").await;
    fail_tool(&e.c, "hostnamectl", true);
    let oneshots = upgrade::reboot(&mut e.c).await;
    assert_eq!(
        oneshots,
        [("installation-configuration.service".to_string(), 3, false)],
        "{}",
        unit_logs(&e.c)
    );
    assert!(e.c.operator.is_none(), "no kubelet, no operator");
    assert_eq!(
        reboot_rationale(&e.c).as_deref(),
        Some("rollback"),
        "{}",
        unit_logs(&e.c)
    );
    assert_eq!(stateroots(&e.c)[0], "rhcos", "the original is the default again");
    upgrade::wait_unit_log(&e.c, "the init monitor is disabled", Duration::from_secs(20)).await;

    fail_tool(&e.c, "hostnamectl", false);
    upgrade::reboot(&mut e.c).await;
    wait_failed_on_original(&e, "Rollback due to postpivot failure: ", true).await;
    let ibu = e.c.ibus().get("upgrade").await.unwrap();
    let (_, _, message) = condition(&ibu, "UpgradeInProgress").unwrap();
    assert!(message.contains("hostnamectl: simulated failure"), "{message}");
    abort_to_original(&e).await;
}

/// The operator's post-pivot trigger, with the operator killed after the rollback saved the
/// CR and again after set-default: restarted (supervised) it carries the same rollback on.
#[tokio::test(flavor = "multi_thread")]
async fn a_config_manifest_the_seed_cluster_refuses_rolls_back_and_crashes_converge() {
    let mut e = refused_manifest_env().await;
    to_pivot(&e, EXTRA).await;
    let root = e.c.node_root().to_path_buf();
    std::fs::write(
        root.join("lca-sim/failpoints"),
        "auto-rollback/SaveCr=return(kill)\nauto-rollback/SetDefault=return(kill)\n",
    )
    .unwrap();
    upgrade::reboot_into(&mut e.c, None, false).await;
    e.c.start_operator_supervised();
    upgrade::wait_rollback_request(&e.c, T).await;
    assert_eq!(
        std::fs::read_to_string(root.join("lca-sim/failpoints.fired")).unwrap(),
        "auto-rollback/SaveCr\nauto-rollback/SetDefault\n",
        "the operator died at both places"
    );
    assert_eq!(stateroots(&e.c)[0], "rhcos");
    upgrade::reboot(&mut e.c).await;
    wait_failed_on_original(
        &e,
        "Rollback due to failure applying config manifests: failed to apply manifest: ",
        true,
    )
    .await;
    abort_to_original(&e).await;
}

/// `upgrade-completion: Disabled`: the failure stays visible on the new stateroot; the user
/// rolls back by hand (§15.3.3) and finalizes.
#[tokio::test(flavor = "multi_thread")]
async fn with_upgrade_completion_disabled_the_failure_stays_and_a_manual_rollback_finalizes() {
    let mut e = refused_manifest_env().await;
    annotate(&e.c, a::AUTO_ROLLBACK_UPGRADE_COMPLETION, "Disabled");
    to_pivot(&e, EXTRA).await;
    upgrade::reboot(&mut e.c).await;
    let ibu =
        e.c.wait_ibu("the failed upgrade", T, |i| {
            condition(i, "UpgradeCompleted").is_some()
        })
        .await;
    let (status, reason, message) = condition(&ibu, "UpgradeInProgress").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Failed"));
    assert!(message.starts_with("failed to apply manifest: "), "{message}");
    let status = ibu.status.clone().unwrap();
    assert_eq!(status.valid_next_stages, vec![Stage::Rollback]);
    assert!(status.rollback_availability_expiration.is_some());
    assert_eq!(reboot_rationale(&e.c), None, "no automatic rollback");
    assert_eq!(stateroots(&e.c)[0], new_stateroot());

    let (ok, err) = e.c.patch_stage("Rollback");
    assert!(ok, "{err}");
    upgrade::wait_rollback_request(&e.c, T).await;
    let (ok, events, _) = e.c.kubectl(&["get", "events.events.k8s.io", "-A", "-o", "json"]);
    assert!(ok);
    assert!(events.contains("System will now reboot for rollback"), "{events}");
    assert_eq!(stateroots(&e.c)[0], "rhcos");
    upgrade::reboot(&mut e.c).await;
    let ibu = upgrade::wait_rollback_completed(&e.c).await;
    let status = ibu.status.clone().unwrap();
    assert_eq!(status.valid_next_stages, vec![Stage::Idle]);
    assert_eq!(status.rollback_availability_expiration, None);
    assert_eq!(
        openshift::desired_version(&e.c.client).await.unwrap(),
        openshift::OCP_VERSION
    );
    assert!(e.c.patch_stage("Idle").0);
    e.c.wait_ibu("Idle after finalize", T, |i| has(i, "Idle", "True"))
        .await;
    assert_eq!(stateroots(&e.c), ["rhcos"]);
}

/// A post-pivot that fails with `post-reboot-config: Disabled` does not roll back; the init
/// monitor does when its (short) time is up, with upstream's message.
#[tokio::test(flavor = "multi_thread")]
async fn the_init_monitor_rolls_back_when_its_time_is_up() {
    let mut e = upgrade::env(SEED_VERSION, &[]).await;
    annotate(&e.c, a::AUTO_ROLLBACK_POST_REBOOT_CONFIG, "Disabled");
    to_pivot(
        &e,
        "  autoRollbackOnFailure:\n    initMonitorTimeoutSeconds: 20\n",
    )
    .await;
    fail_tool(&e.c, "hostnamectl", true);
    let booted_at = std::time::Instant::now();
    upgrade::reboot(&mut e.c).await;
    upgrade::wait_unit_log(
        &e.c,
        "automatic rollback is disabled for it",
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(reboot_rationale(&e.c), None, "post-pivot did not roll back");
    upgrade::wait_rollback_request(&e.c, Duration::from_secs(90)).await;
    assert!(booted_at.elapsed() >= Duration::from_secs(20));
    fail_tool(&e.c, "hostnamectl", false);
    upgrade::reboot(&mut e.c).await;
    wait_failed_on_original(&e, "Rollback due to LCA Init Monitor timeout, after 20s", false).await;
}

/// The node boots the old deployment without the LCA choosing it (picked in the bootloader):
/// the original cluster shows `Uncontrolled rollback`, and the abort cleans up.
#[tokio::test(flavor = "multi_thread")]
async fn an_uncontrolled_rollback_shows_and_aborts() {
    let mut e = upgrade::env(SEED_VERSION, &[]).await;
    to_pivot(&e, "").await;
    upgrade::reboot_into(&mut e.c, Some("rhcos"), true).await;
    wait_failed_on_original(&e, "Uncontrolled rollback", false).await;
    abort_to_original(&e).await;
}

/// A rollback that fails (the original stateroot cannot take the saved CR) is final:
/// RollbackCompleted False and no next stage; deleting the CR gives a fresh Idle one and
/// keeps the original stateroot.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_rollback_is_final_until_the_cr_is_deleted() {
    let mut e = upgrade::env(SEED_VERSION, &[]).await;
    to_pivot(&e, "").await;
    upgrade::reboot(&mut e.c).await;
    e.c.wait_ibu("UpgradeCompleted", T, |i| has(i, "UpgradeCompleted", "True"))
        .await;
    let saved =
        e.c.node_root()
            .join("sysroot/ostree/deploy/rhcos/var/lib/lca/ibu.json");
    let _ = std::fs::remove_file(&saved);
    std::fs::create_dir_all(saved.join("in-the-way")).unwrap();
    assert!(e.c.patch_stage("Rollback").0);
    let (ibu, message) = upgrade::wait_rollback_failed(&e.c).await;
    assert!(message.starts_with("Rollback failed"), "{message}");
    let (ok, err) = e.c.patch_stage("Idle");
    assert!(
        !ok && err.contains("the stage transition is not permitted"),
        "{err}"
    );

    let uid = ibu.metadata.uid.clone();
    e.c.ibus()
        .delete("upgrade", &DeleteParams::default())
        .await
        .unwrap();
    let fresh =
        e.c.wait_ibu("a fresh IBU", T, |i| {
            i.metadata.uid != uid && has(i, "Idle", "True")
        })
        .await;
    assert_eq!(fresh.status.unwrap().valid_next_stages, vec![Stage::Prep]);
    let roots = stateroots(&e.c);
    assert!(
        roots.contains(&"rhcos".to_string()),
        "{roots:?}: the original is kept"
    );
}
