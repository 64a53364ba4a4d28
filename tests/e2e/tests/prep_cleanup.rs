//! What Prep leaves on the node (issue: Prep hardening): node work never outlives the cycle
//! it belongs to. A Prep's result counts only for the seed it was started for; a default
//! IBU starts from a clean node; an abort or a failed stateroot setup leaves `/var/tmp`,
//! the workspace and the image store as they were before Prep.

use std::time::Duration;

use lca_e2e::has;
use lca_e2e::prep::{
    Env, SEED_VERSION, abort, env_with_seed, listing, prep_failure, start_prep, start_prep_with_image,
    wait_prep_completed,
};

const T: Duration = Duration::from_secs(120);

async fn complete_prep(e: &Env) {
    start_prep(e, SEED_VERSION, "");
    wait_prep_completed(e).await;
}

/// Kill the operator, then delete the IBU while it is down (nothing saves it).
async fn forget_the_cycle(e: &mut Env) {
    e.c.operator.take().expect("operator").kill();
    let (ok, _, err) = e.c.kubectl(&["delete", "ibu", "upgrade", "--wait=true"]);
    assert!(ok, "{err}");
}

#[tokio::test]
async fn the_work_of_a_forgotten_cycle_never_counts() {
    let mut e = env_with_seed(SEED_VERSION, false).await;
    let root = e.c.node_root().to_path_buf();
    let stateroot = root.join("sysroot/ostree/deploy/rhcos_4.18.0");

    // A default IBU (none exists, none saved) starts from a clean node.
    complete_prep(&e).await;
    forget_the_cycle(&mut e).await;
    e.c.start_operator();
    let ibu = e.c.wait_ibu("default IBU", T, |i| has(i, "Idle", "True")).await;
    assert_eq!(ibu.spec.stage, Some(lca_api::Stage::Idle));
    assert!(!stateroot.exists(), "the forgotten stateroot is removed");
    assert!(
        !root.join("var/lib/lca/workspace").exists(),
        "the forgotten workspace is removed"
    );

    // The hub re-creates the IBU (Idle) before the operator is back, so no default is made,
    // then asks for Prep of another seed: the earlier seed's finished tasks must not read as
    // this Prep's success.
    complete_prep(&e).await;
    forget_the_cycle(&mut e).await;
    let (ok, _, err) = e.c.kubectl_apply(
        "apiVersion: lca.openshift.io/v1\nkind: ImageBasedUpgrade\nmetadata:\n  name: upgrade\nspec:\n  stage: Idle\n",
    );
    assert!(ok, "{err}");
    e.c.start_operator();
    e.c.wait_ibu("Idle", T, |i| has(i, "Idle", "True")).await;
    let missing = format!("{}/ocp/no-such-seed:v1", e.registry.addr());
    start_prep_with_image(&e, &missing, SEED_VERSION, "");
    let ibu =
        e.c.wait_ibu("Prep of the missing seed", T, |i| {
            assert!(!has(i, "PrepCompleted", "True"), "false success: {:?}", i.status);
            prep_failure(i).is_some()
        })
        .await;
    let msg = prep_failure(&ibu).expect("failure");
    assert!(msg.starts_with("failed to validate seed image info: "), "{msg}");
    assert!(msg.contains("no-such-seed"), "{msg}");
    assert!(!stateroot.exists(), "the other seed's stateroot is removed");
}

#[tokio::test]
async fn abort_and_failed_setups_leave_var_tmp_and_the_workspace_as_before() {
    let e = env_with_seed(SEED_VERSION, false).await;
    let root = e.c.node_root().to_path_buf();
    let var_tmp = root.join("var/tmp");
    let before = listing(&var_tmp);
    let images_before = lca_testkit::simnode::images(&root);

    // A stateroot setup that fails (the seed was made for another version) releases what it
    // pulled and unpacked, and the pull secret, on its own.
    let (ok, _, err) = e.c.kubectl(&[
        "-n",
        "openshift-lifecycle-agent",
        "create",
        "secret",
        "generic",
        "seed-pull",
        "--type=kubernetes.io/dockerconfigjson",
        "--from-literal=.dockerconfigjson={\"auths\":{}}",
    ]);
    assert!(ok, "{err}");
    start_prep_with_image(
        &e,
        &e.seed,
        "4.18.1",
        "    pullSecretRef:\n      name: seed-pull\n",
    );
    let ibu =
        e.c.wait_ibu("setup fails", T, |i| prep_failure(i).is_some())
            .await;
    let msg = prep_failure(&ibu).expect("failure");
    assert!(
        msg.starts_with("stateroot setup job failed to complete."),
        "{msg}"
    );
    // The task's status file names the failing step and its error.
    assert!(
        msg.contains(". Failed in step ")
            && msg
                .ends_with("version specified in seed image (4.18.0) differs from version in spec (4.18.1)"),
        "{msg}"
    );
    let workspace = root.join("var/lib/lca/workspace");
    assert!(
        !workspace.join("seed-pull-secret").exists(),
        "the pull secret is gone"
    );
    assert!(
        !var_tmp.join("lca-stateroot-setup").exists(),
        "the unpacked seed is gone"
    );
    abort(&e).await;
    assert_eq!(listing(&var_tmp), before);

    // A setup frozen mid-work and then aborted: the abort removes what it left.
    start_prep(&e, SEED_VERSION, "");
    let work = var_tmp.join("lca-stateroot-setup");
    let pid_file = workspace.join("tasks/lca-prep-stateroot-setup/pid");
    let start = std::time::Instant::now();
    while !work.exists() && start.elapsed() < T {
        std::thread::sleep(Duration::from_millis(2));
    }
    let froze = match std::fs::read_to_string(&pid_file) {
        Ok(text) if work.exists() => {
            let pid = text.split_whitespace().next().expect("pid").to_string();
            std::process::Command::new("kill")
                .args(["-STOP", "--", &format!("-{pid}")])
                .status()
                .is_ok_and(|s| s.success())
        }
        _ => false,
    };
    println!("stateroot setup frozen mid-work: {froze}");
    abort(&e).await;
    assert_eq!(listing(&var_tmp), before, "var/tmp as before Prep");
    assert!(!workspace.exists(), "workspace removed");
    assert!(!root.join("sysroot/ostree/deploy/rhcos_4.18.0").exists());
    let images_after = lca_testkit::simnode::images(&root);
    assert!(
        !images_after.iter().any(|i| i.contains("seed")),
        "the seed image is not left in the image store: {images_after:?}"
    );
    assert!(images_before.iter().all(|i| images_after.contains(i)));
}
