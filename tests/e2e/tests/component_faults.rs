//! Component faults during Prep (issue #16): the API server down for 30 s while the
//! stateroot is set up, the seed's registry stopped while the seed is pulled and while the
//! images are precached. Each time Prep ends as it must (completes after the outage; fails
//! with the stage's message naming the step and the registry), an abort leaves the node as
//! before, and a Prep once the registry is back completes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use lca_e2e::condition;
use lca_e2e::prep::{
    Baseline, SEED_VERSION, abort, env_with_seed, listing, start_prep, wait_prep_completed, wait_prep_failed,
};
use lca_hostops::failpoint::{ARM_FILE, FIRED_FILE};

const T: Duration = Duration::from_secs(180);

/// Hold the operator for `ms` at `point` (a `sleep` failpoint), so a fault can be made
/// between two steps.
fn hold(root: &Path, point: &str, ms: u64) {
    let _ = std::fs::remove_file(root.join("lca-sim").join(FIRED_FILE));
    std::fs::write(
        root.join("lca-sim").join(ARM_FILE),
        format!("{point}=sleep({ms})\n"),
    )
    .unwrap();
}

/// Wait until the PrepInProgress message contains `needle`.
async fn wait_in_progress(e: &lca_e2e::prep::Env, needle: &str) {
    let start = Instant::now();
    loop {
        let ibu = e.c.ibus().get("upgrade").await.unwrap();
        if condition(&ibu, "PrepInProgress").is_some_and(|c| c.2.contains(needle)) {
            return;
        }
        assert!(
            start.elapsed() < T,
            "never saw {needle:?}: {:?}",
            condition(&ibu, "PrepInProgress")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prep_survives_an_api_outage_and_fails_cleanly_without_its_registry() {
    let mut e = env_with_seed(SEED_VERSION, false).await;
    let root = e.c.node_root().to_path_buf();
    let baseline = Baseline::of(&root);
    let clean = |what: &str| baseline.assert_again(&root, what);

    // The API server down for 30 s while the stateroot task works: Prep completes.
    start_prep(&e, SEED_VERSION, "");
    wait_in_progress(&e, "Stateroot setup job in progress").await;
    let start = Instant::now();
    e.c.cp.api_outage(Duration::from_secs(30)).await.unwrap();
    println!("API server outage: back after {:?}", start.elapsed());
    wait_prep_completed(&e).await;
    println!("Prep completed {:?} after the outage began", start.elapsed());
    abort(&e).await;
    clean("after the API outage");

    // The registry stops between the seed's inspection and its pull.
    // The image clean-up is logged right after the seed's inspection, just before the hold.
    let cleanups = |log: String| log.matches(r#""message":"image cleanup""#).count();
    let before = cleanups(e.c.operator.as_ref().unwrap().log());
    hold(&root, "prep/Validated", 3000);
    start_prep(&e, SEED_VERSION, "");
    let start = Instant::now();
    while cleanups(e.c.operator.as_ref().unwrap().log()) == before {
        assert!(start.elapsed() < T, "the seed was never inspected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    e.registry.stop().unwrap();
    let msg = wait_prep_failed(&e, T).await;
    assert!(
        msg.starts_with("stateroot setup job failed to complete. "),
        "{msg}"
    );
    assert!(msg.contains(". Failed in step pull: "), "{msg}");
    assert!(msg.contains(e.registry.addr()), "names the registry: {msg}");
    println!("registry stopped before the seed pull: {msg}");
    e.registry.restart().unwrap();
    abort(&e).await;
    clean("after the failed seed pull");

    // The registry stops between the stateroot setup and precache: strict precache fails.
    hold(&root, "prep/CryptoBackup", 3000);
    start_prep(&e, SEED_VERSION, "");
    wait_in_progress(&e, "Stateroot setup job in progress").await;
    // Once the stateroot task is complete the operator holds before launching precache.
    let markers = root.join("var/lib/lca/workspace/stateroot-setup");
    let start = Instant::now();
    while !listing(&markers).contains("complete.done") {
        assert!(start.elapsed() < T, "the stateroot task never completed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    e.registry.stop().unwrap();
    let msg = wait_prep_failed(&e, T).await;
    assert!(msg.starts_with("precache job failed to complete. "), "{msg}");
    println!("registry stopped before precache: {msg}");
    e.registry.restart().unwrap();
    abort(&e).await;
    clean("after the failed precache");
    std::fs::remove_file(root.join("lca-sim").join(ARM_FILE)).unwrap();

    // With the registry back, the same Prep completes.
    start_prep(&e, SEED_VERSION, "");
    wait_prep_completed(&e).await;
    abort(&e).await;
    clean("after the last Prep");
}
